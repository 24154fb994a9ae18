package codepage

import (
	"errors"
	"testing"

	"golang.org/x/text/encoding/charmap"
)

// The generated 037 and 1140 tables come from Python's codecs; x/text carries
// the same code pages from IBM's data, so the two must agree byte for byte.
func TestGeneratedTablesMatchXText(t *testing.T) {
	for _, tc := range []struct {
		name string
		gen  *[256]rune
		cm   *charmap.Charmap
	}{
		{"cp037", &cp037, charmap.CodePage037},
		{"cp1140", &cp1140, charmap.CodePage1140},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for b := 0; b < 256; b++ {
				if got, want := tc.gen[b], tc.cm.DecodeByte(byte(b)); got != want {
					t.Errorf("byte 0x%02X: generated %U, x/text %U", b, got, want)
				}
			}
		})
	}
}

func TestEBCDICTablesAreBijective(t *testing.T) {
	for _, name := range []string{"cp037", "cp273", "cp500", "cp875", "cp1047", "cp1140", "iso-8859-1", "windows-1252"} {
		t.Run(name, func(t *testing.T) {
			tab, err := Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			for b := 0; b < 256; b++ {
				r := tab.Rune(byte(b))
				if r == 0xFFFD || r == 0x1A && b != 0x3F {
					continue // undefined in 1252; unassigned bytes of 875 decode to SUB
				}
				back, ok := tab.Byte(r)
				if !ok || back != byte(b) {
					t.Errorf("byte 0x%02X -> %U -> 0x%02X, %v", b, r, back, ok)
				}
			}
		})
	}
}

func TestEBCDICInvariants(t *testing.T) {
	for _, name := range []string{"cp037", "cp273", "cp500", "cp875", "cp1047", "cp1140"} {
		tab, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if !tab.EBCDIC() {
			t.Errorf("%s: not marked EBCDIC", name)
		}
		for d := 0; d < 10; d++ {
			if r := tab.Rune(byte(0xF0 + d)); r != rune('0'+d) {
				t.Errorf("%s: 0x%02X is %q, want digit %d", name, 0xF0+d, r, d)
			}
		}
		for r, want := range map[rune]byte{' ': 0x40, '+': 0x4E, '-': 0x60, '\n': 0x25, 0x85: 0x15} {
			if b, ok := tab.Byte(r); !ok || b != want {
				t.Errorf("%s: %q encodes as 0x%02X (%v), want 0x%02X", name, r, b, ok, want)
			}
		}
	}
}

func TestDecodeEncode(t *testing.T) {
	tests := []struct {
		table string
		bytes []byte
		text  string
	}{
		{"cp037", []byte{0xC8, 0x85, 0x93, 0x93, 0x96, 0x40, 0x5B, 0xF1}, "Hello $1"},
		{"cp1140", []byte{0x9F}, "€"},
		{"cp037", []byte{0x9F}, "¤"},
		{"cp273", []byte{0x4A, 0xC0}, "Ää"},
		{"cp875", []byte{0x41, 0x42}, "ΑΒ"},
		{"cp1047", []byte{0xAD, 0xBD}, "[]"},
		{"cp500", []byte{0x4A, 0x5A}, "[]"},
		{"windows-1252", []byte{0x80, 0x41}, "€A"},
		{"ascii", []byte("plain"), "plain"},
		{"latin1", []byte{0xE9}, "é"},
	}
	for _, tc := range tests {
		t.Run(tc.table+"/"+tc.text, func(t *testing.T) {
			tab, err := Lookup(tc.table)
			if err != nil {
				t.Fatal(err)
			}
			if got := tab.DecodeString(tc.bytes); got != tc.text {
				t.Errorf("decode: got %q, want %q", got, tc.text)
			}
			enc, err := tab.AppendEncode([]byte("x"), tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if string(enc[1:]) != string(tc.bytes) || enc[0] != 'x' {
				t.Errorf("encode: got % X, want % X", enc[1:], tc.bytes)
			}
		})
	}
}

func TestEncodeError(t *testing.T) {
	tab, _ := Lookup("cp037")
	dst, err := tab.AppendEncode([]byte{1, 2}, "ab€")
	var ee *EncodeError
	if !errors.As(err, &ee) || ee.Rune != '€' || len(dst) != 2 {
		t.Fatalf("got %v, %v", dst, err)
	}
	if _, err := Lookup("ascii"); err != nil {
		t.Fatal(err)
	}
	a, _ := Lookup("ascii")
	if _, err := a.AppendEncode(nil, "é"); err == nil {
		t.Error("ascii encoded é")
	}
	if got := a.DecodeString([]byte{0xE9}); got != "\uFFFD" {
		t.Errorf("ascii decode of 0xE9: %q", got)
	}
}

func TestLookup(t *testing.T) {
	for _, n := range []string{"CP037", "ibm1047", "Latin1", "cp1252", " ascii "} {
		if _, err := Lookup(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	_, err := Lookup("cp999")
	if err == nil || err.Error() != `unknown character set "cp999" (known: ascii, cp037, cp1047, cp1140, cp273, cp500, cp875, iso-8859-1, windows-1252)` {
		t.Errorf("got %v", err)
	}
}
