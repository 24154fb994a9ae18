package fixedwidth

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/transform/codec/copybook/recvalue"
	"github.com/sluicehq/sluice/transform/codec/internal/box"
)

var (
	errNotNumber = errors.New("not a number")
	errNoPoint   = errors.New("no decimal point in a field with explicit_point")
)

// number is a scanned numeric field.
type number struct {
	neg   bool
	point bool
	frac  int   // digits after the point
	v     int64 // the digits as an integer, when small is true
	small bool
	ascii []byte // the digits in ASCII, when small is false
}

// scanNumber reads [pad|space]* [sign] digits [. digits] [sign] [pad|space]*.
// It reports blank input with ok false and a nil error.
func (cs *charset) scanNumber(raw []byte, pad byte, scratch *[]byte) (n number, ok bool, err error) {
	i, j := 0, len(raw)
	for i < j && (raw[i] == cs.space || raw[i] == pad && pad != cs.zero) {
		i++
	}
	for j > i && (raw[j-1] == cs.space || raw[j-1] == pad && pad != cs.zero) {
		j--
	}
	if i == j {
		return n, false, nil
	}
	signs := 0
	if raw[i] == cs.plus || raw[i] == cs.minus {
		n.neg = raw[i] == cs.minus
		signs++
		i++
		for i < j && raw[i] == cs.space {
			i++
		}
	}
	if j > i && (raw[j-1] == cs.plus || raw[j-1] == cs.minus) {
		n.neg = raw[j-1] == cs.minus
		signs++
		j--
	}
	if signs > 1 || i == j {
		return n, false, errNotNumber
	}
	n.small = true
	sig := 0
	digits := (*scratch)[:0]
	for ; i < j; i++ {
		c := raw[i]
		if c == cs.point && !n.point {
			n.point = true
			continue
		}
		d := cs.digit[c]
		if d < 0 {
			return n, false, errNotNumber
		}
		if n.point {
			n.frac++
		}
		if sig > 0 || d != 0 {
			sig++
		}
		if sig > 18 {
			n.small = false
		}
		n.v = n.v*10 + int64(d)
		digits = append(digits, '0'+byte(d))
	}
	*scratch = digits
	if !n.small {
		n.ascii = digits
	}
	return n, true, nil
}

// decimal returns the number as a decimal.Decimal boxed by a.
func (n *number) decimal(scale int32, explicit bool, a *box.Arena) any {
	if n.point && !explicit && n.small && n.frac > int(scale) {
		// A field with implied decimals that got extra zero decimals in
		// the text: keep the field's scale, as encoding will.
		if drop := pow10(int32(n.frac) - scale); drop > 0 && n.v%drop == 0 {
			n.v /= drop
			n.frac = int(scale)
		}
	}
	exp, up := scale, int32(0)
	if n.point {
		// Read as written, but keep the field's scale: 123.4 in a scale-2
		// field is 123.40.
		exp = max(int32(n.frac), scale)
		up = exp - int32(n.frac)
	}
	if n.small && n.v < 1e17/pow10(up) {
		v := n.v * pow10(up)
		if n.neg {
			v = -v
		}
		return a.Decimal(v, -exp)
	}
	bi := new(big.Int)
	if n.small {
		bi.SetInt64(n.v)
	} else {
		bi.SetString(string(n.ascii), 10)
	}
	if up > 0 {
		bi.Mul(bi, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(up)), nil))
	}
	if n.neg {
		bi.Neg(bi)
	}
	return decimal.NewFromBigInt(bi, -exp)
}

func pow10(n int32) int64 {
	p := int64(1)
	for ; n > 0 && p < 1e18; n-- {
		p *= 10
	}
	return p
}

func (cs *charset) trimSpace(raw []byte) []byte {
	i, j := 0, len(raw)
	for i < j && raw[i] == cs.space {
		i++
	}
	for j > i && raw[j-1] == cs.space {
		j--
	}
	return raw[i:j]
}

// allZero reports whether raw is empty or only zero digits.
func (cs *charset) allZero(raw []byte) bool {
	for _, c := range raw {
		if c != cs.zero {
			return false
		}
	}
	return true
}

// appendString appends the text of a string field to dst.
func (f *field) appendString(cs *charset, dst, raw []byte) []byte {
	if f.trim {
		i, j := 0, len(raw)
		for i < j && (raw[i] == cs.space || raw[i] == f.pad) {
			i++
		}
		for j > i && (raw[j-1] == cs.space || raw[j-1] == f.pad) {
			j--
		}
		raw = raw[i:j]
	}
	dst = cs.appendText(dst, raw)
	for n := len(raw); n < f.len && !f.trim; n++ {
		dst = append(dst, ' ') // a short line reads as if padded with spaces
	}
	return dst
}

