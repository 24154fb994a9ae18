package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/internal/box"
)

func TestRegistered(t *testing.T) {
	for _, name := range []string{"lines", "jsonl", "json", "csv", "xml"} {
		spec, err := adapters.CodecSpec(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range spec.Fields {
			if f.Description == "" || f.Example == nil {
				t.Errorf("%s: field %s lacks a description or an example", name, f.Name)
			}
		}
		if spec.Summary == "" || spec.Example == "" {
			t.Errorf("%s: spec lacks a summary or an example", name)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		conf map[string]any
		want string
	}{
		{map[string]any{"type": "csv", "delimiter": ";;"}, "codec.delimiter: must be one ASCII character"},
		{map[string]any{"type": "csv", "delimiter": ""}, "codec.delimiter: must be one character"},
		{map[string]any{"type": "csv", "quote": ","}, "codec.quote: must differ from the delimiter"},
		{map[string]any{"type": "csv", "escape": `"`}, "codec.escape: must differ"},
		{map[string]any{"type": "csv", "charset": "ebcdic"}, `codec.charset: invalid value "ebcdic"`},
		{map[string]any{"type": "csv", "columns": []any{"a", "a"}}, "codec.columns: column names must be unique"},
		{map[string]any{"type": "csv", "quote": "", "quote_all": true}, "codec.quote_all: needs a quote character"},
		{map[string]any{"type": "csv", "skip_rows": -1}, "codec.skip_rows: must be zero or more"},
		{map[string]any{"type": "csv", "delimeter": ";"}, `codec.delimeter: unknown key "delimeter"`},
		{map[string]any{"type": "xml", "path": "Orders/Order"}, "codec.path: must start with / or //"},
		{map[string]any{"type": "xml", "path": "/Orders/1x"}, `codec.path: "1x" is not an element name`},
		{map[string]any{"type": "xml", "root": "a b"}, `codec.root: "a b" is not an XML element name`},
		{map[string]any{"type": "lines", "field": ""}, "codec.field: must not be empty"},
		{map[string]any{"type": "json", "format": "ndjson"}, `codec.format: invalid value "ndjson"`},
	}
	for _, tc := range cases {
		_, err := adapters.NewCodec(tc.conf, adapters.DecodeOptions{Path: "codec"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got error %v, want %q", tc.conf, err, tc.want)
		}
	}
}

func TestJSONEncodeValues(t *testing.T) {
	ts := time.Date(2024, 2, 29, 13, 4, 5, 123456789, time.FixedZone("CET", 3600))
	rec := adapters.Record{
		"t": ts, "b": []byte{0, 1, 2, 250}, "d": decimal.RequireFromString("1234.5600"), "i": 3, "f": 2.0,
		"s": struct{ A int }{7}, "u": "\xff<>&",
	}
	var buf bytes.Buffer
	encodeAll(t, newCodec(t, map[string]any{"type": "jsonl"}), &buf, []adapters.Record{rec}, adapters.EncoderOptions{})
	want := `{"b":"AAEC+g==","d":1234.5600,"f":2.0,"i":3,"s":{"A":7},"t":"2024-02-29T13:04:05.123456789+01:00","u":"\ufffd<>&"}` + "\n"
	if buf.String() != want {
		t.Fatalf("got  %s\nwant %s", buf.String(), want)
	}
}

// Records whose keys change from one to the next, with as many keys or not,
// are encoded with sorted keys: the encoder's key order of the previous
// record (keyBuf.shape) is used only for a record with exactly its keys.
func TestJSONEncodeShapes(t *testing.T) {
	recs := []adapters.Record{
		{"b": 1, "a": 2, "c": adapters.Record{"z": 1, "y": 2}},
		{"c": 3, "a": 4, "b": 5},
		{"d": 6, "a": 7, "b": 8},
		{"a": 9, "b": 10},
		{"b": 11, "a": 12, "d": 13},
		{},
		{"a": 14},
	}
	want := `{"a":2,"b":1,"c":{"y":2,"z":1}}
{"a":4,"b":5,"c":3}
{"a":7,"b":8,"d":6}
{"a":9,"b":10}
{"a":12,"b":11,"d":13}
{}
{"a":14}
`
	for _, typ := range []string{"jsonl", "json"} {
		var buf bytes.Buffer
		encodeAll(t, newCodec(t, map[string]any{"type": typ}), &buf, recs, adapters.EncoderOptions{})
		got := buf.String()
		if typ == "json" {
			var lines []string
			for _, l := range strings.Split(want, "\n") {
				if l != "" {
					lines = append(lines, l)
				}
			}
			if compact := strings.Join(strings.Fields(got), ""); compact != "["+strings.Join(lines, ",")+"]" {
				t.Errorf("json: got %s", got)
			}
			continue
		}
		if got != want {
			t.Errorf("%s: got\n%swant\n%s", typ, got, want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	good := adapters.Record{"line": "ok", "a": "1"}
	cases := []struct {
		conf map[string]any
		rec  adapters.Record
		want string
	}{
		{map[string]any{"type": "lines"}, adapters.Record{"other": "x"}, `record has no field "line"`},
		{map[string]any{"type": "lines"}, adapters.Record{"line": "a\nb"}, "holds a line break"},
		{map[string]any{"type": "lines", "charset": "windows-1252"}, adapters.Record{"line": "日本"}, "cannot be written in charset windows-1252"},
		{map[string]any{"type": "jsonl"}, adapters.Record{"x": math.NaN()}, `field "x": unsupported value: float NaN`},
		{map[string]any{"type": "jsonl"}, adapters.Record{"x": make(chan int)}, "unsupported value: chan int"},
		{map[string]any{"type": "csv", "quote": "", "columns": []any{"line", "a"}}, adapters.Record{"line": "a,b"}, "needs quoting"},
		{map[string]any{"type": "xml"}, adapters.Record{"bad name": "x"}, `field "bad name" is not an XML element name`},
		{map[string]any{"type": "xml"}, adapters.Record{"a": "bell\x07"}, "control character"},
		{map[string]any{"type": "xml"}, adapters.Record{"@1": "x"}, "not an XML attribute name"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		enc := newCodec(t, tc.conf).NewEncoder(&buf, adapters.EncoderOptions{})
		err := enc.Encode(tc.rec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want %q", tc.conf, tc.rec, err, tc.want)
			continue
		}
		if adapters.KindOf(err) != adapters.Permanent || !errors.Is(err, ErrUnsupportedValue) {
			t.Errorf("%v: error %v is not a permanent ErrUnsupportedValue", tc.conf, err)
		}
		if err := enc.Encode(good); err != nil {
			t.Errorf("%v: encoder unusable after a bad record: %v", tc.conf, err)
		}
	}
	enc := newCodec(t, map[string]any{"type": "json", "format": "object"}).NewEncoder(io.Discard, adapters.EncoderOptions{})
	if err := enc.Encode(good); err != nil {
		t.Fatal(err)
	}
	if err := enc.Encode(good); err == nil || !strings.Contains(err.Error(), "one record per stream") {
		t.Fatalf("second object: %v", err)
	}
}

// genReader produces head, then n copies of elem (with sep between), then
// tail, without holding the whole stream.
type genReader struct {
	parts     []string
	elem, sep string
	n, i      int
	pending   string
}

func newGen(head, elem, sep, tail string, n int) *genReader {
	return &genReader{parts: []string{head, tail}, elem: elem, sep: sep, n: n}
}

func (g *genReader) Read(p []byte) (int, error) {
	for g.pending == "" {
		switch {
		case g.i == 0:
			g.pending = g.parts[0]
		case g.i <= g.n:
			g.pending = g.elem
			if g.i > 1 {
				g.pending = g.sep + g.elem
			}
		case g.i == g.n+1:
			g.pending = g.parts[1]
		default:
			return 0, io.EOF
		}
		g.i++
	}
	n := copy(p, g.pending)
	g.pending = g.pending[n:]
	return n, nil
}

// TestConstantMemory decodes large generated streams and checks that the
// decoders' buffers stay small: the stream is never held whole.
func TestConstantMemory(t *testing.T) {
	const n = 100000
	long := strings.Repeat("x", 4<<20)
	cases := []struct {
		name string
		conf map[string]any
		r    io.Reader
		recs int
		errs int
	}{
		{"json_array", map[string]any{"type": "json"}, newGen("[", `{"id": 1, "name": "element of a large array"}`, ",\n", "]", n), n, 0},
		{"xml", map[string]any{"type": "xml", "path": "/Orders/Order"}, newGen("<Orders>", `<Order id="1"><Name>element of a large document</Name></Order>`, "\n", "</Orders>", n), n, 0},
		{"lines_long", map[string]any{"type": "lines", "max_line_bytes": "1KiB"}, newGen("", long, "\n", "\nshort", 2), 1, 2},
		{"jsonl_long", map[string]any{"type": "jsonl", "max_line_bytes": "1KiB"}, newGen("", `{"a":"`+long+`"}`, "\n", "\n{}", 2), 1, 2},
		{"json_long", map[string]any{"type": "json", "max_record_bytes": "1KiB"}, newGen("[", `{"a":"`+long+`"}`, ",", `,{}]`, 2), 1, 2},
		{"csv_long", map[string]any{"type": "csv", "header": false, "max_record_bytes": "1KiB"}, newGen("", long, "\n", "\nshort", 2), 1, 2},
		{"csv_long_quoted", map[string]any{"type": "csv", "header": false, "max_record_bytes": "1KiB"}, newGen("", `"`+long, "\n", "\nshort", 1), 1, 1},
		{"xml_long", map[string]any{"type": "xml", "max_record_bytes": "1KiB"}, newGen("<r>", "<a>"+long+"</a>", "", "<a>short</a></r>", 2), 1, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dec := newCodec(t, tc.conf).NewDecoder(tc.r)
			recs, errs := 0, 0
			for {
				_, err := dec.Decode()
				if err == io.EOF {
					break
				}
				var re *adapters.RecordError
				if errors.As(err, &re) {
					errs++
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				recs++
			}
			if recs != tc.recs || errs != tc.errs {
				t.Fatalf("got %d records and %d errors, want %d and %d", recs, errs, tc.recs, tc.errs)
			}
			if size := bufferSize(dec); size > 1<<20 {
				t.Fatalf("decoder buffer grew to %d bytes", size)
			}
		})
	}
}

func bufferSize(dec adapters.Decoder) int {
	switch d := dec.(type) {
	case *linesDecoder:
		return cap(d.in.buf)
	case *jsonlDecoder:
		return cap(d.in.buf)
	case *jsonDecoder:
		return cap(d.in.buf)
	case *csvDecoder:
		return cap(d.in.buf) + cap(d.out) + cap(d.extra)
	case *xmlDecoder:
		n := cap(d.in.buf)
		for _, b := range d.free {
			n += cap(b)
		}
		return n
	}
	panic(fmt.Sprintf("unknown decoder %T", dec))
}

func TestCSVResumeNeedsColumns(t *testing.T) {
	dec := newCodec(t, map[string]any{"type": "csv"}).NewDecoder(strings.NewReader("1,2\n"))
	dec.(adapters.ReaderAtOffset).SetStart(10, 1)
	if _, err := dec.Decode(); err == nil || !strings.Contains(err.Error(), "set columns") {
		t.Fatalf("got %v", err)
	}
}

func TestXMLDeclaredEncoding(t *testing.T) {
	doc := `<?xml version="1.0" encoding="ISO-8859-1"?><r><a/></r>`
	dec := newCodec(t, map[string]any{"type": "xml"}).NewDecoder(strings.NewReader(doc))
	if _, err := dec.Decode(); err == nil || !strings.Contains(err.Error(), `declares encoding "ISO-8859-1" but the codec reads charset utf-8`) {
		t.Fatalf("got %v", err)
	}
	dec = newCodec(t, map[string]any{"type": "xml", "charset": "iso-8859-1"}).NewDecoder(strings.NewReader(doc))
	if rec, err := dec.Decode(); err != nil || rec == nil {
		t.Fatalf("got %v %v", rec, err)
	}
}

func TestJSONDepthLimit(t *testing.T) {
	deep := `{"a":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}\n{}\n"
	res := mustDecodeAll(t, newCodec(t, map[string]any{"type": "jsonl"}), []byte(deep))
	if len(res) != 2 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "nested deeper") || res[1].Err != nil {
		t.Fatalf("got %s", renderResults(res))
	}
}

func TestInferValue(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{"0", int64(0)}, {"-12", int64(-12)}, {"007", "007"}, {"1.50", 1.5}, {"1e3", 1000.0}, {"+1", "+1"},
		{"9223372036854775808", uint64(9223372036854775808)}, {"TRUE", true}, {"False", false}, {"yes", "yes"},
		{"", ""}, {"1.", "1."}, {".5", ".5"}, {"0x10", "0x10"}, {"NaN", "NaN"}, {"1_000", "1_000"},
	}
	for _, tc := range cases {
		var a box.Arena
		if got := inferValue(tc.in, false, nil); got != tc.want {
			t.Errorf("inferValue(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
		if got := inferValue(tc.in, false, &a); got != tc.want {
			t.Errorf("inferValue(%q) with an arena = %#v, want %#v", tc.in, got, tc.want)
		}
	}
	if got := inferValue("1.50", true, nil); !equalValues(got, decimal.RequireFromString("1.50")) {
		t.Errorf("decimal: got %#v", got)
	}
}

func TestNaturalCompare(t *testing.T) {
	cols := []string{"col10", "col2", "b", "a10", "a9", "col1", "a09", "", "x"}
	slices.SortFunc(cols, naturalCompare)
	want := []string{"", "a9", "a09", "a10", "b", "col1", "col2", "col10", "x"}
	if !slices.Equal(cols, want) {
		t.Fatalf("got %q, want %q", cols, want)
	}
}
