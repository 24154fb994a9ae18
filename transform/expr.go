package transform

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/sluicehq/sluice/adapters"
)

// Env is what an expression sees: record and meta.
type Env struct {
	Record adapters.Record   `expr:"record"`
	Meta   map[string]string `expr:"meta"`
	// Lookups are the pipeline's lookup tables (Runner.SetLookups); the
	// patcher passes them to the lookup function.
	Lookups *Lookups `expr:"__lookups"`
}

// Func is one function of the expression library.
type Func struct {
	Name string
	// Fn is called with the evaluated arguments.
	Fn func(args ...any) (any, error)
	// Types are optional signatures (as func values, e.g. new(func(string) string))
	// that let the compiler check calls.
	Types []any
	// Doc is one line: signature and meaning, for `sluice adapters functions`.
	Doc string
}

var (
	funcsMu sync.RWMutex
	funcs   = map[string]Func{}
	extra   []expr.Option
)

// RegisterFunc adds a function to the expression library. It panics on an
// empty name, a nil Fn or a duplicate, like the adapter registries. Call it
// from init.
func RegisterFunc(f Func) {
	if f.Name == "" || f.Fn == nil {
		panic("transform: RegisterFunc needs a name and a function")
	}
	funcsMu.Lock()
	defer funcsMu.Unlock()
	if _, dup := funcs[f.Name]; dup {
		panic(fmt.Sprintf("transform: RegisterFunc called twice for %q", f.Name))
	}
	funcs[f.Name] = f
}

// RegisterOption adds a compiler option to every expression (operator
// overloads, AST patchers). Call it from init.
func RegisterOption(o expr.Option) {
	funcsMu.Lock()
	defer funcsMu.Unlock()
	extra = append(extra, o)
}

// Funcs returns the library's functions, sorted by name.
func Funcs() []Func {
	funcsMu.RLock()
	defer funcsMu.RUnlock()
	out := make([]Func, 0, len(funcs))
	for _, f := range funcs {
		out = append(out, f)
	}
	sortFuncs(out)
	return out
}

func options(extraOpts ...expr.Option) []expr.Option {
	funcsMu.RLock()
	defer funcsMu.RUnlock()
	opts := []expr.Option{expr.Env(Env{})}
	for _, f := range funcs {
		opts = append(opts, expr.Function(f.Name, f.Fn, f.Types...))
	}
	opts = append(opts, extra...)
	return append(opts, extraOpts...)
}

// Program is a compiled expression. It is safe for concurrent use; Run it
// through a Runner, which is not.
type Program struct {
	src  string
	prog *vm.Program
}

// Compile compiles an expression.
func Compile(src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("empty expression")
	}
	return compile(src)
}

// CompileBool compiles an expression that must yield a bool at run time.
func CompileBool(src string) (*Program, error) {
	return compile(src, expr.AsBool())
}

func compile(src string, extraOpts ...expr.Option) (*Program, error) {
	p, err := expr.Compile(src, options(extraOpts...)...)
	if err == nil {
		// Constant arguments the type checker cannot judge (a regular
		// expression, a time zone) fail here rather than on the first record.
		err = checkConstants(p.Node())
	}
	if err != nil {
		return nil, fmt.Errorf("expression %q: %s", src, oneLine(err.Error()))
	}
	return &Program{src: src, prog: p}, nil
}

// oneLine turns expr's multi-line error (message, source line, caret line)
// into one line that names the column.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	// "unexpected token EOF (1:15)" -> "unexpected token EOF at column 15"
	if i := strings.LastIndex(s, " ("); i >= 0 && strings.HasSuffix(s, ")") {
		pos := s[i+2 : len(s)-1]
		if j := strings.IndexByte(pos, ':'); j > 0 {
			line, col := pos[:j], pos[j+1:]
			if line == "1" {
				return s[:i] + " at column " + col
			}
			return s[:i] + " at line " + line + ", column " + col
		}
	}
	return s
}

// String returns the source of the expression.
func (p *Program) String() string { return p.src }

// Runner evaluates programs; it reuses one VM and is not safe for concurrent use.
type Runner struct {
	vm  vm.VM
	env Env
	// Scratch message buffers of Chain.Process, reused between calls.
	cur, next []adapters.Message
}

// Eval runs p against a message's record and meta.
func (r *Runner) Eval(p *Program, rec adapters.Record, meta map[string]string) (any, error) {
	r.env.Record, r.env.Meta = rec, meta
	if r.env.Record == nil {
		r.env.Record = adapters.Record{}
	}
	// A pointer: boxing the Env struct would allocate on every run.
	out, err := r.vm.Run(p.prog, &r.env)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %s", p.src, oneLine(err.Error()))
	}
	return Normalize(out), nil
}

// EvalBool runs a program compiled with CompileBool.
func (r *Runner) EvalBool(p *Program, rec adapters.Record, meta map[string]string) (bool, error) {
	v, err := r.Eval(p, rec, meta)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("expression %q: want true or false, got %T", p.src, v)
	}
	return b, nil
}

// Normalize converts expression results to the value types records hold:
// every signed integer to int64, unsigned to uint64, float32 to float64,
// maps with string keys to Record and slices to []any.
func Normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, uint64, float64, string, []byte, adapters.Record, []any:
		return v
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint:
		return uint64(x)
	case uint32:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint8:
		return uint64(x)
	case float32:
		return float64(x)
	case map[string]string:
		out := make(adapters.Record, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return v
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = Normalize(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			out := make(adapters.Record, rv.Len())
			it := rv.MapRange()
			for it.Next() {
				out[it.Key().String()] = Normalize(it.Value().Interface())
			}
			return out
		}
	}
	return v
}
