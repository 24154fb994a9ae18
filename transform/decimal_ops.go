package transform

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
	"github.com/shopspring/decimal"
)

// Operators on decimals.
//
// expr's operators know nothing of decimal.Decimal, and record fields are
// typed any at compile time, so operator overloading by static type cannot
// see that record.amount holds a decimal. The patcher (funcs_patch.go)
// therefore rewrites every arithmetic or comparison node that may involve a
// decimal (an operand is a decimal, or an operand's type is unknown and the
// other may be a number) into a call of one of the functions below. Each
// handles decimals and otherwise calls expr's own runtime helper, so the
// semantics of int, float, string and time operands are exactly expr's.
// Nodes whose operand types are known and not decimal are left alone and
// keep expr's specialised opcodes.

// decOp is one rewritten operator.
type decOp struct {
	fn      string                                  // internal function name
	dec     func(a, b decimal.Decimal) (any, error) // arithmetic on decimals
	test    func(cmp int) bool                      // comparisons: the result from a.Cmp(b)
	generic func(a, b any) any                      // expr's own semantics
	// the operator as typed functions (typedCall); errors panic, which the
	// VM turns into the error of the run, as it does for Func's errors
	typedArith func(a, b any) any
	typedCmp   func(a, b any) bool
}

func (op *decOp) isCmp() bool { return op.test != nil }

var decOps = map[string]*decOp{
	"+": {fn: "__sluice_add", dec: func(a, b decimal.Decimal) (any, error) { return a.Add(b), nil }, generic: runtime.Add},
	"-": {fn: "__sluice_sub", dec: func(a, b decimal.Decimal) (any, error) { return a.Sub(b), nil }, generic: runtime.Subtract},
	"*": {fn: "__sluice_mul", dec: func(a, b decimal.Decimal) (any, error) { return a.Mul(b), nil }, generic: runtime.Multiply},
	"/": {fn: "__sluice_div", dec: func(a, b decimal.Decimal) (any, error) { return divDecimal(a, b) },
		generic: func(a, b any) any { return runtime.Divide(a, b) }},
	"%": {fn: "__sluice_mod", dec: func(a, b decimal.Decimal) (any, error) { return modDecimal(a, b) },
		generic: func(a, b any) any { return runtime.Modulo(a, b) }},
	"**": {fn: "__sluice_pow", dec: func(a, b decimal.Decimal) (any, error) { return powDecimal(a, b) },
		generic: func(a, b any) any { return runtime.Exponent(a, b) }},
	"<": {fn: "__sluice_lt", test: func(c int) bool { return c < 0 },
		generic: func(a, b any) any { return runtime.Less(a, b) }},
	"<=": {fn: "__sluice_le", test: func(c int) bool { return c <= 0 },
		generic: func(a, b any) any { return runtime.LessOrEqual(a, b) }},
	">": {fn: "__sluice_gt", test: func(c int) bool { return c > 0 },
		generic: func(a, b any) any { return runtime.More(a, b) }},
	">=": {fn: "__sluice_ge", test: func(c int) bool { return c >= 0 },
		generic: func(a, b any) any { return runtime.MoreOrEqual(a, b) }},
	"==": {fn: "__sluice_eq", test: func(c int) bool { return c == 0 },
		generic: func(a, b any) any { return runtime.Equal(a, b) }},
	"!=": {fn: "__sluice_ne", test: func(c int) bool { return c != 0 },
		generic: func(a, b any) any { return !runtime.Equal(a, b) }},
}

// negFn is the rewritten unary minus.
const negFn = "__sluice_neg"

func init() {
	for sym, op := range decOps {
		op, sym := op, sym
		op.typedArith = func(a, b any) any {
			v, err := op.apply(sym, a, b)
			if err != nil {
				panic(err)
			}
			return v
		}
		op.typedCmp = func(a, b any) bool {
			v, err := op.apply(sym, a, b)
			if err != nil {
				panic(err)
			}
			return v.(bool)
		}
	}
	decOps["^"] = decOps["**"]
	RegisterOption(func(c *conf.Config) {
		for sym, op := range decOps {
			op, sym := op, sym
			c.Functions[op.fn] = &builtin.Function{
				Name: op.fn,
				Func: func(args ...any) (any, error) { return op.apply(sym, args[0], args[1]) },
				Validate: func(args []reflect.Type) (reflect.Type, error) {
					if len(args) != 2 {
						return anyType, fmt.Errorf("%s: want 2 arguments", sym)
					}
					return op.resultType(sym, args[0], args[1])
				},
			}
		}
		c.Functions[negFn] = &builtin.Function{
			Name: negFn,
			Func: func(args ...any) (any, error) { return negate(args[0]), nil },
			Validate: func(args []reflect.Type) (reflect.Type, error) {
				if len(args) != 1 {
					return anyType, fmt.Errorf("-: want 1 argument")
				}
				if args[0] == decimalType {
					return decimalType, nil
				}
				return anyType, nil
			},
		}
	})
}

