package transform

import (
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

func TestDecimalConstruction(t *testing.T) {
	rec := testRecord()
	rec["huge"] = "1e5000"
	runCases(t, rec, nil, []fcase{
		{src: `decimal("12.10")`, want: dec("12.10")},
		{src: `decimal(" -0.50 ")`, want: dec("-0.50")},
		{src: `decimal("1e3")`, want: dec("1000")},
		{src: `decimal("+7")`, want: dec("7")},
		{src: `decimal(42)`, want: dec("42")},
		{src: `decimal(0.1)`, want: dec("0.1")},
		{src: `decimal(record.f)`, want: dec("1.5")},
		{src: `decimal(record.cents)`, want: dec("123456")},
		{src: `decimal(record.amount)`, want: dec("12.10")},
		{src: `decimal(record.bytes)`, err: `"hi" is not a decimal number`},
		{src: `decimal(record.nil)`, want: nil},
		{src: `decimal(record.blank)`, want: nil},
		{src: `decimal("")`, want: nil},
		{src: `decimal("12,5")`, err: `decimal: argument 1: "12,5" is not a decimal number`},
		{src: `decimal(record.s)`, err: `decimal: argument 1 (x): "abc" is not a decimal number`},
		{src: `decimal(record.b)`, err: "decimal: argument 1 (x) must be a number or a string, got bool"},
		{src: `decimal(float("NaN"))`, err: "NaN and infinities have no decimal value"},
		{src: `decimal()`, err: "decimal: want 1 argument, got 0"},
		{src: `decimal("1e-5000")`, err: `decimal: argument 1: "1e-5000" is out of the decimal range`},
		{src: `decimal(record.huge)`, err: `"1e5000" is out of the decimal range`},
		{src: `decimal("1e1000") ** 100`, err: "is too large to compute exactly"},
	})
}

func TestDecimalArithmetic(t *testing.T) {
	runCases(t, testRecord(), nil, []fcase{
		// exactness
		{src: `decimal("12.10") + decimal("0.20")`, want: dec("12.30")},
		{src: `decimal("0.1") + decimal("0.2")`, want: dec("0.3")},
		{src: `decimal("0.1") + decimal("0.2") == decimal("0.3")`, want: true},
		{src: `0.1 + 0.2 == 0.3`, want: false}, // floats stay floats
		{src: `record.amount + decimal("0.20")`, want: dec("12.30")},
		{src: `record.amount - 0.1`, want: dec("12.00")},
		{src: `record.amount * 3`, want: dec("36.30")},
		{src: `record.amount * record.n`, want: dec("60.50")},
		{src: `decimal("0.10") * decimal("0.10")`, want: dec("0.0100")},
		{src: `2 * record.amount`, want: dec("24.20")},
		{src: `decimal(record.cents) / 100`, want: dec("1234.56")},
		{src: `decimal("1200") / 100`, want: dec("12")},
		{src: `decimal("12.00") / 4`, want: dec("3.00")},
		{src: `decimal("10") / 4`, want: dec("2.5")},
		{src: `decimal("10") / 3`, want: dec("3.3333333333333333")},
		{src: `decimal("2") / 3`, want: dec("0.6666666666666667")},
		{src: `decimal("1") / decimal("0.1")`, want: dec("10.0")},
		{src: `decimal("-7.5") / decimal("0.01")`, want: dec("-750.00")},
		{src: `record.amount / 0`, err: "division by zero"},
		{src: `decimal("10.5") % 3`, want: dec("1.5")},
		{src: `record.amount % decimal("0")`, err: "modulo by zero"},
		{src: `decimal("1.1") ** 2`, want: dec("1.21")},
		{src: `decimal("2") ^ 10`, want: dec("1024")},
		{src: `decimal("2") ** 100000`, err: "exponent 100000 is too large"},
		{src: `-record.amount`, want: dec("-12.10")},
		{src: `-(record.amount - 20)`, want: dec("7.90")},
		{src: `-decimal("3")`, want: dec("-3")},
		// chained and nested
		{src: `(record.amount + 1) * 2 - decimal("0.05")`, want: dec("26.15")},
		{src: `round(record.amount * decimal("1.196"), 2)`, want: dec("14.47")},
		// mixed-type errors
		{src: `decimal("1") + "a"`, err: "invalid operation: decimal + string (a decimal works with numbers only)"},
		{src: `decimal("1") < "a"`, err: "invalid operation: decimal < string"},
		{src: `record.amount + record.s`, err: "invalid operation: decimal + string (a decimal works with numbers only)"},
		{src: `record.s + record.amount`, err: "invalid operation: string + decimal"},
		{src: `record.amount + record.nil`, err: "invalid operation: decimal + nil"},
		{src: `record.amount + record.when`, err: "invalid operation: decimal + time"},
		{src: `record.amount * float("Inf")`, err: "NaN and infinities have no decimal value"},
	})
}

func TestDecimalComparison(t *testing.T) {
	runCases(t, testRecord(), nil, []fcase{
		{src: `record.amount > 0`, want: true},
		{src: `record.amount > 12.1`, want: false},
		{src: `record.amount >= 12.1`, want: true},
		{src: `record.amount < 13`, want: true},
		{src: `record.amount <= 12`, want: false},
		{src: `record.amount == 12.1`, want: true},
		{src: `record.amount == decimal("12.1000")`, want: true},
		{src: `record.amount != 12.1`, want: false},
		{src: `record.amount == record.n`, want: false},
		{src: `record.amount > record.n`, want: true},
		{src: `record.n < record.amount`, want: true},
		{src: `record.f < record.amount`, want: true},
		{src: `0 < record.amount && record.amount < 100`, want: true},
		{src: `record.amount == "12.10"`, want: false},
		{src: `record.amount != "12.10"`, want: true},
		{src: `record.amount == nil`, want: false},
		{src: `record.amount != nil`, want: true},
		{src: `record.amount in [12.1, 3]`, want: false}, // in compares with ==, not decimal-aware
		{src: `record.amount > record.s`, err: "invalid operation: decimal > string"},
		{src: `record.amount > float("NaN")`, want: false},
		{src: `record.amount < float("Inf")`, want: true},
		{src: `decimal("1") == 1`, want: true},
		{src: `record.amount == 0`, want: false},
		{src: `decimal("0.00") == 0`, want: true},
		{src: `decimal("-0.01") >= 0`, want: false},
		{src: `0 >= -record.amount`, want: true},
		{src: `0 != record.amount`, want: true},
		{src: `max(1, 2) > decimal("1.5")`, want: true},
	})
}

func TestDecimalFunctions(t *testing.T) {
	runCases(t, testRecord(), nil, []fcase{
		{src: `round(decimal("2.5"))`, want: dec("3")},
		{src: `round(decimal("-2.5"))`, want: dec("-3")},
		{src: `round(decimal("1.2"), 2)`, want: dec("1.20")},
		{src: `round(decimal("2.345"), 2)`, want: dec("2.35")},
		{src: `round(decimal("1234.5"), -2)`, want: dec("1200")},
		{src: `round(2.5)`, want: 3.0},
		{src: `round(record.n)`, want: 5.0}, // the builtin: a float
		{src: `round(2.675, 2)`, want: 2.68},
		{src: `round(1234, -2)`, want: int64(1200)},
		{src: `round(record.nil)`, want: nil},
		{src: `round(record.s)`, err: "round: argument 1 (x) must be a number, got string"},
		{src: `round("x")`, err: "round: argument 1 (x) must be a number, got string"},
		{src: `round(decimal("1"), 1000)`, err: "argument 2 (places) must be between -100 and 100"},
		{src: `round_half_even(decimal("2.345"), 2)`, want: dec("2.34")},
		{src: `round_half_even(decimal("2.355"), 2)`, want: dec("2.36")},
		{src: `round_half_even(decimal("2.5"))`, want: dec("2")},
		{src: `round_half_even(2.5)`, want: 2.0},
		{src: `round_half_even(25, -1)`, want: int64(20)},
		{src: `floor(decimal("-1.5"))`, want: dec("-2")},
		{src: `floor(1.5)`, want: 1.0},
		{src: `floor(record.n)`, want: 5.0},
		{src: `ceil(decimal("1.01"))`, want: dec("2")},
		{src: `ceil(1.01)`, want: 2.0},
		{src: `ceil(record.nil)`, want: nil},
		{src: `abs(decimal("-1.50"))`, want: dec("1.50")},
		{src: `abs(record.neg)`, want: int64(3)},
		{src: `abs(-1.5)`, want: 1.5},
		{src: `abs(record.s)`, err: "abs: argument 1 (x) must be a number"},
		{src: `scale(decimal("12.30"))`, want: int64(2)},
		{src: `scale(decimal("1e3"))`, want: int64(0)},
		{src: `scale(1.25)`, want: int64(2)},
		{src: `scale(7)`, want: int64(0)},
		{src: `rescale(5, 2)`, want: dec("5.00")},
		{src: `rescale(decimal("1.005"), 2)`, want: dec("1.01")},
		{src: `rescale(record.amount, 0)`, want: dec("12")},
		{src: `rescale(record.nil, 2)`, want: nil},
		{src: `decimal_string(decimal("1e3"))`, want: "1000"},
		{src: `decimal_string(record.amount)`, want: "12.10"},
		{src: `decimal_string(2.5, 2)`, want: "2.50"},
		{src: `decimal_string(decimal("2.345"), 2)`, want: "2.35"},
		{src: `decimal_string(record.nil)`, want: nil},
		{src: `decimal_string("1.5")`, err: "decimal_string: argument 1 (x) must be a number, got string"},
	})
}

// TestOperatorsKeepExprSemantics runs expressions without decimals through
// this package and through plain expr: the rewritten operators must give the
// same results and fail on the same inputs.
func TestOperatorsKeepExprSemantics(t *testing.T) {
	rec := testRecord()
	rec["i"], rec["j"], rec["u"], rec["z"] = int64(7), int64(2), uint64(9), int64(0)
	srcs := []string{
		`record.i + record.j`, `record.i - record.j`, `record.i * record.j`, `record.i / record.j`,
		`record.i % record.j`, `record.i ** record.j`, `record.i ^ record.j`, `-record.i`, `-record.f`,
		`record.i / record.z`, `record.i % record.z`, `record.u + record.i`, `record.f * record.i`,
		`record.i + 1`, `record.i / 2`, `2.5 * record.i`, `record.i > record.f`, `record.i >= 7`,
		`record.i < 7.5`, `record.i <= record.j`, `record.i == 7`, `record.i == 7.0`, `record.i != record.j`,
		`record.s + "x"`, `"x" + record.s`, `record.s < "b"`, `record.s >= record.s`, `record.s == "abc"`,
		`record.nil == nil`, `nil == record.missing`, `record.nil != record.s`, `record.b == true`,
		`record.when + duration("1h")`, `record.when - duration("1h")`, `record.when - record.when`,
		`record.when > record.when`, `record.when == record.when`, `1 + 2 * 3`, `10 / 4`, `7 % 3`,
		`record.items == record.items`, `record.i + record.s`, `record.s * 2`, `record.s > 1`, `record.nil + 1`,
		`record.nil < 1`, `-record.s`, `record.customer.name + "!"`, `[1, 2][record.j - 1]`,
		`record.i in [7, 8]`, `record.i + record.i == 14 ? "y" : "n"`,
	}
	for _, src := range srcs {
		t.Run(src, func(t *testing.T) {
			plain, err := expr.Compile(src, expr.Env(Env{}))
			if err != nil {
				t.Fatalf("plain expr does not compile: %v", err)
			}
			want, wantErr := expr.Run(plain, Env{Record: rec})
			var r Runner
			got, gotErr := evalSrc(&r, src, rec, nil)
			if (wantErr != nil) != (gotErr != nil) {
				t.Fatalf("plain expr: %v, %v; sluice: %v, %v", want, wantErr, got, gotErr)
			}
			if wantErr != nil {
				return
			}
			checkValue(t, got, want)
		})
	}
}

// TestStaticOperatorsNotRewritten checks that operators on operands whose
// types are known and not decimal keep expr's own opcodes.
func TestStaticOperatorsNotRewritten(t *testing.T) {
	for _, src := range []string{
		`int(record.a) * 3 + int(record.b) - 1 > 10`,
		`float(record.a) / 2.5 <= 1.0`,
		`string(record.a) + "x" == "1x"`,
		`len(record.s) % 2 == 0`,
		`record.s + "x"`,
		`record.s == "x" && record.t != nil`,
	} {
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if ops := rewrittenOps(p); len(ops) > 0 {
			t.Errorf("%s: operators rewritten: %v\n%s", src, ops, p.prog.Disassemble())
		}
	}
	p, err := Compile(`record.a + 1 > -record.b`)
	if err != nil {
		t.Fatal(err)
	}
	if ops := rewrittenOps(p); !reflect.DeepEqual(ops, []string{"binary", "binary", "neg"}) {
		t.Errorf("record.a + 1 > -record.b: rewritten %v:\n%s", ops, p.prog.Disassemble())
	}
	// field accesses and operators are typed calls, not reflective OpCall
	if asm := p.prog.Disassemble(); regexp.MustCompile(`OpCall\s`).MatchString(asm) || strings.Count(asm, "OpCallTyped") != 5 {
		t.Errorf("record.a + 1 > -record.b: want 5 typed calls:\n%s", asm)
	}
}

// rewrittenOps lists, sorted, the operators of p that the patcher turned
// into typed calls of decimal-aware functions: "binary" (the closures of
// decOps cannot be told apart) or "neg" for a unary minus.
func rewrittenOps(p *Program) []string {
	var v opFinder
	node := p.prog.Node()
	ast.Walk(&node, &v)
	sort.Strings(v.found)
	return v.found
}

type opFinder struct{ found []string }

func (f *opFinder) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	switch c := call.Callee.(type) {
	case *ast.ConstantNode:
		switch fn := c.Value.(type) {
		case func(any, any) any, func(any, any) bool:
			f.found = append(f.found, "binary")
		case func(any) any:
			if reflect.ValueOf(fn).Pointer() == reflect.ValueOf(negate).Pointer() {
				f.found = append(f.found, "neg")
			}
		}
	case *ast.IdentifierNode:
		if strings.HasPrefix(c.Value, "__sluice_") {
			f.found = append(f.found, c.Value)
		}
	}
}

func TestDecimalTemplate(t *testing.T) {
	tpl, err := CompileTemplate(`total={{ decimal("12.10") + decimal("0.20") }} n={{ record.amount * 2 }}`)
	if err != nil {
		t.Fatal(err)
	}
	var r Runner
	got, err := r.Render(tpl, adapters.Record{"amount": decimal.RequireFromString("1.50")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "total=12.30 n=3.00"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
