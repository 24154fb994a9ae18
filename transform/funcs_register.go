package transform

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/conf"
	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// This file holds the machinery shared by the function library: a
// declarative description of each function (libFunc), compile-time arity and
// argument-type checks, and the conversions of arguments with errors that
// name the function and the argument at fault.

// argKind is what a parameter accepts, for compile-time checks. Values whose
// type is unknown when the expression is compiled (record fields) are always
// accepted and checked when the function runs.
type argKind uint8

const (
	kAny    argKind = iota
	kStr            // a string, or a scalar written as text (number, decimal, bool, bytes)
	kInt            // an integer (integral floats and decimals are accepted at run time)
	kNum            // a number or decimal
	kTime           // a time.Time
	kRegexp         // a regular expression: a string, or a constant compiled at compile time
	kLookup         // the lookup tables injected by the patcher
	kTZ             // a time zone name, or a constant loaded at compile time
)

func (k argKind) String() string {
	switch k {
	case kStr, kRegexp:
		return "a string"
	case kTZ:
		return "a time zone name"
	case kInt:
		return "an integer"
	case kNum:
		return "a number"
	case kTime:
		return "a time"
	}
	return "a value"
}

type libParam struct {
	name string
	kind argKind
}

// libFunc describes one library function.
type libFunc struct {
	name   string
	params []libParam
	// opt is how many trailing params may be left out.
	opt int
	// variadic: the last parameter repeats (at least once unless optional).
	variadic bool
	// hidden is how many leading params the patcher supplies (lookup's
	// tables); messages count only the arguments users write.
	hidden int
	// out is the static result type; nil means unknown. Only functions that
	// never return nil declare one: expr specialises some opcodes on static
	// types and would fail on a nil of a declared string type.
	out reflect.Type
	// doc is one line: "name(args) → result: meaning".
	doc string
	fn  func(a []any) (any, error)
}

var (
	anyType      = reflect.TypeOf((*any)(nil)).Elem()
	boolType     = reflect.TypeOf(false)
	stringType   = reflect.TypeOf("")
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
	decimalType  = reflect.TypeOf(decimal.Decimal{})
	bytesType    = reflect.TypeOf([]byte(nil))
)

// libValidators maps each library function to its compile-time check; the
// option registered in init attaches them to every compilation.
var libValidators = map[string]func([]reflect.Type) (reflect.Type, error){}

func init() {
	RegisterOption(func(c *conf.Config) {
		for name, v := range libValidators {
			if f, ok := c.Functions[name]; ok {
				f.Validate = v
			}
		}
	})
}

// register adds library functions. Call it from init.
func registerLib(fs ...libFunc) {
	for i := range fs {
		f := fs[i]
		RegisterFunc(Func{Name: f.name, Fn: f.call, Doc: f.doc})
		libValidators[f.name] = f.validate
	}
}

func (f *libFunc) arity() (lo, hi int) {
	lo, hi = len(f.params)-f.opt, len(f.params)
	if f.variadic {
		hi = -1
	}
	return lo, hi
}

func (f *libFunc) arityError(n int) error {
	lo, hi := f.arity()
	lo, n = lo-f.hidden, n-f.hidden
	if hi >= 0 {
		hi -= f.hidden
	}
	var want string
	switch {
	case hi < 0:
		want = fmt.Sprintf("at least %d", lo)
	case lo == hi:
		want = strconv.Itoa(lo)
	case hi == lo+1:
		want = fmt.Sprintf("%d or %d", lo, hi)
	default:
		want = fmt.Sprintf("%d to %d", lo, hi)
	}
	s := "s"
	if want == "1" || want == "at least 1" {
		s = ""
	}
	return fmt.Errorf("%s: want %s argument%s, got %d", f.name, want, s, n)
}

func (f *libFunc) paramAt(i int) libParam {
	if i >= len(f.params) {
		return f.params[len(f.params)-1]
	}
	return f.params[i]
}

