package fixedwidth

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
)

func newTestCodec(t testing.TB, yamlText string) adapters.Codec {
	t.Helper()
	c, err := buildCodec(yamlText, "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func buildCodec(yamlText, file string) (adapters.Codec, error) {
	return codectest.Build(Name, yamlText, file)
}

func decodeAll(c adapters.Codec, input []byte) []codectest.Item {
	return codectest.DecodeAll(c.NewDecoder(bytes.NewReader(input)), 10000)
}

func goldenDirs(t *testing.T) []string {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	return dirs
}

func readInput(t *testing.T, dir string) []byte {
	t.Helper()
	for _, name := range []string{"input.txt", "input.bin"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			return b
		}
	}
	t.Fatalf("%s: no input.txt or input.bin", dir)
	return nil
}

// goldenCodec builds the codec of a golden case from its codec.yaml.
func goldenCodec(t *testing.T, dir string) adapters.Codec {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join(dir, "codec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return newTestCodec(t, string(conf))
}

// TestGolden decodes each testdata/golden/*/input with its codec.yaml and
// compares the records and errors with want.jsonl.
func TestGolden(t *testing.T) {
	for _, dir := range goldenDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c := goldenCodec(t, dir)
			got := codectest.Render(decodeAll(c, readInput(t, dir)))
			codectest.Golden(t, filepath.Join(dir, "want.jsonl"), got)
		})
	}
}

// TestRoundTrip encodes the good records of each golden case and decodes
// them again: the records must come back equal.
func TestRoundTrip(t *testing.T) {
	for _, dir := range goldenDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c := goldenCodec(t, dir)
			encoded, again, want := codectest.RoundTrip(t, c, decodeAll(c, readInput(t, dir)), nil)
			if g, w := codectest.Render(again), codectest.Render(want); !bytes.Equal(g, w) {
				t.Errorf("round trip differs\n--- got\n%s--- want\n%s--- encoded\n%q", g, w, encoded)
			}
		})
	}
}

// TestEncodeExact checks byte-exact output for canonical input.
func TestEncodeExact(t *testing.T) {
	c := newTestCodec(t, `
charset: cp037
record_length: 12
fields:
  - {name: k, width: 2}
  - {name: n, width: 5, type: int}
  - {name: d, width: 5, type: decimal, scale: 1, sign: trailing}
`)
	var out bytes.Buffer
	enc := c.NewEncoder(&out, adapters.EncoderOptions{})
	for _, rec := range []adapters.Record{
		{"k": "AB", "n": int64(-42), "d": decimal.RequireFromString("-1.5")},
		{"k": "C", "n": nil, "d": "12.3"},
	} {
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0xC1, 0xC2, 0x60, 0xF0, 0xF0, 0xF4, 0xF2, 0xF0, 0xF0, 0xF1, 0xF5, 0x60, // AB -0042 0015-
		0xC3, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0xF0, 0xF0, 0xF1, 0xF2, 0xF3, // C, null, 00123
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("got  % X\nwant % X", out.Bytes(), want)
	}
}

