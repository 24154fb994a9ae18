package transform

import (
	"testing"

	"github.com/expr-lang/expr"

	"github.com/sluicehq/sluice/adapters"
)

func benchStage(b *testing.B, name string, raw any) Stage {
	b.Helper()
	s, err := NewStage(name, raw, &BuildContext{Path: "stages[0]." + name})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func flatRecord() adapters.Record {
	return adapters.Record{"ORDER_NO": "10042", "CUST": "  ACME Corp ", "COUNTRY": "fr",
		"AMT": "123456", "STATUS": "OPEN", "QTY": int64(3), "PRICE": 19.99}
}

func benchChain(b *testing.B, mapRaw map[string]any, filter string) {
	ch := NewChain([]Stage{benchStage(b, "map", mapRaw), benchStage(b, "filter", filter)}, nil, "out")
	var r Runner
	msg := adapters.Message{ID: "x", Record: flatRecord()}
	var out []Output
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, _ = ch.Process(&r, msg, out[:0])
		if len(out) != 1 || out[0].Err != nil {
			b.Fatalf("unexpected output %+v", out)
		}
	}
}

// BenchmarkChainMapFilter is the engine's common case: three simple
// assignments and a filter over a flat record.
func BenchmarkChainMapFilter(b *testing.B) {
	benchChain(b, map[string]any{
		"order_id": "int(record.ORDER_NO)",
		"customer": "trim(record.CUST)",
		"country":  "upper(record.COUNTRY)",
	}, `record.order_id > 0 && record.STATUS != "CANCELLED"`)
}

// BenchmarkChainMapFilterDecimal adds exact money arithmetic.
func BenchmarkChainMapFilterDecimal(b *testing.B) {
	benchChain(b, map[string]any{
		"order_id": "int(record.ORDER_NO)",
		"customer": "trim(record.CUST)",
		"amount":   "decimal(record.AMT) / 100",
	}, `record.amount > 0 && record.STATUS != "CANCELLED"`)
}

// The patcher's cost: the same expression compiled with this package's
// options (patched) and with plain expr (unpatched).
func benchExpr(b *testing.B, src string, patched bool) {
	rec := flatRecord()
	rec["a"], rec["b"] = int64(7), int64(5)
	var r Runner
	var p *Program
	if patched {
		var err error
		if p, err = Compile(src); err != nil {
			b.Fatal(err)
		}
	} else {
		prog, err := expr.Compile(src, expr.Env(Env{}))
		if err != nil {
			b.Fatal(err)
		}
		p = &Program{src: src, prog: prog}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Eval(p, rec, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExprStaticIntPatched(b *testing.B) {
	benchExpr(b, "int(record.a) * 3 + int(record.b) - 1 > 10", true)
}
func BenchmarkExprStaticIntPlain(b *testing.B) {
	benchExpr(b, "int(record.a) * 3 + int(record.b) - 1 > 10", false)
}
func BenchmarkExprDynamicIntPatched(b *testing.B) {
	benchExpr(b, "record.a * 3 + record.b - 1 > 10", true)
}
func BenchmarkExprDynamicIntPlain(b *testing.B) {
	benchExpr(b, "record.a * 3 + record.b - 1 > 10", false)
}
func BenchmarkExprStringEqualPatched(b *testing.B) {
	benchExpr(b, `record.STATUS != "CANCELLED"`, true)
}
func BenchmarkExprStringEqualPlain(b *testing.B) {
	benchExpr(b, `record.STATUS != "CANCELLED"`, false)
}
