package copybook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/shopspring/decimal"
	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codepage"
	"github.com/sluicehq/sluice/transform/codec/copybook/recvalue"
	"github.com/sluicehq/sluice/transform/codec/internal/box"
)

// options shared by decoding and encoding values.
type valueOptions struct {
	table       *codepage.Table
	ebcdic      bool
	trim        trimMode
	comp5Little bool
	ieee        bool
	space       byte
	plus, minus byte
}

type trimMode int

const (
	trimRight trimMode = iota // trailing spaces (leading for JUSTIFIED RIGHT)
	trimBoth
	trimNone
)

// packedPair maps a packed byte of two digits to their value, or -1.
var packedPair [256]int16

func init() {
	for b := 0; b < 256; b++ {
		hi, lo := b>>4, b&0xF
		packedPair[b] = -1
		if hi <= 9 && lo <= 9 {
			packedPair[b] = int16(hi*10 + lo)
		}
	}
}

// fieldError is an invalid value; the path grows as it passes up the groups.
type fieldError struct {
	path []string
	off  int
	err  error
}

func (e *fieldError) Error() string {
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		if i < len(e.path)-1 && !strings.HasPrefix(e.path[i], "[") {
			b.WriteByte('.')
		}
		b.WriteString(e.path[i])
	}
	return fmt.Sprintf("field %s (byte %d of the record): %v", b.String(), e.off+1, e.err)
}

func (e *fieldError) Unwrap() error { return e.err }

func wrapField(err error, name string) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		fe.path = append(fe.path, name)
		return fe
	}
	return err
}

// shortError means the record ended inside an item.
type shortError struct {
	need, have int
	name       string
}

func (e *shortError) Error() string {
	return fmt.Sprintf("record of %d bytes is too short: %s needs %d", e.have, e.name, e.need)
}

// reader decodes the records of one decoder; not safe for concurrent use.
type reader struct {
	l      *layout
	o      *valueOptions
	counts []int64
	text   []byte
	spans  []span
	big    big.Int
	cache  *recvalue.Cache
	box    box.Arena
}

// span is a string value waiting for its bytes in reader.text.
type span struct {
	rec        adapters.Record
	arr        []any
	key        string
	idx        int
	start, end int
	raw        []byte // the field's bytes, for the cache (nil: not cached)
	cacheIdx   int
}

func newReader(l *layout, o *valueOptions) *reader {
	return &reader{l: l, o: o, counts: make([]int64, l.slots), cache: recvalue.NewCache(l.cached)}
}

// record decodes one record from data and returns it with the number of
// bytes it used.
func (r *reader) record(data []byte) (adapters.Record, int, error) {
	r.text, r.spans = r.text[:0], r.spans[:0]
	out := make(adapters.Record, len(r.l.root.children))
	end, err := r.group(r.l.root, data, 0, out)
	if err != nil {
		return nil, 0, err
	}
	if len(r.spans) > 0 {
		// All strings of the record share one allocation.
		all := string(r.text)
		for _, s := range r.spans {
			v := r.box.String(all[s.start:s.end])
			if s.rec != nil {
				s.rec[s.key] = v
			} else {
				s.arr[s.idx] = v
			}
			if s.raw != nil {
				r.cache.Put(s.cacheIdx, s.raw, v)
			}
		}
	}
	return out, end, nil
}

// group decodes the items of group n starting at pos into out (nil: skip).
func (r *reader) group(n *node, data []byte, pos int, out adapters.Record) (int, error) {
	for _, ch := range n.children {
		end, err := r.item(ch, data, pos, out)
		if err != nil {
			return 0, err
		}
		for _, v := range ch.views {
			vend, err := r.item(v, data, pos, out)
			if err != nil {
				return 0, err
			}
			end = max(end, vend)
		}
		pos = end
	}
	return pos, nil
}

