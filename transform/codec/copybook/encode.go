package copybook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"github.com/shopspring/decimal"
	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/recvalue"
)

// writer encodes records; not safe for concurrent use.
type writer struct {
	l      *layout
	o      *valueOptions
	buf    []byte
	counts []int64
	digits []byte
}

func newWriter(l *layout, o *valueOptions) *writer {
	return &writer{l: l, o: o, counts: make([]int64, l.slots)}
}

// record encodes rec and returns its bytes, valid until the next call.
func (w *writer) record(rec adapters.Record) ([]byte, error) {
	w.buf = w.buf[:0]
	end, err := w.group(w.l.root, rec, 0)
	if err != nil {
		return nil, err
	}
	return w.buf[:end], nil
}

// slot returns buf[pos:pos+n], growing the buffer.
func (w *writer) slot(pos, n int) []byte {
	if need := pos + n; need > len(w.buf) {
		if need > cap(w.buf) {
			nb := make([]byte, need, max(need, 2*cap(w.buf), 256))
			copy(nb, w.buf)
			w.buf = nb
		}
		w.buf = w.buf[:need]
	}
	return w.buf[pos : pos+n]
}

func (w *writer) group(n *node, rec adapters.Record, pos int) (int, error) {
	for _, ch := range n.children {
		start := pos
		chosen := ch
		if len(ch.views) > 0 {
			chosen = w.pickView(ch, rec)
		}
		end, err := w.item(chosen, rec, start)
		if err != nil {
			return 0, err
		}
		if len(ch.views) > 0 && ch.static {
			// The set occupies its largest view: fill the rest with spaces.
			area := start + ch.area
			if area > end {
				fillBytes(w.slot(end, area-end), w.o.space)
				end = area
			}
		}
		pos = end
	}
	return pos, nil
}

// pickView chooses which item of a REDEFINES set to write: the first that
// the record holds without nulls, preferring typed views to a plain PIC X
// item (which loses trailing spaces when trimmed); else the first the record
// holds at all; else the redefined item.
func (w *writer) pickView(base *node, rec adapters.Record) *node {
	if rec == nil {
		return base
	}
	var full, present *node
	for _, v := range append([]*node{base}, base.views...) {
		val, ok := rec[v.key]
		if !ok || v.filler || val == nil {
			continue
		}
		if complete(val) {
			if v.kind != kAlnum {
				return v
			}
			if full == nil {
				full = v
			}
		}
		if present == nil {
			present = v
		}
	}
	switch {
	case full != nil:
		return full
	case present != nil:
		return present
	}
	return base
}

// complete reports whether v holds no null, deeply.
func complete(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case adapters.Record:
		for _, e := range x {
			if !complete(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !complete(e) {
				return false
			}
		}
	}
	return true
}

func (w *writer) item(ch *node, rec adapters.Record, pos int) (int, error) {
	if ch.align > 0 {
		fillBytes(w.slot(pos, ch.align), 0)
		pos += ch.align
	}
	var v any
	if rec != nil && !ch.filler {
		v = rec[ch.key]
	}
	if !ch.occurs {
		end, err := w.one(ch, v, pos)
		return end, wrapField(err, ch.name)
	}
	var arr []any
	if v != nil {
		var ok bool
		if arr, ok = v.([]any); !ok {
			return 0, &fieldError{path: []string{ch.name}, off: pos, err: fmt.Errorf("want a list for OCCURS, got %T", v)}
		}
	}
	count := ch.occMax
	if ch.depSlot >= 0 {
		count = int(w.counts[ch.depSlot])
		if v != nil && len(arr) != count {
			return 0, &fieldError{path: []string{ch.name}, off: pos, err: fmt.Errorf("%d entries, but its DEPENDING ON counter is %d", len(arr), count)}
		}
		if count < ch.occMin || count > ch.occMax {
			return 0, &fieldError{path: []string{ch.name}, off: pos, err: fmt.Errorf("DEPENDING ON count %d is outside %d to %d", count, ch.occMin, ch.occMax)}
		}
	} else if len(arr) > count {
		return 0, &fieldError{path: []string{ch.name}, off: pos, err: fmt.Errorf("%d entries, OCCURS %d", len(arr), count)}
	}
	for i := 0; i < count; i++ {
		var e any
		if i < len(arr) {
			e = arr[i]
		}
		var err error
		if pos, err = w.one(ch, e, pos); err != nil {
			return 0, wrapField(wrapField(err, fmt.Sprintf("[%d]", i)), ch.name)
		}
	}
	return pos, nil
}

