package codec

import (
	"bytes"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

var jsonRecords = []adapters.Record{
	{"id": int64(1), "name": "ACME", "amount": 123.45, "paid": true, "note": nil},
	{"id": int64(-9223372036854775808), "big": uint64(18446744073709551615), "f": 1e-7, "g": 1e21, "z": 0.0},
	{"text": "quote \" backslash \\ tab \t newline \n cr \r nul \x00 é 日本 😀 \u2028", "empty": ""},
	{"nested": map[string]any{"list": []any{int64(1), "two", []any{}, map[string]any{}}, "obj": map[string]any{"k": false}}},
	{},
}

var decimalRecords = []adapters.Record{
	{"amount": decimal.RequireFromString("12.50"), "tiny": decimal.RequireFromString("-0.000000001"), "n": int64(3)},
	{"list": []any{decimal.RequireFromString("1.10"), decimal.RequireFromString("99999999999999999999.99")}},
}

var csvRecords = []adapters.Record{
	{"id": "1", "name": "plain", "note": ""},
	{"id": "2", "name": "with, comma; semicolon\ttab", "note": `say "hi"`},
	{"id": "3", "name": "multi\nline\r\nfield", "note": " leading and trailing "},
	{"id": "#4", "name": `back\slash 'single'`, "note": "Müller € ü"},
}

var xmlRecords = []adapters.Record{
	{"@id": "1", "Customer": map[string]any{"@vip": "yes", "#text": "ACME & Sons <Ltd>"}, "Item": []any{
		map[string]any{"@sku": "A", "@qty": "2"}, map[string]any{"@sku": "B", "#text": "gift"}}, "Note": "line\nbreak \"quoted\" 'single' \r cr"},
	{"@id": "2", "Empty": "", "Lines": []any{"  spaced  ", "two"}, "Deep": map[string]any{"A": map[string]any{"B": "c"}}},
	{"#text": "only text", "@attr": "tab\tnewline\nquote\""},
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		conf map[string]any
		recs []adapters.Record
	}{
		{"lines", map[string]any{"type": "lines"}, []adapters.Record{{"line": "one"}, {"line": ""}, {"line": "tab\tand é"}}},
		{"lines_utf16_crlf", map[string]any{"type": "lines", "charset": "utf-16", "line_ending": "crlf"}, []adapters.Record{{"line": "one"}, {"line": "😀 two"}}},
		{"lines_latin9", map[string]any{"type": "lines", "charset": "iso-8859-15", "field": "msg"}, []adapters.Record{{"msg": "€ and œ"}}},
		{"jsonl", map[string]any{"type": "jsonl"}, jsonRecords},
		{"jsonl_decimal", map[string]any{"type": "jsonl", "decimal_numbers": true}, decimalRecords},
		{"json", map[string]any{"type": "json"}, jsonRecords},
		{"json_decimal", map[string]any{"type": "json", "decimal_numbers": true}, decimalRecords},
		{"json_object", map[string]any{"type": "json", "format": "object"}, jsonRecords[3:4]},
		{"csv_rfc4180", map[string]any{"type": "csv"}, csvRecords},
		{"csv_excel", map[string]any{"type": "csv", "dialect": "excel", "delimiter": ";"}, csvRecords},
		{"csv_tsv", map[string]any{"type": "csv", "dialect": "tsv"}, csvRecords},
		{"csv_escape", map[string]any{"type": "csv", "escape": `\`, "quote": "'", "comment": "#"}, csvRecords},
		{"csv_no_quote", map[string]any{"type": "csv", "escape": `\`, "quote": ""}, csvRecords},
		{"csv_quote_all_lf", map[string]any{"type": "csv", "quote_all": true, "line_ending": "lf"}, csvRecords},
		{"csv_columns", map[string]any{"type": "csv", "columns": []any{"note", "id", "name"}}, csvRecords},
		{"csv_cp1252", map[string]any{"type": "csv", "charset": "windows-1252"}, csvRecords},
		{"csv_utf16", map[string]any{"type": "csv", "charset": "utf-16"}, csvRecords},
		{"csv_utf16be", map[string]any{"type": "csv", "charset": "utf-16be"}, csvRecords},
		{"csv_infer", map[string]any{"type": "csv", "infer_types": true}, []adapters.Record{{"a": int64(1), "b": 2.5, "c": true, "d": "007", "e": "x"}}},
		{"xml", map[string]any{"type": "xml"}, xmlRecords},
		{"xml_named", map[string]any{"type": "xml", "root": "Orders", "record": "Order", "path": "/Orders/Order", "namespaces": "keep", "attr_prefix": "_", "text_key": "value"}, []adapters.Record{{"_id": "1", "value": "v", "ns:Item": "x"}}},
		{"xml_cp1252", map[string]any{"type": "xml", "charset": "windows-1252"}, []adapters.Record{{"@name": "Café", "Price": "5 €"}}},
		{"xml_utf16", map[string]any{"type": "xml", "charset": "utf-16"}, xmlRecords},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCodec(t, tc.conf)
			var buf bytes.Buffer
			encodeAll(t, c, &buf, tc.recs, adapters.EncoderOptions{})
			got := records(mustDecodeAll(t, c, buf.Bytes()))
			checkRecords(t, got, tc.recs, buf.Bytes())
		})
	}
}

func checkRecords(t *testing.T, got, want []adapters.Record, encoded []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d; encoded:\n%q", len(got), len(want), encoded)
	}
	for i := range want {
		if !equalValues(map[string]any(got[i]), map[string]any(want[i])) {
			t.Errorf("record %d:\n got %s\nwant %s\nencoded:\n%q", i, show(got[i]), show(want[i]), encoded)
		}
	}
}

// TestAppend encodes records in two parts, the second with Append as a
// sink resuming a stream after a crash does (the first encoder is flushed,
// never closed), and checks that the stream decodes to all records with one
// header, one opening bracket, one root element and one BOM.
func TestAppend(t *testing.T) {
	cases := []struct {
		name string
		conf map[string]any
		recs []adapters.Record
		once string // text that must appear exactly once
	}{
		{"lines_utf16", map[string]any{"type": "lines", "charset": "utf-16"}, []adapters.Record{{"line": "a"}, {"line": "b"}, {"line": "c"}}, "\xff\xfe"},
		{"jsonl", map[string]any{"type": "jsonl"}, jsonRecords, ""},
		{"json", map[string]any{"type": "json"}, jsonRecords, "[\n"},
		{"csv", map[string]any{"type": "csv"}, csvRecords, "id,name,note"},
		{"csv_excel_bom", map[string]any{"type": "csv", "dialect": "excel"}, csvRecords, "\xef\xbb\xbf"},
		{"xml", map[string]any{"type": "xml"}, xmlRecords, "<records>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCodec(t, tc.conf)
			var buf bytes.Buffer
			first := c.NewEncoder(&buf, adapters.EncoderOptions{})
			for _, r := range tc.recs[:2] {
				if err := first.Encode(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := first.Flush(); err != nil {
				t.Fatal(err)
			}
			encodeAll(t, c, &buf, tc.recs[2:], adapters.EncoderOptions{Append: true})
			if tc.once != "" {
				if n := strings.Count(buf.String(), tc.once); n != 1 {
					t.Fatalf("%q appears %d times in:\n%q", tc.once, n, buf.String())
				}
			}
			checkRecords(t, records(mustDecodeAll(t, c, buf.Bytes())), tc.recs, buf.Bytes())
		})
	}
}

// TestAppendEmpty checks the trailers of streams without records.
func TestEncodeEmpty(t *testing.T) {
	cases := []struct {
		conf   map[string]any
		append bool
		want   string
	}{
		{map[string]any{"type": "json"}, false, "[]\n"},
		{map[string]any{"type": "json"}, true, "\n]\n"},
		{map[string]any{"type": "xml"}, false, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<records>\n</records>\n"},
		{map[string]any{"type": "xml", "root": "Orders"}, true, "</Orders>\n"},
		{map[string]any{"type": "csv"}, false, ""},
		{map[string]any{"type": "jsonl"}, false, ""},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		enc := newCodec(t, tc.conf).NewEncoder(&buf, adapters.EncoderOptions{Append: tc.append})
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if buf.String() != tc.want {
			t.Errorf("%v append=%v: got %q, want %q", tc.conf, tc.append, buf.String(), tc.want)
		}
	}
}