// validate is the compile-time check: argument count and the static types
// that cannot work.
func (f *libFunc) validate(args []reflect.Type) (reflect.Type, error) {
	lo, hi := f.arity()
	if len(args) < lo || (hi >= 0 && len(args) > hi) {
		return anyType, f.arityError(len(args))
	}
	for i, t := range args {
		p := f.paramAt(i)
		if !staticAccepts(p.kind, t) {
			return anyType, fmt.Errorf("%s: argument %d (%s) must be %s, got %s", f.name, i+1-f.hidden, p.name, p.kind, staticName(t))
		}
	}
	if f.out == nil {
		return anyType, nil
	}
	return f.out, nil
}

func (f *libFunc) call(args ...any) (any, error) {
	lo, hi := f.arity()
	if len(args) < lo || (hi >= 0 && len(args) > hi) {
		return nil, f.arityError(len(args))
	}
	v, err := f.fn(args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	return v, nil
}

func unknownType(t reflect.Type) bool { return t == nil || t.Kind() == reflect.Interface }

func numberType(t reflect.Type) bool {
	if t == nil || t == durationType {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func staticAccepts(k argKind, t reflect.Type) bool {
	if unknownType(t) || k == kAny || k == kLookup {
		return true
	}
	switch k {
	case kStr:
		return t.Kind() == reflect.String || t == bytesType || t == decimalType || t.Kind() == reflect.Bool || numberType(t)
	case kRegexp:
		return t.Kind() == reflect.String || t == regexpType
	case kTZ:
		return t.Kind() == reflect.String || t == locationType
	case kInt:
		return numberType(t) || t == decimalType
	case kNum:
		return numberType(t) || t == decimalType
	case kTime:
		return t == timeType
	}
	return true
}

func staticName(t reflect.Type) string {
	switch {
	case t == decimalType:
		return "decimal"
	case t == timeType:
		return "time"
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Map:
		return "object"
	case t.Kind() == reflect.Slice && t != bytesType:
		return "array"
	case numberType(t) && t.Kind() >= reflect.Float32:
		return "float"
	case numberType(t):
		return "int"
	}
	return t.String()
}

// typeName names the type of a record value the way type_of does.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "bool"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "int"
	case float32, float64:
		return "float"
	case string:
		return "string"
	case []byte:
		return "bytes"
	case decimal.Decimal:
		return "decimal"
	case time.Time:
		return "time"
	case time.Duration:
		return "duration"
	case adapters.Record:
		return "object"
	case []any:
		return "array"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// argError is the error of argument i (0-based) of the wrong type.
func argError(i int, name, want string, v any) error {
	return fmt.Errorf("argument %d (%s) must be %s, got %s", i+1, name, want, describeValue(v))
}

func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		if len(x) > 40 {
			x = x[:37] + "..."
		}
		return fmt.Sprintf("string %q", x)
	}
	return typeName(v)
}

// textOf converts a string-like scalar to text. ok is false for nil.
func textOf(i int, name string, v any) (s string, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return x, true, nil
	case []byte:
		return string(x), true, nil
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, decimal.Decimal:
		return ToString(Normalize(x)), true, nil
	}
	return "", false, argError(i, name, "a string", v)
}

// intOf converts an integer argument: integers, and floats or decimals
// without a fractional part.
func intOf(i int, name string, v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x), nil
		}
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), nil
		}
	case uint32:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			return int64(x), nil
		}
	case float32:
		if f := float64(x); f == math.Trunc(f) && math.Abs(f) < 1<<62 {
			return int64(f), nil
		}
	case decimal.Decimal:
		if x.IsInteger() && x.Abs().LessThan(decimal.New(1, 18)) {
			return x.IntPart(), nil
		}
	}
	return 0, argError(i, name, "an integer", v)
}

// timeOf converts a time argument. ok is false for nil.
func timeOf(i int, name string, v any) (t time.Time, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, false, nil
	case time.Time:
		return x, true, nil
	}
	return time.Time{}, false, argError(i, name, "a time", v)
}

// splitPath splits a dotted field path; it reports an empty part.
func splitPath(p string) ([]string, error) {
	parts := strings.Split(p, ".")
	for _, s := range parts {
		if s == "" {
			return nil, fmt.Errorf("field path %q has an empty part", p)
		}
	}
	return parts, nil
}
