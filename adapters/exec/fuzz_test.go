package exec

import (
	"encoding/json"
	"testing"
)

// FuzzParseFrame feeds arbitrary lines to the frame parser and the record
// conversion: they must not panic, and a record must come out with Sluice's
// value types only.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","protocol":1}`,
		`{"type":"message","id":"1","record":{"n":1,"big":18446744073709551615,"f":1.5e300,"huge":1e999,"l":[1,{"x":null}]}}`,
		`{"type":"message","id":"2","raw":"AAEC","meta":{"k":"v"}}`,
		`{"type":"nack","id":"3","error":"x","kind":"permanent"}`,
		`{"type":"log","level":"warn","msg":"m","attrs":{"a":[1]}}`,
		`{"type":"message","record":[1,2]}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr frame
		if err := parseFrame(b, &fr); err != nil || fr.Record == nil {
			return
		}
		rec, err := toRecord(fr.Record)
		if err != nil {
			return
		}
		var check func(v any)
		check = func(v any) {
			switch x := v.(type) {
			case nil, bool, string, int64, uint64, float64:
			case map[string]any:
				for _, e := range x {
					check(e)
				}
			case []any:
				for _, e := range x {
					check(e)
				}
			case json.Number:
				// only numbers too large for float64 stay text
				t.Fatalf("json.Number %q left in the record", x)
			default:
				t.Fatalf("value of type %T in a record", v)
			}
		}
		check(map[string]any(rec))
	})
}