// item decodes ch, with its occurrences, at pos.
func (r *reader) item(ch *node, data []byte, pos int, out adapters.Record) (int, error) {
	pos += ch.align
	keep := out != nil && !ch.filler
	if !ch.occurs {
		if keep && ch.kind == kAlnum {
			return r.alnum(ch, data, pos, out, nil, 0)
		}
		v, end, err := r.one(ch, data, pos, keep)
		if err != nil {
			return 0, wrapField(err, ch.name)
		}
		if keep {
			out[ch.key] = v
		}
		return end, nil
	}
	count := ch.occMax
	if ch.depSlot >= 0 {
		c := r.counts[ch.depSlot]
		if c < int64(ch.occMin) || c > int64(ch.occMax) {
			return 0, &fieldError{path: []string{ch.name}, off: pos, err: fmt.Errorf("OCCURS DEPENDING ON count %d is outside %d to %d", c, ch.occMin, ch.occMax)}
		}
		count = int(c)
	}
	if !keep && ch.static {
		if end := pos + ch.size*count; end <= len(data) {
			return end, nil
		}
	}
	var arr []any
	if keep {
		arr = make([]any, count)
	}
	for i := 0; i < count; i++ {
		var err error
		if keep && ch.kind == kAlnum {
			pos, err = r.alnum(ch, data, pos, nil, arr, i)
		} else {
			var v any
			v, pos, err = r.one(ch, data, pos, keep)
			if keep {
				arr[i] = v
			}
		}
		if err != nil {
			return 0, wrapField(wrapField(err, fmt.Sprintf("[%d]", i)), ch.name)
		}
	}
	if keep {
		out[ch.key] = arr
	}
	return pos, nil
}

// alnum queues a string value for rec[key] or arr[idx].
func (r *reader) alnum(ch *node, data []byte, pos int, rec adapters.Record, arr []any, idx int) (int, error) {
	end := pos + ch.size
	if end > len(data) {
		return 0, &shortError{need: end, have: len(data), name: ch.name}
	}
	b := data[pos:end]
	var raw []byte
	if ch.cacheIdx >= 0 {
		if v, ok := r.cache.Get(ch.cacheIdx, b); ok {
			if rec != nil {
				rec[ch.key] = v
			} else {
				arr[idx] = v
			}
			return end, nil
		}
		raw = b
	}
	sp, tr := r.o.space, r.o.trim
	if tr != trimNone {
		i, j := 0, len(b)
		if tr == trimBoth || ch.justRight {
			for i < j && (b[i] == sp || b[i] == 0) {
				i++
			}
		}
		if tr == trimBoth || !ch.justRight {
			for j > i && (b[j-1] == sp || b[j-1] == 0) {
				j--
			}
		}
		b = b[i:j]
	}
	start := len(r.text)
	r.text = r.o.table.AppendDecode(r.text, b)
	r.spans = append(r.spans, span{rec: rec, arr: arr, key: ch.key, idx: idx, start: start, end: len(r.text), raw: raw, cacheIdx: ch.cacheIdx})
	return end, nil
}

// one decodes a single occurrence of ch at pos.
func (r *reader) one(ch *node, data []byte, pos int, keep bool) (any, int, error) {
	if ch.kind == kGroup {
		var sub adapters.Record
		if keep {
			sub = make(adapters.Record, len(ch.children))
		}
		end, err := r.group(ch, data, pos, sub)
		if err != nil {
			return nil, 0, err
		}
		if !keep {
			return nil, end, nil
		}
		return sub, end, nil
	}
	end := pos + ch.size
	if end > len(data) {
		return nil, 0, &shortError{need: end, have: len(data), name: ch.name}
	}
	if !keep && ch.counterSlot < 0 {
		return nil, end, nil
	}
	raw := data[pos:end]
	v, hit := any(nil), false
	if ch.cacheIdx >= 0 {
		v, hit = r.cache.Get(ch.cacheIdx, raw)
	}
	if !hit {
		var err error
		v, err = r.value(ch, raw)
		switch {
		case err == nil && ch.cacheIdx >= 0:
			r.cache.Put(ch.cacheIdx, raw, v)
		case err != nil && (!ch.lenient || ch.counterSlot >= 0):
			return nil, 0, &fieldError{path: []string{}, off: pos, err: err}
		case err != nil:
			v = nil // one view of a REDEFINES set: the bytes are for another view
		}
	}
	if ch.counterSlot >= 0 {
		n, ok := v.(int64)
		if !ok {
			return nil, 0, &fieldError{off: pos, err: fmt.Errorf("OCCURS DEPENDING ON counter is %v", v)}
		}
		r.counts[ch.counterSlot] = n
	}
	return v, end, nil
}

var (
	errZoned  = errors.New("invalid zoned decimal")
	errPacked = errors.New("invalid packed decimal")
)