// decode returns the value of the field's bytes, boxed by a.
func (f *field) decode(cs *charset, raw []byte, scratch *[]byte, a *box.Arena) (any, error) {
	switch f.kind {
	case kInt:
		n, ok, err := cs.scanNumber(raw, f.pad, scratch)
		if !ok {
			return nil, err
		}
		if n.point {
			return nil, errors.New("not an integer")
		}
		v := n.v
		if !n.small {
			if v, err = strconv.ParseInt(string(n.ascii), 10, 64); err != nil {
				return nil, errors.New("integer out of range")
			}
		}
		if n.neg {
			v = -v
		}
		return a.Int64(v), nil
	case kDecimal:
		n, ok, err := cs.scanNumber(raw, f.pad, scratch)
		if !ok {
			return nil, err
		}
		if f.point && f.scale > 0 && !n.point && n.v != 0 {
			// the layout says the point is written: digits without it are
			// ambiguous, and could not be written back in the same width
			return nil, errNoPoint
		}
		return n.decimal(f.scale, f.point, a), nil
	case kDate:
		raw = cs.trimSpace(raw)
		if cs.allZero(raw) {
			return nil, nil
		}
		if f.fastDate != nil {
			if t, ok := f.fastDate.parse(cs, raw); ok {
				return a.Time(t), nil
			}
			return nil, fmt.Errorf("not a date in the field's format: %q", cs.decodeString(raw, scratch))
		}
		s := cs.decodeString(raw, scratch)
		t, err := time.Parse(f.layout, s)
		if err != nil {
			return nil, fmt.Errorf("not a date in the field's format: %q", s)
		}
		return a.Time(t), nil
	case kBool:
		s := strings.TrimSpace(cs.decodeString(raw, scratch))
		switch {
		case s == "":
			return nil, nil
		case strings.EqualFold(s, f.tval):
			return true, nil
		case strings.EqualFold(s, f.fval):
			return false, nil
		}
		return nil, fmt.Errorf("%q is neither %q nor %q", s, f.tval, f.fval)
	}
	*scratch = f.appendString(cs, (*scratch)[:0], raw)
	return a.String(string(*scratch)), nil
}

// encode writes the value v into dst, which is the field's slice of the
// record and holds spaces. A nil v leaves the spaces.
func (f *field) encode(cs *charset, dst []byte, v any, scratch *[]byte) error {
	if v == nil {
		return nil
	}
	var s string
	switch f.kind {
	case kInt, kDecimal:
		d, err := recvalue.Decimal(v)
		if err != nil {
			return err
		}
		return f.encodeNumber(cs, dst, d)
	case kBool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want a bool, got %T", v)
		}
		if b {
			return f.placeText(dst, f.tbytes)
		}
		return f.placeText(dst, f.fbytes)
	case kDate:
		switch t := v.(type) {
		case time.Time:
			s = t.Format(f.layout)
		case string:
			s = t
		default:
			return fmt.Errorf("want a time or a string for a date, got %T", v)
		}
	default:
		var err error
		if s, err = recvalue.String(v); err != nil {
			return err
		}
	}
	text, err := cs.encode((*scratch)[:0], s)
	if err != nil {
		return err
	}
	*scratch = text[:0]
	return f.placeText(dst, text)
}

func (f *field) placeText(dst, text []byte) error {
	if len(text) > f.len {
		return fmt.Errorf("value of %d bytes does not fit the field's %d", len(text), f.len)
	}
	f.place(dst, text)
	return nil
}

// place justifies text in dst and fills the rest with the pad byte.
func (f *field) place(dst, text []byte) {
	gap := len(dst) - len(text)
	if f.right {
		fill(dst[:gap], f.pad)
		copy(dst[gap:], text)
	} else {
		copy(dst, text)
		fill(dst[len(text):], f.pad)
	}
}

func fill(b []byte, c byte) {
	for i := range b {
		b[i] = c
	}
}

func (f *field) encodeNumber(cs *charset, dst []byte, d decimal.Decimal) error {
	var digits string
	switch {
	case f.kind == kInt:
		if !d.IsInteger() {
			return fmt.Errorf("%s is not an integer", d.String())
		}
		digits = d.Abs().StringFixed(0)
	case f.point:
		// As many decimals as the value has, and at least the scale, so
		// that what decoded encodes again unchanged.
		digits = d.Abs().StringFixed(max(f.scale, -d.Exponent()))
		room := len(dst)
		if d.Sign() < 0 {
			room--
		}
		if len(digits) > room && strings.Contains(digits, ".") {
			// Too wide with all its decimals: drop trailing zero decimals,
			// keeping the point (1000. reads back as 1000 at the scale).
			digits = strings.TrimRight(digits, "0")
		}
	default:
		shifted := d.Shift(f.scale)
		if !shifted.IsInteger() {
			return fmt.Errorf("%s has more than %d decimal places", d.String(), f.scale)
		}
		digits = shifted.Abs().StringFixed(0)
	}
	neg := d.Sign() < 0
	need := len(digits)
	if neg {
		need++
	}
	if need > len(dst) {
		return fmt.Errorf("%s does not fit %d bytes", d.String(), len(dst))
	}
	var buf [64]byte
	text := buf[:0]
	for i := 0; i < len(digits); i++ {
		if digits[i] == '.' {
			text = append(text, cs.point)
		} else {
			text = append(text, cs.zero+digits[i]-'0')
		}
	}
	if !neg {
		f.place(dst, text)
		return nil
	}
	switch {
	case f.trailing:
		text = append(text, cs.minus)
		f.place(dst, text)
	case f.right && f.pad == cs.zero:
		dst[0] = cs.minus // -000123: the sign stays in front of the zeros
		f.place(dst[1:], text)
	default:
		f.place(dst, append([]byte{cs.minus}, text...))
	}
	return nil
}