func (w *writer) one(ch *node, v any, pos int) (int, error) {
	if ch.kind == kGroup {
		var sub adapters.Record
		if v != nil {
			var ok bool
			if sub, ok = v.(adapters.Record); !ok {
				return 0, &fieldError{off: pos, err: fmt.Errorf("want a group (a mapping), got %T", v)}
			}
		}
		return w.group(ch, sub, pos)
	}
	dst := w.slot(pos, ch.size)
	if v == nil && ch.counterSlot >= 0 {
		v = int64(0) // a counter must read back as a number
	}
	if err := w.value(ch, v, dst); err != nil {
		return 0, &fieldError{off: pos, err: err}
	}
	if ch.counterSlot >= 0 {
		n, _ := v.(int64)
		if d, err := recvalue.Decimal(v); v != nil && err == nil {
			n = d.IntPart()
		}
		w.counts[ch.counterSlot] = n
	}
	return pos + ch.size, nil
}

func fillBytes(b []byte, c byte) {
	for i := range b {
		b[i] = c
	}
}

// value writes an elementary value into dst, which it fills entirely.
func (w *writer) value(ch *node, v any, dst []byte) error {
	switch ch.kind {
	case kAlnum:
		return w.alnum(ch, v, dst)
	case kFloat:
		return w.float(v, dst)
	}
	if v == nil {
		switch ch.kind {
		case kZoned, kEdited:
			fillBytes(dst, w.o.space)
		default:
			fillBytes(dst, 0) // packed low-values read back as null; binary zero
		}
		return nil
	}
	neg, digits, err := w.fastUnscaled(ch, v)
	if err != nil || digits == nil {
		var d decimal.Decimal
		if d, err = recvalue.Decimal(v); err != nil {
			return err
		}
		if neg, digits, err = w.unscaled(ch, d); err != nil {
			return err
		}
	}
	switch ch.kind {
	case kZoned:
		return w.zoned(ch, neg, digits, dst)
	case kPacked:
		return w.packed(ch, neg, digits, dst)
	case kBinary:
		return w.binary(ch, neg, digits, dst)
	case kEdited:
		text := formatEdited(ch.pic, neg, digits, allZero(digits))
		for i, c := range text {
			dst[i] = w.o.table.MustByte(rune(c))
		}
	}
	return nil
}

// fastUnscaled is unscaled for int64 values and decimals of at most 18
// digits, without big.Int arithmetic. It returns nil digits when the value
// needs the general path (which also words the errors).
func (w *writer) fastUnscaled(ch *node, v any) (bool, []byte, error) {
	var c int64
	var e int
	switch n := v.(type) {
	case int64:
		c = n
	case int:
		c = int64(n)
	case decimal.Decimal:
		if n.NumDigits() > 18 {
			return false, nil, nil
		}
		c, e = n.CoefficientInt64(), int(n.Exponent())
	default:
		return false, nil, nil
	}
	if c == math.MinInt64 {
		return false, nil, nil
	}
	e += ch.scale // the unscaled value is c * 10^e
	neg := c < 0
	if neg {
		c = -c
	}
	switch {
	case e > 18 || e < -18:
		if c != 0 {
			return false, nil, nil
		}
	case e >= 0:
		if c > math.MaxInt64/pow10[e] {
			return false, nil, nil
		}
		c *= pow10[e]
	default:
		if c%pow10[-e] != 0 {
			return false, nil, nil // more decimal places than the picture
		}
		c /= pow10[-e]
	}
	if c == 0 {
		neg = false
	}
	if neg && !ch.signed {
		return false, nil, nil
	}
	w.digits = strconv.AppendInt(w.digits[:0], c, 10)
	if len(w.digits) > ch.digits && !(ch.kind == kBinary && ch.comp5) {
		return false, nil, nil
	}
	return neg, w.padDigits(ch.digits), nil
}

// padDigits left-pads w.digits with zeros to n digits.
func (w *writer) padDigits(n int) []byte {
	if pad := n - len(w.digits); pad > 0 {
		w.digits = append(w.digits, make([]byte, pad)...)
		copy(w.digits[pad:], w.digits)
		for i := 0; i < pad; i++ {
			w.digits[i] = '0'
		}
	}
	return w.digits
}

func allZero(digits []byte) bool {
	for _, c := range digits {
		if c != '0' {
			return false
		}
	}
	return true
}

