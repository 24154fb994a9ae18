package codec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
)

// goldenCases decode the files in testdata/golden; the expected records,
// errors and positions are in testdata/golden/<name>.golden.
var goldenCases = []struct {
	name  string
	input string
	conf  map[string]any
}{
	{"lines_mixed", "lines_mixed.txt", map[string]any{"type": "lines", "max_line_bytes": 30}},
	{"lines_skip_empty", "lines_mixed.txt", map[string]any{"type": "lines", "field": "text", "skip_empty": true}},
	{"lines_cp1252", "lines_cp1252.txt", map[string]any{"type": "lines", "charset": "windows-1252"}},
	{"jsonl_orders", "jsonl_orders.jsonl", map[string]any{"type": "jsonl"}},
	{"jsonl_decimal", "jsonl_orders.jsonl", map[string]any{"type": "jsonl", "decimal_numbers": true}},
	{"json_array", "json_array.json", map[string]any{"type": "json"}},
	{"json_array_decimal", "json_array.json", map[string]any{"type": "json", "decimal_numbers": true}},
	{"json_truncated", "json_truncated.json", map[string]any{"type": "json"}},
	{"json_missing_comma", "json_missing_comma.json", map[string]any{"type": "json"}},
	{"json_object", "json_object.json", map[string]any{"type": "json"}},
	{"json_sequence", "json_sequence.json", map[string]any{"type": "json"}},
	{"csv_excel", "csv_excel.csv", map[string]any{"type": "csv", "dialect": "excel", "delimiter": ";"}},
	{"csv_cp1252", "csv_cp1252.csv", map[string]any{"type": "csv", "charset": "windows-1252"}},
	{"csv_utf16", "csv_utf16.csv", map[string]any{"type": "csv", "charset": "utf-16"}},
	{"csv_utf16be", "csv_utf16be.csv", map[string]any{"type": "csv", "charset": "utf-16be"}},
	{"csv_multiline", "csv_multiline.csv", map[string]any{"type": "csv"}},
	{"csv_malformed", "csv_malformed.csv", map[string]any{"type": "csv"}},
	{"csv_malformed_strict", "csv_malformed.csv", map[string]any{"type": "csv", "strict_columns": true}},
	{"csv_malformed_lazy", "csv_malformed.csv", map[string]any{"type": "csv", "lazy_quotes": true}},
	{"csv_custom", "csv_custom.csv", map[string]any{"type": "csv", "skip_rows": 2, "comment": "#", "quote": "'", "escape": `\`, "trim": true, "header": false, "columns": []any{"code", "what", "note"}}},
	{"csv_tsv_infer", "csv_tsv.tsv", map[string]any{"type": "csv", "dialect": "tsv", "infer_types": true}},
	{"csv_tsv_strings", "csv_tsv.tsv", map[string]any{"type": "csv", "dialect": "tsv", "header": false}},
	{"xml_orders", "xml_orders.xml", map[string]any{"type": "xml", "path": "/Orders/Order"}},
	{"xml_orders_keep_ns", "xml_orders.xml", map[string]any{"type": "xml", "path": "/o:Orders/o:Order", "namespaces": "keep", "attr_prefix": "_", "text_key": "value", "trim": true}},
	{"xml_any_depth", "xml_orders.xml", map[string]any{"type": "xml", "path": "//Item", "infer_types": true}},
	{"xml_broken", "xml_broken.xml", map[string]any{"type": "xml", "path": "/Orders/Order"}},
	{"xml_badentity", "xml_badentity.xml", map[string]any{"type": "xml"}},
	{"xml_cp1252", "xml_cp1252.xml", map[string]any{"type": "xml", "charset": "windows-1252"}},
	{"xml_truncated", "xml_truncated.xml", map[string]any{"type": "xml"}},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "golden", tc.input))
			if err != nil {
				t.Fatal(err)
			}
			got := renderResults(mustDecodeAll(t, newCodec(t, tc.conf), in))
			codectest.Golden(t, filepath.Join("testdata", "golden", tc.name+".golden"), []byte(got))
		})
	}
}