// apply evaluates a op b. When either is a decimal, the other must be a
// number (converted exactly; a float through its shortest text) or, for ==
// and !=, anything (a decimal equals only a number of the same value).
func (op *decOp) apply(sym string, a, b any) (any, error) {
	da, aDec := a.(decimal.Decimal)
	db, bDec := b.(decimal.Decimal)
	if !aDec && !bDec {
		return op.generic(a, b), nil
	}
	if op.isCmp() {
		// record.amount > 0 and the like: the sign decides, no conversion.
		if bDec && isZeroInt(a) {
			return op.test(-db.Sign()), nil
		}
		if aDec && isZeroInt(b) {
			return op.test(da.Sign()), nil
		}
	}
	var err error
	if !aDec {
		da, err = decOperand(a)
	} else if !bDec {
		db, err = decOperand(b)
	}
	if err != nil {
		if sym == "==" || sym == "!=" {
			return sym == "!=", nil
		}
		if op.isCmp() && err == errNotFinite {
			// Compare with NaN or an infinity as floats do.
			return op.generic(toFloat(a), toFloat(b)), nil
		}
		if err == errNotNumber {
			err = fmt.Errorf("invalid operation: %s %s %s (a decimal works with numbers only)", typeName(a), sym, typeName(b))
		}
		return nil, err
	}
	if op.isCmp() {
		return op.test(da.Cmp(db)), nil
	}
	return op.dec(da, db)
}

func isZeroInt(v any) bool {
	switch x := v.(type) {
	case int:
		return x == 0
	case int64:
		return x == 0
	}
	return false
}

func toFloat(v any) any {
	if d, ok := v.(decimal.Decimal); ok {
		return d.InexactFloat64()
	}
	return v
}

var errNotNumber = errors.New("not a number")

// decOperand converts the non-decimal operand v of a decimal operation.
func decOperand(v any) (decimal.Decimal, error) {
	d, ok, err := numDecimal(v)
	if err != nil {
		return d, err
	}
	if !ok {
		return d, errNotNumber
	}
	return d, nil
}

// resultType is the static type of a rewritten node; it rejects at compile
// time a decimal combined with a type that can never work.
func (op *decOp) resultType(sym string, l, r reflect.Type) (reflect.Type, error) {
	if op.isCmp() {
		if sym != "==" && sym != "!=" {
			for _, p := range [][2]reflect.Type{{l, r}, {r, l}} {
				if p[0] == decimalType && !decimalPartner(p[1]) {
					return anyType, fmt.Errorf("invalid operation: %s %s %s (a decimal works with numbers only)", staticName(l), sym, staticName(r))
				}
			}
		}
		return boolType, nil
	}
	if l == decimalType || r == decimalType {
		if !decimalPartner(l) || !decimalPartner(r) {
			return anyType, fmt.Errorf("invalid operation: %s %s %s (a decimal works with numbers only)", staticName(l), sym, staticName(r))
		}
		return decimalType, nil
	}
	return anyType, nil
}

// decimalPartner reports whether a value of static type t can meet a
// decimal in arithmetic.
func decimalPartner(t reflect.Type) bool {
	return unknownType(t) || t == decimalType || numberType(t)
}

// rewriteOperands reports whether a binary node with operand types l and r
// must be rewritten: it may involve a decimal at run time.
func rewriteOperands(l, r reflect.Type) bool {
	if l == decimalType || r == decimalType {
		return true
	}
	return (unknownType(l) && mayBeNumber(r)) || (unknownType(r) && mayBeNumber(l))
}

func mayBeNumber(t reflect.Type) bool { return unknownType(t) || numberType(t) }

func negate(v any) any {
	if d, ok := v.(decimal.Decimal); ok {
		return d.Neg()
	}
	return runtime.Negate(v)
}
