package fixedwidth

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codepage"
)

// charset is the character set of the data plus the bytes numbers are made
// of, looked up once.
type charset struct {
	table *codepage.Table // nil for UTF-8
	space byte
	plus  byte
	minus byte
	point byte
	comma byte
	zero  byte
	digit [256]int8 // digit value, or -1
	nl    []byte    // bytes that end a line
	lf    byte      // the byte the encoder writes for a newline
}

func newCharset(name string) (*charset, error) {
	cs := &charset{space: ' ', plus: '+', minus: '-', point: '.', comma: ',', zero: '0', nl: []byte{'\n'}, lf: '\n'}
	if name != "utf-8" {
		t, err := codepage.Lookup(name)
		if err != nil {
			return nil, err
		}
		cs.table = t
		cs.space, cs.plus, cs.minus = t.MustByte(' '), t.MustByte('+'), t.MustByte('-')
		cs.point, cs.comma, cs.zero = t.MustByte('.'), t.MustByte(','), t.MustByte('0')
		cs.lf = t.MustByte('\n')
		if t.EBCDIC() {
			cs.nl = []byte{t.MustByte('\u0085'), cs.lf}
		}
	}
	for i := range cs.digit {
		cs.digit[i] = -1
	}
	for d := 0; d < 10; d++ {
		cs.digit[cs.zero+byte(d)] = int8(d)
	}
	return cs, nil
}

// decodeString returns the text of raw.
func (cs *charset) decodeString(raw []byte, scratch *[]byte) string {
	*scratch = cs.appendText((*scratch)[:0], raw)
	return string(*scratch)
}

// appendText appends the UTF-8 text of raw to dst; invalid UTF-8 input
// becomes U+FFFD.
func (cs *charset) appendText(dst, raw []byte) []byte {
	switch {
	case cs.table != nil:
		return cs.table.AppendDecode(dst, raw)
	case utf8.Valid(raw):
		return append(dst, raw...)
	}
	return append(dst, bytes.ToValidUTF8(raw, []byte("\uFFFD"))...)
}

// encode appends the bytes of s.
func (cs *charset) encode(dst []byte, s string) ([]byte, error) {
	if cs.table == nil {
		return append(dst, s...), nil
	}
	return cs.table.AppendEncode(dst, s)
}

// encodeChar returns the single byte of a one-character string s.
func (cs *charset) encodeChar(s string) (byte, error) {
	b, err := cs.encode(nil, s)
	if err != nil {
		return 0, err
	}
	if len(b) != 1 {
		return 0, fmt.Errorf("%q is not a one-byte character", s)
	}
	return b[0], nil
}

type kind int

const (
	kString kind = iota
	kInt
	kDecimal
	kDate
	kBool
)

// field is one compiled field.
type field struct {
	name     string
	kind     kind
	off, len int // 0-based byte offset and length
	scale    int32
	point    bool // write the decimal point
	trim     bool
	right    bool // right-justified when encoding
	pad      byte
	trailing bool // minus sign after the digits
	layout   string
	fastDate *numericDate // nil: time.Parse
	tval     string
	fval     string
	tbytes   []byte
	fbytes   []byte
}

// recordType is one layout and how to recognise it.
type recordType struct {
	name   string
	match  bool // has a discriminator
	mOff   int
	mValue []byte // encoded, padded to its length
	fields []field
	size   int // bytes the encoder writes
	index  int // position in codec.types
}

func kindOf(s string) kind {
	switch s {
	case "int":
		return kInt
	case "decimal":
		return kDecimal
	case "date":
		return kDate
	case "bool":
		return kBool
	}
	return kString
}

// compileFields checks a field list and computes positions.
func compileFields(list []*adapters.Config, cs *charset, recLen int) ([]field, error) {
	var out []field
	next := 0
	names := map[string]bool{}
	for _, fc := range list {
		f := field{name: fc.String("name"), kind: kindOf(fc.String("type")), trim: fc.Bool("trim")}
		if f.name == "" {
			return nil, fc.Errorf("name", "field name is empty")
		}
		if names[f.name] {
			return nil, fc.Errorf("name", "duplicate field name %q", f.name)
		}
		names[f.name] = true
		switch {
		case fc.Has("width") && (fc.Has("start") || fc.Has("length")):
			return nil, fc.Errorf("width", "give either width, or start with length")
		case fc.Has("width"):
			f.off, f.len = next, fc.Int("width")
		case fc.Has("start") && fc.Has("length"):
			if fc.Int("start") < 1 {
				return nil, fc.Errorf("start", "start is 1-based: want 1 or more, got %d", fc.Int("start"))
			}
			f.off, f.len = fc.Int("start")-1, fc.Int("length")
		default:
			return nil, fc.Errorf("", "field %q needs start and length, or width", f.name)
		}
		lenKey := "length"
		if fc.Has("width") {
			lenKey = "width"
		}
		if f.len < 1 {
			return nil, fc.Errorf(lenKey, "want a length of 1 or more, got %d", f.len)
		}
		if f.len > 1<<20 {
			return nil, fc.Errorf(lenKey, "field of %d bytes is longer than 1 MiB", f.len)
		}
		if recLen > 0 && f.off+f.len > recLen {
			return nil, fc.Errorf(lenKey, "field %q ends at byte %d, past record_length %d", f.name, f.off+f.len, recLen)
		}
		next = f.off + f.len
		numeric := f.kind == kInt || f.kind == kDecimal
		f.right = numeric
		if fc.Has("justify") {
			f.right = fc.String("justify") == "right"
		}
		padText := " "
		if numeric && f.right {
			padText = "0"
		}
		if fc.Has("pad") {
			padText = fc.String("pad")
		}
		pad, err := cs.encodeChar(padText)
		if err != nil {
			return nil, fc.Errorf("pad", "pad %q: %v", padText, err)
		}
		f.pad = pad
		f.trailing = fc.String("sign") == "trailing"
		scale := fc.Int("scale")
		if scale < 0 || scale > 30 {
			return nil, fc.Errorf("scale", "want a scale between 0 and 30, got %d", scale)
		}
		if scale != 0 && f.kind != kDecimal {
			return nil, fc.Errorf("scale", "scale applies to decimal fields, not %s", fc.String("type"))
		}
		f.scale = int32(scale)
		f.point = fc.Bool("explicit_point")
		switch f.kind {
		case kDate:
			layout, err := dateLayout(fc.String("format"))
			if err != nil {
				return nil, fc.Errorf("format", "%v", err)
			}
			f.layout = layout
			f.fastDate = compileNumericDate(layout)
		case kBool:
			f.tval, f.fval = fc.String("true_value"), fc.String("false_value")
			if f.tbytes, err = cs.encode(nil, f.tval); err != nil {
				return nil, fc.Errorf("true_value", "%v", err)
			}
			if f.fbytes, err = cs.encode(nil, f.fval); err != nil {
				return nil, fc.Errorf("false_value", "%v", err)
			}
			if len(f.tbytes) > f.len || len(f.fbytes) > f.len {
				return nil, fc.Errorf("true_value", "true_value and false_value must fit the field's %d bytes", f.len)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func fieldsEnd(fs []field) int {
	end := 0
	for _, f := range fs {
		end = max(end, f.off+f.len)
	}
	return end
}