// unscaled returns the digits of d without its decimal point, padded with
// zeros to the item's digit count.
func (w *writer) unscaled(ch *node, d decimal.Decimal) (bool, []byte, error) {
	shifted := d.Shift(int32(ch.scale))
	if !shifted.IsInteger() {
		return false, nil, fmt.Errorf("%s has more than %d decimal places", d.String(), ch.scale)
	}
	neg := shifted.Sign() < 0
	if neg && !ch.signed {
		return false, nil, fmt.Errorf("%s is negative, but the picture has no sign", d.String())
	}
	// BigInt may return the decimal's own big.Int: never modify it.
	bi := new(big.Int).Abs(shifted.BigInt())
	w.digits = bi.Append(w.digits[:0], 10)
	if len(w.digits) > ch.digits {
		if ch.kind == kBinary && ch.comp5 {
			return neg, w.digits, nil // COMP-5 holds its full binary range
		}
		return false, nil, fmt.Errorf("%s does not fit %d digits", d.String(), ch.digits)
	}
	return neg, w.padDigits(ch.digits), nil
}

func (w *writer) alnum(ch *node, v any, dst []byte) error {
	fillBytes(dst, w.o.space)
	if v == nil {
		return nil
	}
	s, err := recvalue.String(v)
	if err != nil {
		return err
	}
	b, err := w.o.table.AppendEncode(w.digits[:0], s)
	if err != nil {
		return err
	}
	w.digits = b[:0]
	if len(b) > len(dst) {
		return fmt.Errorf("value of %d characters does not fit %d", len(b), len(dst))
	}
	if ch.justRight {
		copy(dst[len(dst)-len(b):], b)
	} else {
		copy(dst, b)
	}
	return nil
}

func (w *writer) zoned(ch *node, neg bool, digits, dst []byte) error {
	body := dst
	if ch.signSeparate {
		sign := w.o.plus
		if neg {
			sign = w.o.minus
		}
		if ch.signLeading {
			dst[0], body = sign, dst[1:]
		} else {
			dst[len(dst)-1], body = sign, dst[:len(dst)-1]
		}
	}
	for i, c := range digits {
		if w.o.ebcdic {
			body[i] = 0xF0 | (c - '0')
		} else {
			body[i] = c
		}
	}
	if ch.signSeparate || !ch.signed {
		return nil
	}
	at := len(body) - 1
	if ch.signLeading {
		at = 0
	}
	d := digits[at] - '0'
	switch {
	case w.o.ebcdic && neg:
		body[at] = 0xD0 | d
	case w.o.ebcdic:
		body[at] = 0xC0 | d
	case neg && d == 0:
		body[at] = '}'
	case neg:
		body[at] = 'J' + d - 1
	}
	return nil
}

func (w *writer) packed(ch *node, neg bool, digits, dst []byte) error {
	sign := byte(0xF)
	if ch.signed {
		sign = 0xC
		if neg {
			sign = 0xD
		}
	}
	// dst holds 2*len-1 digit nibbles; an even digit count leaves a zero
	// nibble in front.
	nib := make([]byte, 0, 2*len(dst))
	for i := 2*len(dst) - 1 - len(digits); i > 0; i-- {
		nib = append(nib, 0)
	}
	for _, c := range digits {
		nib = append(nib, c-'0')
	}
	nib = append(nib, sign)
	for i := range dst {
		dst[i] = nib[2*i]<<4 | nib[2*i+1]
	}
	return nil
}

var errBinaryRange = errors.New("value out of range")

func (w *writer) binary(ch *node, neg bool, digits, dst []byte) error {
	var bi big.Int
	if v, err := strconv.ParseUint(string(digits), 10, 63); err == nil {
		bi.SetInt64(int64(v))
	} else {
		bi.SetString(string(digits), 10)
	}
	if neg {
		bi.Neg(&bi)
	}
	bits := len(dst) * 8
	var u uint64
	switch {
	case ch.signed && bi.IsInt64():
		v := bi.Int64()
		if bits < 64 && (v < -(1<<(bits-1)) || v >= 1<<(bits-1)) {
			return fmt.Errorf("%s does not fit a %d-byte binary item: %w", bi.String(), len(dst), errBinaryRange)
		}
		u = uint64(v)
	case !ch.signed && bi.IsUint64():
		u = bi.Uint64()
		if bits < 64 && u >= 1<<bits {
			return fmt.Errorf("%s does not fit a %d-byte binary item: %w", bi.String(), len(dst), errBinaryRange)
		}
	default:
		return fmt.Errorf("%s does not fit a %d-byte binary item: %w", bi.String(), len(dst), errBinaryRange)
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], u)
	copy(dst, b[8-len(dst):])
	if ch.comp5 && w.o.comp5Little {
		for i, j := 0, len(dst)-1; i < j; i, j = i+1, j-1 {
			dst[i], dst[j] = dst[j], dst[i]
		}
	}
	return nil
}