// value decodes the bytes of an elementary item other than alphanumeric.
func (r *reader) value(ch *node, b []byte) (any, error) {
	switch ch.kind {
	case kAlnum:
		return r.box.String(r.o.table.DecodeString(b)), nil
	case kZoned:
		return r.zoned(ch, b)
	case kPacked:
		return r.packed(ch, b)
	case kBinary:
		return r.binary(ch, b)
	case kFloat:
		return r.box.Float64(r.float(b)), nil
	case kEdited:
		return r.edited(ch, b)
	}
	return nil, fmt.Errorf("unknown item kind %d", ch.kind)
}

func blank(b []byte, space byte) bool {
	for _, c := range b {
		if c != space && c != 0 {
			return false
		}
	}
	return true
}

// number builds the value of an item from its unscaled digits: an int64, or
// a decimal that keeps the item's scale. When big is set, v is unused.
func (r *reader) number(ch *node, neg bool, v int64, bigDigits bool) any {
	if bigDigits {
		if neg && ch.signed {
			r.big.Neg(&r.big)
		}
		return decimal.NewFromBigInt(&r.big, int32(-ch.scale))
	}
	if neg && ch.signed { // an unsigned item holds the absolute value
		v = -v
	}
	if ch.asDecimal {
		return r.box.Decimal(v, int32(-ch.scale))
	}
	return r.box.Int64(v)
}

func (r *reader) zoned(ch *node, b []byte) (any, error) {
	if blank(b, r.o.space) {
		return nil, nil
	}
	digits := b
	neg := false
	switch {
	case ch.signSeparate && ch.signLeading:
		digits = b[1:]
		if b[0] != r.o.plus && b[0] != r.o.minus {
			return nil, errZoned
		}
		neg = b[0] == r.o.minus
	case ch.signSeparate:
		digits = b[:len(b)-1]
		s := b[len(b)-1]
		if s != r.o.plus && s != r.o.minus {
			return nil, errZoned
		}
		neg = s == r.o.minus
	}
	signAt := len(digits) - 1
	if ch.signLeading {
		signAt = 0
	}
	bigDigits := len(digits) > 18
	if bigDigits {
		r.big.SetInt64(0)
	}
	var v int64
	leading := true
	for i, c := range digits {
		var d int
		switch {
		case i == signAt && !ch.signSeparate:
			var n bool
			var ok bool
			d, n, ok = r.overpunch(c)
			if !ok {
				return nil, errZoned
			}
			neg = n
		case leading && c == r.o.space:
			d = 0 // leading spaces read as zeros
		case r.o.ebcdic && c >= 0xF0 && c <= 0xF9:
			d = int(c - 0xF0)
		case !r.o.ebcdic && c >= '0' && c <= '9':
			d = int(c - '0')
		default:
			return nil, errZoned
		}
		if c != r.o.space {
			leading = false
		}
		if bigDigits {
			r.big.Mul(&r.big, bigTen)
			r.big.Add(&r.big, big.NewInt(int64(d)))
		} else {
			v = v*10 + int64(d)
		}
	}
	return r.number(ch, neg, v, bigDigits), nil
}

var bigTen = big.NewInt(10)

// pow10[n] is 10^n, for the digit limits of binary items (n <= 18).
var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// overpunch decodes a digit that carries the sign.
func (r *reader) overpunch(c byte) (digit int, neg, ok bool) {
	if r.o.ebcdic {
		zone, d := c>>4, int(c&0xF)
		if d > 9 {
			return 0, false, false
		}
		switch zone {
		case 0xC, 0xF, 0xA, 0xE:
			return d, false, true
		case 0xD, 0xB:
			return d, true, true
		}
		return 0, false, false
	}
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), false, true
	case c == '{':
		return 0, false, true
	case c >= 'A' && c <= 'I':
		return int(c-'A') + 1, false, true
	case c == '}':
		return 0, true, true
	case c >= 'J' && c <= 'R':
		return int(c-'J') + 1, true, true
	case c >= 'p' && c <= 'y':
		return int(c - 'p'), true, true
	}
	return 0, false, false
}

