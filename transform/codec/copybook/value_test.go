package copybook

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
	"github.com/sluicehq/sluice/transform/codec/copybook/recvalue"
)

// codecFor writes src to a temporary copybook and builds a codec on it.
func codecFor(t testing.TB, src, options string) adapters.Codec {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.cpy")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return newTestCodec(t, "copybook: "+path+"\n"+options)
}

func encodeOne(t testing.TB, c adapters.Codec, rec adapters.Record) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	enc := c.NewEncoder(&out, adapters.EncoderOptions{})
	if err := enc.Encode(rec); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), nil
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// TestEncodedBytes checks the exact bytes of each usage against hand-made
// encodings, and that they decode back.
func TestEncodedBytes(t *testing.T) {
	tests := []struct {
		pic, opts string
		value     any
		want      []byte
	}{
		{"PIC S9(5)V99 COMP-3", "", dec("123.45"), []byte{0x00, 0x12, 0x34, 0x5C}},
		{"PIC S9(5)V99 COMP-3", "", dec("-0.01"), []byte{0x00, 0x00, 0x00, 0x1D}},
		{"PIC 9(4) COMP-3", "", int64(1234), []byte{0x01, 0x23, 0x4F}},
		{"PIC S9(4) COMP", "", int64(-2), []byte{0xFF, 0xFE}},
		{"PIC 9(9) BINARY", "", int64(305419896), []byte{0x12, 0x34, 0x56, 0x78}},
		{"PIC S9(10) COMP-4", "", int64(-1), []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
		{"PIC 9(4) COMP-5", "comp5_byte_order: little", int64(65535), []byte{0xFF, 0xFF}},
		{"PIC S9(9) COMP-5", "comp5_byte_order: little", int64(-2), []byte{0xFE, 0xFF, 0xFF, 0xFF}},
		{"PIC 9(18) COMP-5", "", uint64(18446744073709551615), []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
		{"PIC S9(3)", "", int64(-123), []byte{0xF1, 0xF2, 0xD3}},
		{"PIC S9(3)", "", int64(123), []byte{0xF1, 0xF2, 0xC3}},
		{"PIC 9(3)", "", int64(7), []byte{0xF0, 0xF0, 0xF7}},
		{"PIC S9(3) SIGN LEADING", "", int64(-123), []byte{0xD1, 0xF2, 0xF3}},
		{"PIC S9(3) SIGN TRAILING SEPARATE", "", int64(-12), []byte{0xF0, 0xF1, 0xF2, 0x60}},
		{"PIC S9(3) SIGN LEADING SEPARATE", "", int64(5), []byte{0x4E, 0xF0, 0xF0, 0xF5}},
		{"PIC S9(3)", "encoding: ascii", int64(-120), []byte("12}")},
		{"PIC S9(3)", "encoding: ascii", int64(-123), []byte("12L")},
		{"PIC S9(3)", "encoding: ascii", int64(123), []byte("123")},
		{"COMP-1", "", 1.0, []byte{0x41, 0x10, 0x00, 0x00}},
		{"COMP-1", "", -118.625, []byte{0xC2, 0x76, 0xA0, 0x00}},
		{"COMP-2", "", 0.1, []byte{0x40, 0x19, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9A}},
		{"COMP-1", "float_format: ieee", 1.5, []byte{0x3F, 0xC0, 0x00, 0x00}},
		{"PIC X(4) JUSTIFIED RIGHT", "", "AB", []byte{0x40, 0x40, 0xC1, 0xC2}},
		{"PIC -ZZ,ZZ9.99", "encoding: ascii", dec("-1234.5"), []byte("- 1,234.50")},
		{"PIC ZZZ9.99", "encoding: ascii", dec("0"), []byte("   0.00")},
		{"PIC ZZZ.ZZ", "encoding: ascii", dec("0"), []byte("      ")},
		{"PIC ZZZ.ZZ", "encoding: ascii", dec("0.05"), []byte("   .05")},
		{"PIC **,**9.99", "encoding: ascii", dec("12.3"), []byte("****12.30")},
		{"PIC $$,$$9.99CR", "encoding: ascii", dec("-1.5"), []byte("    $1.50CR")},
		{"PIC $$,$$9.99DB", "encoding: ascii", dec("1234.5"), []byte("$1,234.50  ")},
		{"PIC +++9", "encoding: ascii", int64(-5), []byte("  -5")},
		{"PIC ---9", "encoding: ascii", int64(42), []byte("  42")},
		{"PIC 9(3)-", "encoding: ascii", int64(-7), []byte("007-")},
		{"PIC 99/99/99", "encoding: ascii", int64(311224), []byte("31/12/24")},
		{"PIC 9(3)PP", "", int64(12300), []byte{0xF1, 0xF2, 0xF3}},
		{"PIC VPP99", "", dec("0.0045"), []byte{0xF4, 0xF5}},
	}
	for _, tc := range tests {
		t.Run(tc.pic+"/"+tc.opts, func(t *testing.T) {
			c := codecFor(t, "01 R.\n  05 F "+tc.pic+".\n", tc.opts)
			got, err := encodeOne(t, c, adapters.Record{"F": tc.value})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("encoded % X, want % X", got, tc.want)
			}
			items := decodeAll(c, got)
			if len(items) != 1 || items[0].Err != nil {
				t.Fatalf("decode: %+v", items)
			}
			back := items[0].Record["F"]
			if g, w := codectest.Value(back), codectest.Value(normalize(tc.value, back)); !equalJSON(g, w) {
				t.Errorf("decoded %v, want %v", g, w)
			}
		})
	}
}

// normalize turns the test value into what decoding yields when they are
// equal numbers: decoded decimals carry the picture's scale, floats may
// have been rounded by COMP-1.
func normalize(want, got any) any {
	if g, ok := got.(decimal.Decimal); ok {
		if w, err := recvalue.Decimal(want); err == nil && w.Equal(g) {
			return g
		}
	}
	if f, ok := want.(float64); ok {
		if g, ok := got.(float64); ok && math.Abs(f-g) <= math.Abs(f)*1e-6 {
			return g
		}
	}
	return want
}

func equalJSON(a, b any) bool {
	ra := codectest.Render([]codectest.Item{{Record: adapters.Record{"v": a}}})
	rb := codectest.Render([]codectest.Item{{Record: adapters.Record{"v": b}}})
	return bytes.Equal(ra, rb)
}

// TestHFPRoundTrip: COMP-2 holds every float64 exactly (56-bit fraction),
// COMP-1 to 24 bits.
func TestHFPRoundTrip(t *testing.T) {
	for _, f := range []float64{1, -1, 0.1, 3.141592653589793, 1e-70, 7.2e75, -123456789.125, 1.0 / 3, 1e-78} {
		var b8 [8]byte
		if err := floatToHFP(f, b8[:]); err != nil {
			t.Fatalf("%g: %v", f, err)
		}
		if got := hfpToFloat(b8[:]); got != f {
			t.Errorf("COMP-2 %g -> % X -> %g", f, b8, got)
		}
		var b4 [4]byte
		if err := floatToHFP(f, b4[:]); err != nil {
			t.Fatal(err)
		}
		if got := hfpToFloat(b4[:]); math.Abs(got-f) > math.Abs(f)*1e-6 {
			t.Errorf("COMP-1 %g -> % X -> %g", f, b4, got)
		}
	}
	if err := floatToHFP(1e300, make([]byte, 8)); err == nil {
		t.Error("1e300 fit in HFP")
	}
	b := make([]byte, 8)
	if err := floatToHFP(1e-300, b); err != nil || hfpToFloat(b) != 0 {
		t.Errorf("underflow: % X %v", b, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	src := `01 R.
  05 S PIC X(3).
  05 N PIC 9(3).
  05 D PIC S9(3)V9 COMP-3.
  05 B PIC S9(4) COMP.
  05 C PIC 9.
  05 T OCCURS 0 TO 3 DEPENDING ON C PIC X.
  05 G.
    10 E PIC 9.
  05 L PIC X OCCURS 2.
  05 F COMP-1.
`
	c := codecFor(t, src, "")
	tests := []struct {
		rec  adapters.Record
		want string
	}{
		{adapters.Record{"S": "TOOLONG"}, "field S (byte 1 of the record): value of 7 characters does not fit 3"},
		{adapters.Record{"S": "€"}, "cannot be encoded in cp037"},
		{adapters.Record{"N": int64(1000)}, "field N (byte 4 of the record): 1000 does not fit 3 digits"},
		{adapters.Record{"N": int64(-1)}, "-1 is negative, but the picture has no sign"},
		{adapters.Record{"D": dec("1.25")}, "1.25 has more than 1 decimal places"},
		{adapters.Record{"D": "x"}, `"x" is not a number`},
		{adapters.Record{"B": int64(40000)}, "40000 does not fit 4 digits"},
		{adapters.Record{"C": int64(2), "T": []any{"a"}}, "field T (byte 13 of the record): 1 entries, but its DEPENDING ON counter is 2"},
		{adapters.Record{"C": int64(2), "T": "ab"}, "want a list for OCCURS, got string"},
		{adapters.Record{"G": "x"}, "want a group (a mapping), got string"},
		{adapters.Record{"G": adapters.Record{"E": "x"}}, `field G.E (byte 13 of the record): "x" is not a number`},
		{adapters.Record{"L": []any{"a", "b", "c"}}, "3 entries, OCCURS 2"},
		{adapters.Record{"L": []any{"a", "bb"}}, "field L[1] (byte 15 of the record): value of 2 characters does not fit 1"},
		{adapters.Record{"F": math.Inf(1)}, "+Inf cannot be stored"},
	}
	for _, tc := range tests {
		_, err := encodeOne(t, c, tc.rec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v:\n got %v\nwant %s", tc.rec, err, tc.want)
		}
	}
	// Missing values are written as blanks and zeros.
	got, err := encodeOne(t, c, adapters.Record{"C": int64(1), "T": []any{"Z"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0, 0, 0, 0, 0, 0xF1, 0xE9, 0x40, 0x40, 0x40, 0, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("defaults: got % X\nwant % X", got, want)
	}
}

func TestDecodeValues(t *testing.T) {
	src := "01 R.\n  05 Z PIC S9(3).\n  05 P PIC S9(3) COMP-3.\n  05 U PIC 9(18) COMP-5.\n  05 X PIC X(4).\n"
	c := codecFor(t, src, "trim: both")
	tests := []struct {
		data []byte
		want string
	}{
		{[]byte{0x40, 0xF1, 0xF2, 0x12, 0x3D, 0, 0, 0, 0, 0, 0, 0, 1, 0x40, 0xC1, 0x00, 0x40}, `"P":-123,"U":1,"X":"A","Z":12`},
		{[]byte{0x40, 0x40, 0x40, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x40, 0x40, 0x40}, `"P":null,"U":{"uint64":"9223372036854775808"},"X":"","Z":null`},
		{[]byte{0xF1, 0xC1, 0xF2, 0x12, 0x3D, 0, 0, 0, 0, 0, 0, 0, 1, 0x40, 0x40, 0x40, 0x40}, "field Z (byte 1 of the record): invalid zoned decimal"},
		{[]byte{0xF1, 0xF1, 0xF2, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 1, 0x40, 0x40, 0x40, 0x40}, "field P (byte 4 of the record): invalid packed decimal"},
		{[]byte{0xF1, 0xF1, 0xF2, 0x1A, 0x3C, 0, 0, 0, 0, 0, 0, 0, 1, 0x40, 0x40, 0x40, 0x40}, "invalid packed decimal"},
		{[]byte{0xF1, 0xF1, 0xF2, 0x12, 0x3C, 0, 0}, "record 1 (byte offset 0): truncated record at end of input: want 17 bytes, got 7"},
	}
	for _, tc := range tests {
		got := string(codectest.Render(decodeAll(c, tc.data)))
		if !strings.Contains(got, tc.want) {
			t.Errorf("% X:\n got %s\nwant %s", tc.data, got, tc.want)
		}
	}
}

// TestRedefinesLenient: a view whose bytes do not fit its picture is null;
// the other views decode.
func TestRedefinesLenient(t *testing.T) {
	src := "01 R.\n  05 A PIC X(3).\n  05 B REDEFINES A PIC S9(5) COMP-3.\n  05 C REDEFINES A.\n    10 C1 PIC 9(3).\n"
	c := codecFor(t, src, "")
	got := string(codectest.Render(decodeAll(c, []byte{0xC1, 0xC2, 0xC3})))
	if !strings.Contains(got, `"record":{"A":"ABC","B":null,"C":{"C1":null}}`) {
		t.Errorf("got %s", got)
	}
	got = string(codectest.Render(decodeAll(c, []byte{0x12, 0x34, 0x5D})))
	if !strings.Contains(got, `"B":-12345`) || !strings.Contains(got, `"C1":null`) {
		t.Errorf("got %s", got)
	}
	// Encoding picks the typed view that is complete.
	b, err := encodeOne(t, c, adapters.Record{"A": "", "B": int64(-12345), "C": adapters.Record{"C1": nil}})
	if err != nil || !bytes.Equal(b, []byte{0x12, 0x34, 0x5D}) {
		t.Errorf("encode: % X %v", b, err)
	}
}

func TestPositionTextAndSetStart(t *testing.T) {
	c := codecFor(t, "01 R.\n  05 A PIC X(2).\n", "encoding: ascii\nrecord_format: text")
	d := c.NewDecoder(strings.NewReader("ab\n\ncd\n"))
	d.(adapters.ReaderAtOffset).SetStart(10, 4)
	for i := 0; i < 2; i++ {
		if _, err := d.Decode(); err != nil {
			t.Fatal(err)
		}
	}
	if r, l, o := d.Position(); r != 2 || l != 7 || o != 17 {
		t.Errorf("position %d %d %d", r, l, o)
	}
	items := decodeAll(c, []byte("abc\n"))
	if len(items) != 1 || items[0].Err == nil || !strings.Contains(items[0].Err.Error(), "line of 3 bytes is longer than the record (2)") {
		t.Errorf("%+v", items)
	}
}

// TestODOCounterLost: in fixed format, a record whose counter is out of
// range cannot be framed, and decoding stops with an error that says so.
func TestODOCounterLost(t *testing.T) {
	c := codecFor(t, "01 R.\n  05 N PIC 9.\n  05 T PIC X OCCURS 1 TO 3 DEPENDING ON N.\n", "")
	items := decodeAll(c, []byte{0xF1, 0xC1, 0xF2, 0xC1, 0xC2, 0xF9, 0xC1})
	got := string(codectest.Render(items))
	for _, want := range []string{`"T":["A"]`, `"T":["A","B"]`, "cannot find where the next record starts", "count 9 is outside 1 to 3"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	var re *adapters.RecordError
	if last := items[len(items)-1].Err; last == nil || errorsAs(last, &re) {
		t.Errorf("last error should end decoding: %v", last)
	}
}

func errorsAs(err error, target **adapters.RecordError) bool { return errors.As(err, target) }

// TestEncodeDoesNotModifyRecord: records are shared (several sinks may read
// one message), so encoding must leave every value as it was.
func TestEncodeDoesNotModifyRecord(t *testing.T) {
	c := codecFor(t, "01 R.\n  05 A PIC S9(5) COMP-3.\n  05 B PIC S9(3)V99.\n  05 C PIC S9(4) COMP.\n", "")
	rec := adapters.Record{"A": decimal.New(-123, 0), "B": dec("-1.50"), "C": decimal.New(-7, 0)}
	before := string(codectest.Render([]codectest.Item{{Record: rec}}))
	if _, err := encodeOne(t, c, rec); err != nil {
		t.Fatal(err)
	}
	if after := string(codectest.Render([]codectest.Item{{Record: rec}})); after != before {
		t.Errorf("record changed:\n%s%s", before, after)
	}
}

func TestTextEncodeRejectsNewlines(t *testing.T) {
	c := codecFor(t, "01 R.\n  05 A PIC S9(3) COMP-3.\n", "record_format: text")
	_, err := encodeOne(t, c, adapters.Record{"A": int64(250)}) // 25 0C: 0x25 is LF in EBCDIC
	if err == nil || !strings.Contains(err.Error(), "newline byte (0x25) at byte 1") {
		t.Errorf("got %v", err)
	}
}
