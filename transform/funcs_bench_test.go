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

// BenchmarkChainBenchPipeline is the chain of bench/pipeline: a map of three
// fields (arithmetic, a string function, a comparison), a filter and a
// route, over a fresh copy of a decoded 7-field order record per op (the
// copy is part of the figure, as a decoded record is in the pipeline).
func BenchmarkChainBenchPipeline(b *testing.B) {
	route, err := NewStage("route", []any{map[string]any{"when": "record.priority", "to": "priority"}, map[string]any{"to": "normal"}},
		&BuildContext{Path: "stages[2].route", Queues: map[string]bool{"priority": true, "normal": true}})
	if err != nil {
		b.Fatal(err)
	}
	ch := NewChain([]Stage{benchStage(b, "map", map[string]any{
		"total":    "record.qty * record.price",
		"customer": "upper(record.customer)",
		"priority": "record.qty > 40",
	}), benchStage(b, "filter", `record.status != "cancelled"`)}, route.(Router), "")
	src := adapters.Record{"order_id": int64(12345), "customer": "customer-12345", "sku": "SKU-0042",
		"qty": int64(17), "price": 123.45, "status": "open", "created": "2026-11-12T10:17:00Z"}
	meta := map[string]string{adapters.MetaSource: "in"}
	var r Runner
	var out []Output
	b.ReportAllocs()
	for b.Loop() {
		rec := make(adapters.Record, len(src))
		for k, v := range src {
			rec[k] = v
		}
		out, _ = ch.Process(&r, adapters.Message{ID: "x", Record: rec, Meta: meta}, out[:0])
		if len(out) != 1 || out[0].Err != nil || out[0].Queues[0] != "normal" {
			b.Fatalf("unexpected output %+v", out)
		}
	}
}