func TestEncodeErrors(t *testing.T) {
	c := newTestCodec(t, `
record_types:
  - name: a
    when: {start: 1, length: 1, value: A}
    fields:
      - {name: s, start: 2, length: 3}
      - {name: n, width: 3, type: int}
      - {name: d, width: 4, type: decimal, scale: 1}
      - {name: t, width: 8, type: date}
      - {name: b, width: 1, type: bool}
`)
	enc := c.NewEncoder(io.Discard, adapters.EncoderOptions{})
	tests := []struct {
		rec  adapters.Record
		want string
	}{
		{adapters.Record{"_type": "b"}, `_type "b" names no record type`},
		{adapters.Record{}, `_type "" names no record type`},
		{adapters.Record{"_type": "a", "s": "toolong"}, "field s: value of 7 bytes does not fit the field's 3"},
		{adapters.Record{"_type": "a", "n": int64(1000)}, "field n: 1000 does not fit 3 bytes"},
		{adapters.Record{"_type": "a", "n": 1.5}, "field n: 1.5 is not an integer"},
		{adapters.Record{"_type": "a", "d": "1.25"}, "field d: 1.25 has more than 1 decimal places"},
		{adapters.Record{"_type": "a", "d": "abc"}, `field d: "abc" is not a number`},
		{adapters.Record{"_type": "a", "d": []any{}}, "field d: want a number, got []interface {}"},
		{adapters.Record{"_type": "a", "t": 5}, "field t: want a time or a string for a date, got int"},
		{adapters.Record{"_type": "a", "b": "Y"}, "field b: want a bool, got string"},
		{adapters.Record{"_type": "a", "s": "a\nb"}, "record contains a newline byte"},
	}
	for _, tc := range tests {
		err := enc.Encode(tc.rec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.rec, err, tc.want)
		}
	}
	if err := enc.Encode(adapters.Record{"_type": "a", "t": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "b": true}); err != nil {
		t.Errorf("good record: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, conf, want string
	}{
		{"no layout", `charset: ascii`, "codec.fields: give either fields or record_types"},
		{"both", "fields: [{name: a, width: 1}]\nrecord_types: [{name: x, fields: [{name: a, width: 1}]}]", "give either fields or record_types"},
		{"no position", `fields: [{name: a}]`, `codec.fields[0]: field "a" needs start and length, or width`},
		{"width and start", `fields: [{name: a, width: 2, start: 1}]`, "codec.fields[0].width: give either width, or start with length"},
		{"start zero", `fields: [{name: a, start: 0, length: 2}]`, "start is 1-based"},
		{"zero width", `fields: [{name: a, width: 0}]`, "codec.fields[0].width: want a length of 1 or more, got 0"},
		{"duplicate", `fields: [{name: a, width: 1}, {name: a, width: 1}]`, `codec.fields[1].name: duplicate field name "a"`},
		{"past record", "record_length: 4\nfields: [{name: a, width: 5}]", `field "a" ends at byte 5, past record_length 4`},
		{"bad charset", "charset: cp999\nfields: [{name: a, width: 1}]", `codec.charset: invalid value "cp999"`},
		{"bad pad", `fields: [{name: a, width: 3, pad: "ab"}]`, `codec.fields[0].pad: pad "ab": "ab" is not a one-byte character`},
		{"pad not in charset", "charset: cp037\nfields: [{name: a, width: 3, pad: \"€\"}]", "cannot be encoded in cp037"},
		{"scale on int", `fields: [{name: a, width: 3, type: int, scale: 2}]`, "scale applies to decimal fields, not int"},
		{"bad date", `fields: [{name: a, width: 8, type: date, format: YYYYMMXX}]`, `codec.fields[0].format: date format "YYYYMMXX": unexpected 'X'`},
		{"bool too long", `fields: [{name: a, width: 1, type: bool, true_value: yes}]`, "true_value and false_value must fit"},
		{"unknown type", `fields: [{name: a, width: 1, type: money}]`, `codec.fields[0].type: invalid value "money"`},
		{"dup type", `record_types: [{name: x, fields: [{name: a, width: 1}]}, {name: x, fields: [{name: a, width: 1}]}]`, `codec.record_types[1].name: duplicate record type "x"`},
		{"type field clash", `record_types: [{name: x, fields: [{name: _type, width: 1}]}]`, `field "_type" clashes with type_field`},
		{"value too long", `record_types: [{name: x, when: {start: 1, length: 1, value: AB}, fields: [{name: a, width: 1}]}]`, `value "AB" is longer than length 1`},
		{"unknown key", `fields: [{name: a, width: 1, colour: red}]`, `codec.fields[0].colour: unknown key "colour"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildCodec(tc.conf, "pipe.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "pipe.yaml: ") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestDateLayouts(t *testing.T) {
	for format, want := range map[string]string{
		"YYYYMMDD":            "20060102",
		"CCYY-MM-DD":          "2006-01-02",
		"DD.MM.YY":            "02.01.06",
		"YYDDD":               "06002",
		"YYYY-MM-DD HH:MI:SS": "2006-01-02 15:04:05",
		"2006-01-02T15:04":    "2006-01-02T15:04",
	} {
		got, err := dateLayout(format)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", format, got, err, want)
		}
	}
	if _, err := dateLayout(""); err == nil {
		t.Error("empty format accepted")
	}
}

func TestPositionAndSetStart(t *testing.T) {
	c := newTestCodec(t, `fields: [{name: a, width: 2}]`)
	dec := c.NewDecoder(strings.NewReader("ab\ncd\n"))
	dec.(adapters.ReaderAtOffset).SetStart(100, 7)
	if _, err := dec.Decode(); err != nil {
		t.Fatal(err)
	}
	if r, l, o := dec.Position(); r != 1 || l != 8 || o != 103 {
		t.Errorf("position %d %d %d", r, l, o)
	}
	if _, err := dec.Decode(); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode(); err != io.EOF {
		t.Errorf("got %v, want EOF", err)
	}
	if r, l, o := dec.Position(); r != 2 || l != 9 || o != 106 {
		t.Errorf("position %d %d %d", r, l, o)
	}
}

func TestReadErrorEndsDecoding(t *testing.T) {
	c := newTestCodec(t, `fields: [{name: a, width: 2}]`)
	boom := errors.New("disk on fire")
	dec := c.NewDecoder(io.MultiReader(strings.NewReader("ab\n"), errReader{boom}))
	if _, err := dec.Decode(); err != nil {
		t.Fatal(err)
	}
	_, err := dec.Decode()
	var re *adapters.RecordError
	if !errors.Is(err, boom) || errors.As(err, &re) {
		t.Fatalf("got %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestLargeDecimals(t *testing.T) {
	c := newTestCodec(t, `fields: [{name: d, width: 25, type: decimal, scale: 3}, {name: e, width: 25, type: decimal, scale: 4}, {name: i, width: 20, type: int}]`)
	line := "-1234567890123456789012345" + "        123456789012345.6" + "09223372036854775807"
	items := decodeAll(c, []byte(line[1:]+"\n"))
	if len(items) != 1 || items[0].Err != nil {
		t.Fatalf("%v", items)
	}
	rec := items[0].Record
	if got := rec["d"].(decimal.Decimal).StringFixed(3); got != "1234567890123456789012.345" {
		t.Errorf("d = %s", got)
	}
	e := rec["e"].(decimal.Decimal)
	if e.Exponent() != -4 || e.StringFixed(4) != "123456789012345.6000" {
		t.Errorf("e = %s exp %d", e.StringFixed(4), e.Exponent())
	}
	if rec["i"] != int64(9223372036854775807) {
		t.Errorf("i = %v", rec["i"])
	}
	items = decodeAll(c, []byte(strings.Repeat(" ", 50)+"99999999999999999999\n"))
	if len(items) != 1 || items[0].Err == nil || !strings.Contains(items[0].Err.Error(), "integer out of range") {
		t.Errorf("%v", items)
	}
}
