package transform

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/expr-lang/expr/builtin"
	"github.com/shopspring/decimal"
)

// Exact decimal arithmetic for money.
//
// decimal(x) makes a decimal.Decimal; the operators of decimal_ops.go then
// keep it exact. A decimal's scale (digits after the point) is part of its
// value's text: decimal("12.10") + decimal("0.20") is 12.30 and prints
// "12.30".

// divisionPlaces is the most fractional digits a quotient keeps.
const divisionPlaces = 16

func init() {
	registerLib(
		libFunc{name: "decimal", params: []libParam{{"x", kAny}}, out: decimalType,
			doc: "decimal(x) → decimal: exact decimal from a string (\"12.10\", \"-1e3\"), integer, float (its shortest text, so 0.1 is 0.1) or decimal; nil or a blank string gives nil",
			fn: func(a []any) (any, error) {
				d, ok, err := decimalOf(0, "x", a[0], true)
				if err != nil || !ok {
					return nil, err
				}
				return d, nil
			}},
		libFunc{name: "round", params: []libParam{{"x", kNum}, {"places", kInt}}, opt: 1,
			doc: "round(x[, places]) → same type: round half away from zero to places fractional digits (default 0); a decimal keeps exactly places digits (round(decimal(\"2.5\")) is 3, round(decimal(\"1.2\"), 2) is 1.20); round(float) is the builtin; nil gives nil",
			fn:  func(a []any) (any, error) { return roundWith(a, "round", decimal.Decimal.Round) }},
		libFunc{name: "round_half_even", params: []libParam{{"x", kNum}, {"places", kInt}}, opt: 1,
			doc: "round_half_even(x[, places]) → same type: banker's rounding (half to even) to places fractional digits (default 0): round_half_even(decimal(\"2.345\"), 2) is 2.34; nil gives nil",
			fn:  func(a []any) (any, error) { return roundWith(a, "", decimal.Decimal.RoundBank) }},
		libFunc{name: "floor", params: []libParam{{"x", kNum}},
			doc: "floor(x) → decimal or float: largest integer ≤ x; a decimal stays a decimal (scale 0), other numbers as the builtin (a float); nil gives nil",
			fn:  func(a []any) (any, error) { return unaryNum(a[0], "floor", decimal.Decimal.Floor) }},
		libFunc{name: "ceil", params: []libParam{{"x", kNum}},
			doc: "ceil(x) → decimal or float: smallest integer ≥ x; a decimal stays a decimal (scale 0), other numbers as the builtin (a float); nil gives nil",
			fn:  func(a []any) (any, error) { return unaryNum(a[0], "ceil", decimal.Decimal.Ceil) }},
		libFunc{name: "abs", params: []libParam{{"x", kNum}},
			doc: "abs(x) → same type: absolute value of an integer, float or decimal (a decimal keeps its scale); nil gives nil",
			fn:  func(a []any) (any, error) { return unaryNum(a[0], "abs", decimal.Decimal.Abs) }},
		libFunc{name: "scale", params: []libParam{{"x", kNum}},
			doc: "scale(x) → int: digits after the decimal point (scale(decimal(\"12.30\")) is 2; an integer is 0; a float counts its shortest text); nil gives nil",
			fn: func(a []any) (any, error) {
				d, ok, err := decimalOf(0, "x", a[0], false)
				if err != nil || !ok {
					return nil, err
				}
				return int64(scaleOf(d)), nil
			}},
		libFunc{name: "rescale", params: []libParam{{"x", kNum}, {"places", kInt}},
			doc: "rescale(x, places) → decimal: x as a decimal with exactly places fractional digits, rounding half away from zero or padding with zeros (rescale(5, 2) is 5.00); nil gives nil",
			fn: func(a []any) (any, error) {
				d, ok, err := decimalOf(0, "x", a[0], false)
				if err != nil || !ok {
					return nil, err
				}
				p, err := placesOf(1, a[1])
				if err != nil {
					return nil, err
				}
				return d.Round(p), nil
			}},
		libFunc{name: "decimal_string", params: []libParam{{"x", kNum}, {"places", kInt}}, opt: 1,
			doc: "decimal_string(x[, places]) → string: x in plain notation, with exactly places fractional digits (rounded half away from zero) when given, else with its own scale: decimal_string(decimal(\"1e3\")) is \"1000\", decimal_string(2.5, 2) is \"2.50\"; nil gives nil",
			fn: func(a []any) (any, error) {
				d, ok, err := decimalOf(0, "x", a[0], false)
				if err != nil || !ok {
					return nil, err
				}
				if len(a) == 1 {
					return decimalText(d), nil
				}
				p, err := placesOf(1, a[1])
				if err != nil {
					return nil, err
				}
				return d.StringFixed(p), nil
			}},
	)
}

func init() {
	constArgs["decimal"] = append(constArgs["decimal"], constArg{index: 0, typ: decimalType,
		prepare: func(s string) (any, error) {
			if strings.TrimSpace(s) == "" {
				return nil, nil
			}
			return parseDecimal(strings.TrimSpace(s))
		}})
}

