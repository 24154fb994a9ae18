package transform

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// Record access, conversions and the environment.

func init() {
	registerLib(
		libFunc{name: "env", params: []libParam{{"name", kStr}, {"default", kAny}}, opt: 1,
			doc: "env(name[, default]) → string: the agent's environment variable name, or default (nil when none is given) when it is not set",
			fn: func(a []any) (any, error) {
				name, ok, err := textOf(0, "name", a[0])
				if err != nil || !ok || name == "" {
					return nil, argError(0, "name", "a variable name", a[0])
				}
				if v, ok := os.LookupEnv(name); ok {
					return v, nil
				}
				if len(a) > 1 {
					return a[1], nil
				}
				return nil, nil
			}},
		libFunc{name: "has", params: []libParam{{"obj", kAny}, {"path", kAny}}, out: boolType,
			doc: "has(obj, path) → bool: obj (record, meta, an object or array) has the dotted path (\"customer.address.city\", \"items.0.sku\"; an exact key with dots wins), even if its value is null; nil obj gives false",
			fn: func(a []any) (any, error) {
				_, found, err := getPath(a[0], a[1])
				return found, err
			}},
		libFunc{name: "get", params: []libParam{{"obj", kAny}, {"path", kAny}, {"default", kAny}}, opt: 1,
			doc: "get(obj, path[, default]) → any: the value at a dotted path or array index (negative counts from the end) of obj, or default (nil when none is given) when it is missing or null; replaces the builtin get, which it extends",
			fn: func(a []any) (any, error) {
				v, _, err := getPath(a[0], a[1])
				if err != nil {
					return nil, err
				}
				if v == nil && len(a) > 2 {
					return a[2], nil
				}
				return v, nil
			}},
		libFunc{name: "coalesce", params: []libParam{{"x", kAny}}, variadic: true,
			doc: "coalesce(a, b, ...) → any: the first argument that is not nil (an empty string counts as a value), or nil; a ?? b is the two-argument form",
			fn: func(a []any) (any, error) {
				for _, v := range a {
					if v != nil {
						return v, nil
					}
				}
				return nil, nil
			}},
		libFunc{name: "to_int", params: []libParam{{"x", kAny}, {"default", kAny}}, opt: 1,
			doc: "to_int(x[, default]) → int: x as an integer: a string in base 10 (spaces trimmed, leading zeros allowed), a float or decimal truncated toward zero, true as 1; nil or a blank string give default (nil when none is given); anything else, such as \"12.5\", is an error",
			fn:  func(a []any) (any, error) { return convert(a, toInt) }},
		libFunc{name: "to_float", params: []libParam{{"x", kAny}, {"default", kAny}}, opt: 1,
			doc: "to_float(x[, default]) → float: x as a float (a string is parsed, a decimal rounded to the nearest float); nil or a blank string give default (nil when none is given)",
			fn:  func(a []any) (any, error) { return convert(a, toFloat64) }},
		libFunc{name: "to_bool", params: []libParam{{"x", kAny}, {"default", kAny}}, opt: 1,
			doc: "to_bool(x[, default]) → bool: true/false, t/f, yes/no, y/n, on/off, 1/0 (any case) or a number (0 is false); nil or a blank string give default (nil when none is given)",
			fn:  func(a []any) (any, error) { return convert(a, toBool) }},
		libFunc{name: "to_string", params: []libParam{{"x", kAny}, {"default", kAny}}, opt: 1,
			doc: "to_string(x[, default]) → string: x as text: numbers in full, decimals with their scale (\"12.30\"), times in RFC 3339, bytes as UTF-8; nil gives default (nil when none is given); objects and arrays are an error (use toJSON)",
			fn: func(a []any) (any, error) {
				switch a[0].(type) {
				case nil:
					if len(a) > 1 {
						return a[1], nil
					}
					return nil, nil
				case adapters.Record, []any:
					return nil, argError(0, "x", "a scalar (use toJSON for objects and arrays)", a[0])
				}
				return ToString(Normalize(a[0])), nil
			}},
		libFunc{name: "type_of", params: []libParam{{"x", kAny}}, out: stringType,
			doc: "type_of(x) → string: the record type of x: nil, bool, int, float, string, bytes, decimal, time, duration, array or object",
			fn:  func(a []any) (any, error) { return typeName(a[0]), nil }},
	)
}

