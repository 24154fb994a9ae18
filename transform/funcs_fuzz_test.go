package transform

import "testing"

// FuzzExpr compiles and runs arbitrary expressions: the patcher and the
// library must never panic, whatever the syntax tree or the values.
func FuzzExpr(f *testing.F) {
	for _, s := range []string{
		`record.amount > 0 && record.s != "x"`, `decimal(record.cents) / 100`, `-record.amount * 2 % 3`,
		`regex_extract(record.s, "(a)(b)?", 2)`, `lookup("t", record.n, 1)`, `pad_left(record.n, 4, "0")`,
		`filter(record.items, .sku == "A1")`, `record?.customer?.name ?? "x"`, `substr(record.s, -1)`,
		`parse_julian(record.n, "CYYDDD")`, `get(record, "items.0.sku", nil)`, `let x = record.f; x ** 2`,
		`record.when + duration("1h") > now()`, `meta.source + record.s`, `round(record.amount, 2) == 12.1`,
	} {
		f.Add(s)
	}
	rec := testRecord()
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 300 {
			return
		}
		p, err := Compile(src)
		if err != nil {
			return
		}
		var r Runner
		_, _ = r.Eval(p, rec, map[string]string{"source": "s"})
	})
}