// maxDecimalDigits bounds the digits and the exponent of a parsed decimal:
// "1e-999999999" is a valid number whose exact sum with 1 would need a
// billion digits.
const maxDecimalDigits = 1000

func parseDecimal(s string) (decimal.Decimal, error) {
	if len(s) > maxDecimalDigits+10 {
		return decimal.Decimal{}, fmt.Errorf("%q... is not a decimal number (longer than %d digits)", s[:20], maxDecimalDigits)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return d, fmt.Errorf("%q is not a decimal number", s)
	}
	if e := d.Exponent(); e > maxDecimalDigits || e < -maxDecimalDigits {
		return decimal.Decimal{}, fmt.Errorf("%q is out of the decimal range (exponent beyond ±%d)", s, maxDecimalDigits)
	}
	return d, nil
}

// decimalText formats d in plain notation with its exact scale: 12.30 stays
// "12.30" (decimal.Decimal.String would print "12.3").
func decimalText(d decimal.Decimal) string {
	if e := d.Exponent(); e < 0 {
		return d.StringFixed(-e)
	}
	return d.String()
}

func scaleOf(d decimal.Decimal) int32 {
	if e := d.Exponent(); e < 0 {
		return -e
	}
	return 0
}

var errNotFinite = errors.New("NaN and infinities have no decimal value")

// decimalOf converts a number (and, when parse is set, a string) to a
// decimal. ok is false for nil and, when parsing, for a blank string.
func decimalOf(i int, name string, v any, parse bool) (d decimal.Decimal, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return d, false, nil
	case decimal.Decimal:
		return x, true, nil
	case string:
		if !parse {
			break
		}
		s := strings.TrimSpace(x)
		if s == "" {
			return d, false, nil
		}
		d, err := parseDecimal(s)
		if err != nil {
			return d, false, fmt.Errorf("argument %d (%s): %w", i+1, name, err)
		}
		return d, true, nil
	case []byte:
		if parse {
			return decimalOf(i, name, string(x), true)
		}
	}
	if d, ok, err := numDecimal(v); ok || err != nil {
		if err != nil {
			return d, false, fmt.Errorf("argument %d (%s): %w", i+1, name, err)
		}
		return d, true, nil
	}
	want := "a number"
	if parse {
		want = "a number or a string"
	}
	return d, false, argError(i, name, want, v)
}

// numDecimal converts a Go number to a decimal; ok is false for anything
// else. Floats convert through their shortest text, so 0.1 becomes 0.1.
func numDecimal(v any) (decimal.Decimal, bool, error) {
	switch x := v.(type) {
	case decimal.Decimal:
		return x, true, nil
	case int:
		return decimal.NewFromInt(int64(x)), true, nil
	case int64:
		return decimal.NewFromInt(x), true, nil
	case int32:
		return decimal.NewFromInt(int64(x)), true, nil
	case int16:
		return decimal.NewFromInt(int64(x)), true, nil
	case int8:
		return decimal.NewFromInt(int64(x)), true, nil
	case uint:
		return decimal.NewFromUint64(uint64(x)), true, nil
	case uint64:
		return decimal.NewFromUint64(x), true, nil
	case uint32:
		return decimal.NewFromInt(int64(x)), true, nil
	case uint16:
		return decimal.NewFromInt(int64(x)), true, nil
	case uint8:
		return decimal.NewFromInt(int64(x)), true, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return decimal.Decimal{}, false, errNotFinite
		}
		return decimal.NewFromFloat(x), true, nil
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return decimal.Decimal{}, false, errNotFinite
		}
		return decimal.NewFromFloat32(x), true, nil
	}
	return decimal.Decimal{}, false, nil
}

// placesOf reads a number of fractional digits.
func placesOf(i int, v any) (int32, error) {
	n, err := intOf(i, "places", v)
	if err != nil {
		return 0, err
	}
	if n < -100 || n > 100 {
		return 0, fmt.Errorf("argument %d (places) must be between -100 and 100, got %d", i+1, n)
	}
	return int32(n), nil
}

func builtinFast(name string) func(any) any {
	return builtin.Builtins[builtin.Index[name]].Fast
}

var (
	builtinRound = builtinFast("round")
	builtinFloor = builtinFast("floor")
	builtinCeil  = builtinFast("ceil")
	builtinAbs   = builtinFast("abs")
)

// unaryNum applies op to a decimal and the builtin of the same name to other
// numbers.
func unaryNum(v any, name string, op func(decimal.Decimal) decimal.Decimal) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case decimal.Decimal:
		return op(x), nil
	}
	if _, ok, _ := numDecimal(v); !ok && !isNaNOrInf(v) {
		return nil, argError(0, "x", "a number", v)
	}
	var fast func(any) any
	switch name {
	case "floor":
		fast = builtinFloor
	case "ceil":
		fast = builtinCeil
	default:
		fast = builtinAbs
	}
	return Normalize(fast(v)), nil
}

func isNaNOrInf(v any) bool {
	f, ok := v.(float64)
	return ok && (math.IsNaN(f) || math.IsInf(f, 0))
}

