// Package codepage holds the single-byte character sets of the fixed_width
// and copybook codecs: the EBCDIC code pages 037, 273, 500, 875, 1047 and
// 1140, ASCII, ISO 8859-1 and Windows-1252, as 256-entry lookup tables.
//
// Tables are built once and shared; a *Table is immutable and safe for
// concurrent use. Decoding is a table lookup per byte (no transform.Reader on
// the hot path); encoding looks runes up in a reverse table.
package codepage

//go:generate python3 gen_tables.py tables_gen.go

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Table is a single-byte character set.
type Table struct {
	name   string
	ebcdic bool
	dec    [256]rune
	// ascii is true where dec[b] < 0x80, to append one byte without
	// utf8.AppendRune.
	ascii [256]bool
	// lo maps runes below 256 to a byte plus one (0: not representable).
	lo [256]uint16
	hi map[rune]byte
}

// Name returns the canonical name of the table ("cp037", "ascii").
func (t *Table) Name() string { return t.name }

// EBCDIC reports whether the table is an EBCDIC code page: digits are bytes
// 0xF0–0xF9 and zoned decimals carry their sign in the high nibble.
func (t *Table) EBCDIC() bool { return t.ebcdic }

// Rune returns the character byte b stands for.
func (t *Table) Rune(b byte) rune { return t.dec[b] }

// Byte returns the byte that encodes r, or false when r is not in the table.
func (t *Table) Byte(r rune) (byte, bool) {
	if r >= 0 && r < 256 {
		v := t.lo[r]
		return byte(v - 1), v != 0
	}
	b, ok := t.hi[r]
	return b, ok
}

// MustByte returns the byte of r, which the caller knows every table has
// (space, digits, '+', '-', '.').
func (t *Table) MustByte(r rune) byte {
	b, ok := t.Byte(r)
	if !ok {
		panic(fmt.Sprintf("codepage %s: no byte for %q", t.name, r))
	}
	return b
}

// AppendDecode appends the UTF-8 text of src to dst.
func (t *Table) AppendDecode(dst, src []byte) []byte {
	for _, b := range src {
		if t.ascii[b] {
			dst = append(dst, byte(t.dec[b]))
		} else {
			dst = utf8.AppendRune(dst, t.dec[b])
		}
	}
	return dst
}

// DecodeString returns the UTF-8 text of src.
func (t *Table) DecodeString(src []byte) string {
	var buf [256]byte
	return string(t.AppendDecode(buf[:0], src))
}

// EncodeError reports a character the table cannot encode.
type EncodeError struct {
	Table string
	Rune  rune
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("character %q cannot be encoded in %s", e.Rune, e.Table)
}

// AppendEncode appends the bytes of s to dst. A character outside the table
// returns an *EncodeError and dst as it was before the call.
func (t *Table) AppendEncode(dst []byte, s string) ([]byte, error) {
	n := len(dst)
	for _, r := range s {
		b, ok := t.Byte(r)
		if !ok {
			return dst[:n], &EncodeError{Table: t.name, Rune: r}
		}
		dst = append(dst, b)
	}
	return dst, nil
}

func newTable(name string, ebcdic bool, dec *[256]rune) *Table {
	t := &Table{name: name, ebcdic: ebcdic, dec: *dec, hi: map[rune]byte{}}
	// Fill the reverse table from the high bytes down so that, where two
	// bytes decode to the same rune (U+FFFD in ascii), the lowest wins.
	for i := 255; i >= 0; i-- {
		r := dec[i]
		t.ascii[i] = r < utf8.RuneSelf
		if r == utf8.RuneError {
			continue
		}
		if r < 256 {
			t.lo[r] = uint16(i) + 1
		} else {
			t.hi[r] = byte(i)
		}
	}
	return t
}

func fromCharmap(name string, ebcdic bool, cm *charmap.Charmap) *Table {
	var dec [256]rune
	for i := range dec {
		dec[i] = cm.DecodeByte(byte(i))
	}
	return newTable(name, ebcdic, &dec)
}

var (
	tables  = map[string]*Table{}
	aliases = map[string]string{
		"us-ascii": "ascii", "latin1": "iso-8859-1", "iso8859-1": "iso-8859-1",
		"cp1252": "windows-1252", "ebcdic": "cp037",
		"ibm037": "cp037", "ibm273": "cp273", "ibm500": "cp500", "ibm875": "cp875",
		"ibm1047": "cp1047", "ibm1140": "cp1140",
	}
)

func init() {
	var ascii, latin1 [256]rune
	for i := range ascii {
		latin1[i] = rune(i)
		ascii[i] = rune(i)
		if i >= 0x80 {
			ascii[i] = utf8.RuneError
		}
	}
	for _, t := range []*Table{
		newTable("ascii", false, &ascii),
		newTable("iso-8859-1", false, &latin1),
		fromCharmap("windows-1252", false, charmap.Windows1252),
		newTable("cp037", true, &cp037),
		newTable("cp273", true, &cp273),
		newTable("cp500", true, &cp500),
		newTable("cp875", true, &cp875),
		fromCharmap("cp1047", true, charmap.CodePage1047),
		newTable("cp1140", true, &cp1140),
	} {
		tables[t.name] = t
	}
}

// Lookup returns the table named name (case-insensitive; "cp037", "ibm037",
// "ascii", "latin1", "windows-1252", ...).
func Lookup(name string) (*Table, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if a, ok := aliases[n]; ok {
		n = a
	}
	if t, ok := tables[n]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("unknown character set %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Names returns the canonical table names, sorted.
func Names() []string {
	out := make([]string, 0, len(tables))
	for n := range tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