func (r *reader) packed(ch *node, b []byte) (any, error) {
	if allByte(b, 0) {
		return nil, nil // low-values: no value
	}
	last := b[len(b)-1]
	neg := false
	switch last & 0xF {
	case 0xC, 0xA, 0xE, 0xF:
	case 0xD, 0xB:
		neg = true
	default:
		return nil, errPacked
	}
	if last>>4 > 9 {
		return nil, errPacked
	}
	if ch.digits > 18 {
		r.big.SetInt64(0)
		for _, c := range b[:len(b)-1] {
			p := packedPair[c]
			if p < 0 {
				return nil, errPacked
			}
			r.big.Mul(&r.big, big.NewInt(100))
			r.big.Add(&r.big, big.NewInt(int64(p)))
		}
		r.big.Mul(&r.big, bigTen)
		r.big.Add(&r.big, big.NewInt(int64(last>>4)))
		return r.number(ch, neg, 0, true), nil
	}
	var v int64
	for _, c := range b[:len(b)-1] {
		p := packedPair[c]
		if p < 0 {
			return nil, errPacked
		}
		v = v*100 + int64(p)
	}
	v = v*10 + int64(last>>4)
	return r.number(ch, neg, v, false), nil
}

func allByte(b []byte, c byte) bool {
	for _, x := range b {
		if x != c {
			return false
		}
	}
	return true
}

func (r *reader) binary(ch *node, b []byte) (any, error) {
	var u uint64
	if ch.comp5 && r.o.comp5Little {
		for i := len(b) - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
	} else {
		for _, c := range b {
			u = u<<8 | uint64(c)
		}
	}
	bits := uint(len(b) * 8)
	if ch.signed {
		v := int64(u<<(64-bits)) >> (64 - bits) // sign-extend
		if !ch.comp5 && (v >= pow10[ch.digits] || v <= -pow10[ch.digits]) {
			return nil, fmt.Errorf("binary value %d has more digits than the picture's %d (use COMP-5 for the full binary range)", v, ch.digits)
		}
		return r.number(ch, false, v, false), nil
	}
	if !ch.comp5 && u >= uint64(pow10[ch.digits]) {
		return nil, fmt.Errorf("binary value %d has more digits than the picture's %d (use COMP-5 for the full binary range)", u, ch.digits)
	}
	if u <= math.MaxInt64 {
		return r.number(ch, false, int64(u), false), nil
	}
	if !ch.asDecimal {
		return u, nil // unsigned 8-byte beyond int64: only COMP-5 and TRUNC(BIN) data
	}
	r.big.SetUint64(u)
	return r.number(ch, false, 0, true), nil
}

func (r *reader) float(b []byte) float64 {
	if r.o.ieee {
		if len(b) == 4 {
			return float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b))
	}
	return hfpToFloat(b)
}

// hfpToFloat converts IBM hexadecimal floating point (4 or 8 bytes):
// sign bit, 7-bit excess-64 exponent of 16, fraction 0.F.
func hfpToFloat(b []byte) float64 {
	var bits uint64
	for _, c := range b {
		bits = bits<<8 | uint64(c)
	}
	n := len(b) * 8
	frac := bits & (1<<(n-8) - 1)
	exp := int(bits>>(n-8)&0x7F) - 64
	v := math.Ldexp(float64(frac), 4*exp-(n-8))
	if bits>>(n-1) != 0 {
		v = -v
	}
	return v
}

func (r *reader) edited(ch *node, b []byte) (any, error) {
	var v int64
	neg, blankAll := false, true
	bigDigits := ch.digits > 18
	if bigDigits {
		r.big.SetInt64(0)
	}
	for i, p := range ch.pic.edit {
		c := r.o.table.Rune(b[i])
		if c != ' ' {
			blankAll = false
		}
		switch p.kind {
		case editDigit, editZero, editStar, editFloat:
			d := 0
			switch {
			case c >= '0' && c <= '9':
				d = int(c - '0')
			case c == ' ' || c == '*':
			case p.kind == editFloat && c == rune(p.ch):
				neg = neg || c == '-'
			case p.kind == editFloat && p.ch == '+' && c == '-':
				neg = true
			default:
				return nil, fmt.Errorf("invalid character %q in edited number", c)
			}
			if bigDigits {
				r.big.Mul(&r.big, bigTen)
				r.big.Add(&r.big, big.NewInt(int64(d)))
			} else {
				v = v*10 + int64(d)
			}
		case editFloatFirst, editSign:
			if c == '-' && p.ch != '$' {
				neg = true
			}
		case editCredit:
			if c == 'C' || c == 'D' || c == 'c' || c == 'd' {
				neg = true
			}
		}
	}
	if blankAll {
		return r.box.Decimal(0, int32(-ch.scale)), nil // zero suppressed to spaces
	}
	return r.number(ch, neg, v, bigDigits), nil
}