// roundWith rounds a decimal with op, a float in decimal arithmetic (so
// round(2.675, 2) is 2.68, as written) and an integer to a multiple of
// 10^-places. builtinName, when set, handles the one-argument float case the
// way the expr builtin does.
func roundWith(a []any, builtinName string, op func(decimal.Decimal, int32) decimal.Decimal) (any, error) {
	v := a[0]
	if v == nil {
		return nil, nil
	}
	var places int32
	if len(a) > 1 {
		p, err := placesOf(1, a[1])
		if err != nil {
			return nil, err
		}
		places = p
	}
	switch x := v.(type) {
	case decimal.Decimal:
		return op(x, places), nil
	case float64, float32:
		if isNaNOrInf(v) {
			return v, nil
		}
		if len(a) == 1 && builtinName != "" {
			return Normalize(builtinRound(v)), nil
		}
		d, _, _ := numDecimal(v)
		return op(d, places).InexactFloat64(), nil
	}
	d, ok, err := numDecimal(v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, argError(0, "x", "a number", v)
	}
	if len(a) == 1 && builtinName != "" {
		// The builtin round gives a float for an integer.
		return Normalize(builtinRound(v)), nil
	}
	r := op(d, places)
	if !r.IsInteger() || r.Abs().GreaterThan(maxInt64Decimal) {
		return r, nil
	}
	return r.IntPart(), nil
}

var maxInt64Decimal = decimal.NewFromInt(math.MaxInt64)

// divDecimal divides exactly when the quotient has at most divisionPlaces
// fractional digits, else rounds half away from zero to divisionPlaces. The
// result has the smallest scale, at least the larger scale of the operands,
// that holds it: 1234 / 100 is 12.34, 12.00 / 4 is 3.00, 10 / 3 is
// 3.3333333333333333.
func divDecimal(a, b decimal.Decimal) (decimal.Decimal, error) {
	if b.IsZero() {
		return decimal.Decimal{}, errors.New("division by zero")
	}
	minScale := max(scaleOf(a), scaleOf(b))
	if k, ok := powerOfTen(b); ok {
		// Dividing by 10^k only moves the point: exact and cheap.
		return trimScale(a.Shift(-k), minScale), nil
	}
	return trimScale(a.DivRound(b, divisionPlaces), minScale), nil
}

// powerOfTen reports whether d is 10^k (k may be negative).
func powerOfTen(d decimal.Decimal) (int32, bool) {
	if d.Sign() <= 0 {
		return 0, false
	}
	if d.NumDigits() > 18 {
		return 0, false
	}
	c := d.CoefficientInt64()
	k := d.Exponent()
	for ; c%10 == 0; c /= 10 {
		k++
	}
	return k, c == 1
}

var bigTen = big.NewInt(10)

// trimScale removes trailing fractional zeros from d, or appends some, so
// that it has the smallest scale of at least minScale that holds it.
func trimScale(d decimal.Decimal, minScale int32) decimal.Decimal {
	exp := d.Exponent()
	if -exp < minScale {
		return d.Round(minScale) // pads with zeros
	}
	if -exp == minScale {
		return d
	}
	if d.NumDigits() <= 18 {
		// The common case, without big.Int arithmetic: nothing to trim, or
		// a coefficient that fits an int64.
		c := d.CoefficientInt64()
		if c%10 != 0 {
			return d
		}
		for -exp > minScale && c%10 == 0 && c != 0 {
			c /= 10
			exp++
		}
		if c == 0 {
			return decimal.New(0, -minScale)
		}
		return decimal.New(c, exp)
	}
	c := d.Coefficient()
	if c.Sign() == 0 {
		return decimal.New(0, -minScale)
	}
	var q, r big.Int
	for -exp > minScale {
		q.QuoRem(c, bigTen, &r)
		if r.Sign() != 0 {
			break
		}
		c.Set(&q)
		exp++
	}
	return decimal.NewFromBigInt(c, exp)
}

func modDecimal(a, b decimal.Decimal) (decimal.Decimal, error) {
	if b.IsZero() {
		return decimal.Decimal{}, errors.New("modulo by zero")
	}
	return a.Mod(b), nil
}

// maxPowExponent bounds decimal ** n: the exact result of a large power
// grows without bound.
const maxPowExponent = 10000

func powDecimal(a, b decimal.Decimal) (decimal.Decimal, error) {
	if b.Abs().GreaterThan(decimal.NewFromInt(maxPowExponent)) {
		return decimal.Decimal{}, fmt.Errorf("exponent %s is too large (at most %d)", b, maxPowExponent)
	}
	// The exact power has about digits(a) × |b| digits.
	size := int64(a.NumDigits()+int(abs32(a.Exponent()))) * b.Abs().Ceil().IntPart()
	if size > maxPowExponent {
		return decimal.Decimal{}, fmt.Errorf("%s ** %s is too large to compute exactly", decimalText(a), decimalText(b))
	}
	return a.PowWithPrecision(b, divisionPlaces)
}

func abs32(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}