// getPath finds path in obj: an exact key, else the dotted path through
// objects and arrays. An integer path indexes an array.
func getPath(obj, path any) (v any, found bool, err error) {
	if obj == nil {
		return nil, false, nil
	}
	key, isStr := path.(string)
	if !isStr {
		i, err := intOf(1, "path", path)
		if err != nil {
			return nil, false, argError(1, "path", "a field path or an array index", path)
		}
		v, found := step(obj, "", i, true)
		return v, found, nil
	}
	if v, found := step(obj, key, 0, false); found || !strings.Contains(key, ".") {
		return v, found, nil
	}
	if strings.Contains(key, "..") || key[0] == '.' || key[len(key)-1] == '.' {
		return nil, false, fmt.Errorf("argument 2 (path): %q has an empty part", key)
	}
	cur := obj
	for rest := key; ; {
		part, tail, more := strings.Cut(rest, ".")
		next, found := step(cur, part, 0, false)
		if !found {
			return nil, false, nil
		}
		if !more {
			return next, true, nil
		}
		cur, rest = next, tail
	}
}

// step takes one key (or index, when byIndex is set) of obj. A string key
// made of digits indexes an array.
func step(obj any, key string, index int64, byIndex bool) (any, bool) {
	switch o := obj.(type) {
	case adapters.Record:
		if byIndex {
			return nil, false
		}
		v, ok := o[key]
		return v, ok
	case map[string]string:
		if byIndex {
			return nil, false
		}
		v, ok := o[key]
		if !ok {
			return nil, false
		}
		return v, true
	case []any:
		if !byIndex {
			n, err := strconv.ParseInt(key, 10, 64)
			if err != nil {
				return nil, false
			}
			index = n
		}
		if index < 0 {
			index += int64(len(o))
		}
		if index < 0 || index >= int64(len(o)) {
			return nil, false
		}
		return o[index], true
	}
	return nil, false
}

// convert applies to to a[0], giving a[1] (or nil) for nil and blank
// strings.
func convert(a []any, to func(any) (any, error)) (any, error) {
	v := a[0]
	switch x := v.(type) {
	case nil:
		return dflt(a), nil
	case string:
		if strings.TrimSpace(x) == "" {
			return dflt(a), nil
		}
	case []byte:
		if strings.TrimSpace(string(x)) == "" {
			return dflt(a), nil
		}
		v = string(x)
	}
	out, err := to(v)
	if err != nil {
		return nil, fmt.Errorf("argument 1 (x): %w", err)
	}
	return out, nil
}

func dflt(a []any) any {
	if len(a) > 1 {
		return a[1]
	}
	return nil
}

func toInt(v any) (any, error) {
	switch x := v.(type) {
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not an integer", describeValue(x))
		}
		return n, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case float64, float32:
		f := toF64(x)
		if math.IsNaN(f) || f >= 1<<63 || f < -(1<<63) {
			return nil, fmt.Errorf("float %v is out of the integer range", f)
		}
		return int64(f), nil
	case decimal.Decimal:
		t := x.Truncate(0)
		if t.GreaterThan(maxInt64Decimal) || t.LessThan(minInt64Decimal) {
			return nil, fmt.Errorf("decimal %s is out of the integer range", decimalText(x))
		}
		return t.IntPart(), nil
	}
	n, err := intOf(0, "x", v)
	if err != nil {
		return nil, fmt.Errorf("cannot convert %s to an integer", describeValue(v))
	}
	return n, nil
}

var minInt64Decimal = decimal.NewFromInt(math.MinInt64)

func toF64(v any) float64 {
	if f, ok := v.(float32); ok {
		return float64(f)
	}
	return v.(float64)
}

func toFloat64(v any) (any, error) {
	switch x := v.(type) {
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a number", describeValue(x))
		}
		return f, nil
	case float64, float32:
		return toF64(x), nil
	case decimal.Decimal:
		return x.InexactFloat64(), nil
	case bool:
		if x {
			return 1.0, nil
		}
		return 0.0, nil
	}
	if d, ok, _ := numDecimal(v); ok {
		return d.InexactFloat64(), nil
	}
	return nil, fmt.Errorf("cannot convert %s to a float", describeValue(v))
}

func toBool(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "t", "yes", "y", "on", "1":
			return true, nil
		case "false", "f", "no", "n", "off", "0":
			return false, nil
		}
		return nil, fmt.Errorf("%s is not a boolean (want true/false, yes/no, y/n, on/off or 1/0)", describeValue(x))
	case time.Time:
		return nil, fmt.Errorf("cannot convert a time to a boolean")
	}
	if d, ok, err := numDecimal(v); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return !d.IsZero(), nil
	}
	return nil, fmt.Errorf("cannot convert %s to a boolean", describeValue(v))
}