func (w *writer) float(v any, dst []byte) error {
	f := 0.0
	if v != nil {
		var err error
		if f, err = recvalue.Float(v); err != nil {
			return err
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%v cannot be stored", f)
	}
	if w.o.ieee {
		if len(dst) == 4 {
			binary.BigEndian.PutUint32(dst, math.Float32bits(float32(f)))
		} else {
			binary.BigEndian.PutUint64(dst, math.Float64bits(f))
		}
		return nil
	}
	return floatToHFP(f, dst)
}

// floatToHFP writes f as IBM hexadecimal floating point of len(dst) bytes,
// rounding to nearest. Values too small for the format become zero.
func floatToHFP(f float64, dst []byte) error {
	fillBytes(dst, 0)
	if f == 0 {
		return nil
	}
	fb := len(dst)*8 - 8 // fraction bits
	m, e := math.Frexp(math.Abs(f))
	mant := uint64(math.Ldexp(m, 53)) // f = mant * 2^(e-53)
	exp16 := (e + 3) >> 2             // 16^exp16 >= 2^e
	sh := e - 53 - 4*exp16 + fb
	var frac uint64
	if sh >= 0 {
		frac = mant << uint(sh)
	} else if -sh < 64 {
		frac = (mant + 1<<uint(-sh-1)) >> uint(-sh)
	}
	if frac>>uint(fb) != 0 { // rounding carried into a new hex digit
		frac >>= 4
		exp16++
	}
	biased := exp16 + 64
	if biased > 127 {
		return fmt.Errorf("%g is too large for IBM floating point", f)
	}
	if biased < 0 || frac == 0 {
		return nil
	}
	bits := uint64(biased)<<uint(fb) | frac
	if f < 0 {
		bits |= 1 << uint(fb+7)
	}
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte(bits)
		bits >>= 8
	}
	return nil
}

// formatEdited renders digits (padded to the picture's digit count) in a
// numeric-edited picture, as ASCII.
func formatEdited(p *picture, neg bool, digits []byte, zero bool) []byte {
	out := make([]byte, len(p.edit))
	hasNine, star := false, false
	for _, e := range p.edit {
		hasNine = hasNine || e.kind == editDigit
		star = star || e.kind == editStar
	}
	if zero && !hasNine {
		// All digit positions suppress zeros: the item is blank (or stars).
		for i, e := range p.edit {
			switch {
			case star && e.ch == '.':
				out[i] = '.'
			case star:
				out[i] = '*'
			default:
				out[i] = ' '
			}
		}
		return out
	}
	fill := byte(' ')
	if star {
		fill = '*'
	}
	var floatSym byte
	placed, started, di := false, false, 0
	start := func(i int) {
		if !started && floatSym != 0 && !placed && i > 0 {
			out[i-1] = floatSym
			placed = true
		}
		started = true
	}
	for i, e := range p.edit {
		switch e.kind {
		case editDigit:
			start(i)
			out[i] = digits[di]
			di++
		case editZero, editStar, editFloat:
			d := digits[di]
			di++
			if !started && d == '0' {
				out[i] = fill
				if e.kind == editFloat {
					out[i] = ' '
				}
				continue
			}
			start(i)
			out[i] = d
		case editFloatFirst:
			floatSym = signSymbol(e.ch, neg)
			out[i] = ' '
		case editInsert:
			if e.ch == '.' {
				start(i)
				out[i] = '.'
			} else if started {
				out[i] = e.ch
			} else {
				out[i] = fill
			}
		case editSign:
			out[i] = signSymbol(e.ch, neg)
		case editCurrency:
			out[i] = '$'
		case editCredit, editCredit2:
			out[i] = ' '
			if neg {
				out[i] = e.ch
			}
		}
	}
	return out
}

// signSymbol is what a sign (or currency) position shows.
func signSymbol(sym byte, neg bool) byte {
	switch {
	case sym == '$':
		return '$'
	case neg:
		return '-'
	case sym == '+':
		return '+'
	}
	return ' '
}
