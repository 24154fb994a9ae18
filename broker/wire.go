package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// Message encoding: the compact binary form in which the disk backend stores
// a message. It is versioned by its first byte; a decoder rejects versions it
// does not know.
//
//	version  byte (WireVersion)
//	flags    byte: 1 has time, 2 has raw, 4 has record, 8 has meta
//	rawLen   uvarint (only with flag 2; the raw bytes are the last rawLen bytes)
//	id       uvarint length + bytes
//	time     (only with flag 1) the time value encoding below, without its tag
//	attempt  uvarint
//	meta     (only with flag 8) uvarint count, then key and value as strings
//	record   (only with flag 4) a map value without its tag
//	raw      rawLen bytes
//
// Values start with a tag byte: nil, false, true, int64 (zig-zag varint),
// uint64 (uvarint), float64 (8 bytes little endian, bits kept, NaN too),
// string and []byte (uvarint length + bytes), time.Time (varint Unix
// seconds, uvarint nanoseconds, then UTC, or a zone offset in seconds as a
// varint and the zone name as a string), decimal.Decimal (varint exponent,
// then the coefficient as a varint, or as sign byte + uvarint length + big
// endian magnitude when it does not fit 64 bits), []any (uvarint count +
// values) and map[string]any (uvarint count + key string + value).

// WireVersion is the version byte AppendMessage writes.
const WireVersion = 1

const (
	flagTime   = 1
	flagRaw    = 2
	flagRecord = 4
	flagMeta   = 8
)

const (
	tagNil byte = iota
	tagFalse
	tagTrue
	tagInt
	tagUint
	tagFloat
	tagString
	tagBytes
	tagTime
	tagDecimal
	tagBigDecimal
	tagList
	tagMap
)

const (
	zoneUTC   = 0
	zoneFixed = 1
)

// MaxDepth is how deeply records may nest lists and maps. Encoding deeper
// values fails; decoding refuses them, so untrusted input cannot exhaust the
// stack.
const MaxDepth = 64

// ErrCorrupt is returned by DecodeMessage for bytes that are not a message.
var ErrCorrupt = errors.New("corrupt message encoding")

// AppendMessage appends the encoding of m to dst and returns the extended
// buffer. Record values are stored as the types adapters.Record documents;
// other integer and float types (int, int32, float32, named types of those
// kinds, and so on) are normalised to int64, uint64 and float64, other
// slices and string-keyed maps to []any and map[string]any. A value of any
// other type (a struct, a channel) or nesting deeper than MaxDepth is an
// error. m.Err is not stored.
func AppendMessage(dst []byte, m *adapters.Message) ([]byte, error) {
	var flags byte
	if !m.Time.IsZero() {
		flags |= flagTime
	}
	if m.Raw != nil {
		flags |= flagRaw
	}
	if m.Record != nil {
		flags |= flagRecord
	}
	if m.Meta != nil {
		flags |= flagMeta
	}
	start := len(dst)
	dst = append(dst, WireVersion, flags)
	if m.Raw != nil {
		dst = binary.AppendUvarint(dst, uint64(len(m.Raw)))
	}
	dst = appendString(dst, m.ID)
	if flags&flagTime != 0 {
		dst = appendTime(dst, m.Time)
	}
	attempt := m.Attempt
	if attempt < 0 {
		attempt = 0
	}
	dst = binary.AppendUvarint(dst, uint64(attempt))
	if m.Meta != nil {
		dst = binary.AppendUvarint(dst, uint64(len(m.Meta)))
		for k, v := range m.Meta {
			dst = appendString(dst, k)
			dst = appendString(dst, v)
		}
	}
	if m.Record != nil {
		var err error
		dst, err = appendMap(dst, m.Record, 1)
		if err != nil {
			return dst[:start], fmt.Errorf("message %q: %w", m.ID, err)
		}
	}
	dst = append(dst, m.Raw...)
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	dst = binary.AppendUvarint(dst, uint64(t.Nanosecond()))
	name, off := t.Zone()
	if t.Location() == time.UTC || (off == 0 && name == "UTC") {
		return append(dst, zoneUTC)
	}
	dst = append(dst, zoneFixed)
	dst = binary.AppendVarint(dst, int64(off))
	return appendString(dst, name)
}

func appendMap(dst []byte, m map[string]any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return dst, fmt.Errorf("record nests deeper than %d levels", MaxDepth)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	var err error
	for k, v := range m {
		dst = appendString(dst, k)
		if dst, err = appendValue(dst, v, depth); err != nil {
			return dst, fmt.Errorf("field %q: %w", k, err)
		}
	}
	return dst, nil
}

func appendList(dst []byte, l []any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return dst, fmt.Errorf("record nests deeper than %d levels", MaxDepth)
	}
	dst = binary.AppendUvarint(dst, uint64(len(l)))
	var err error
	for i, v := range l {
		if dst, err = appendValue(dst, v, depth); err != nil {
			return dst, fmt.Errorf("index %d: %w", i, err)
		}
	}
	return dst, nil
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, tagNil), nil
	case string:
		return appendString(append(dst, tagString), x), nil
	case int64:
		return binary.AppendVarint(append(dst, tagInt), x), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(dst, tagFloat), math.Float64bits(x)), nil
	case bool:
		if x {
			return append(dst, tagTrue), nil
		}
		return append(dst, tagFalse), nil
	case map[string]any:
		return appendMap(append(dst, tagMap), x, depth+1)
	case []any:
		return appendList(append(dst, tagList), x, depth+1)
	case uint64:
		return binary.AppendUvarint(append(dst, tagUint), x), nil
	case []byte:
		if x == nil {
			return append(dst, tagNil), nil
		}
		dst = binary.AppendUvarint(append(dst, tagBytes), uint64(len(x)))
		return append(dst, x...), nil
	case time.Time:
		return appendTime(append(dst, tagTime), x), nil
	case decimal.Decimal:
		return appendDecimal(dst, x), nil
	case *decimal.Decimal:
		if x == nil {
			return append(dst, tagNil), nil
		}
		return appendDecimal(dst, *x), nil
	case int:
		return binary.AppendVarint(append(dst, tagInt), int64(x)), nil
	case int32:
		return binary.AppendVarint(append(dst, tagInt), int64(x)), nil
	case float32:
		return binary.LittleEndian.AppendUint64(append(dst, tagFloat), math.Float64bits(float64(x))), nil
	}
	return appendReflect(dst, v, depth)
}

func appendDecimal(dst []byte, d decimal.Decimal) []byte {
	c := d.Coefficient()
	if c.IsInt64() {
		dst = binary.AppendVarint(append(dst, tagDecimal), int64(d.Exponent()))
		return binary.AppendVarint(dst, c.Int64())
	}
	dst = binary.AppendVarint(append(dst, tagBigDecimal), int64(d.Exponent()))
	sign := byte(0)
	if c.Sign() < 0 {
		sign = 1
	}
	mag := c.Abs(c).Bytes()
	dst = append(dst, sign)
	dst = binary.AppendUvarint(dst, uint64(len(mag)))
	return append(dst, mag...)
}

// appendReflect normalises the values of other Go types by their kind.
func appendReflect(dst []byte, v any, depth int) ([]byte, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(append(dst, tagInt), rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.AppendUvarint(append(dst, tagUint), rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return binary.LittleEndian.AppendUint64(append(dst, tagFloat), math.Float64bits(rv.Float())), nil
	case reflect.Bool:
		return appendValue(dst, rv.Bool(), depth)
	case reflect.String:
		return appendString(append(dst, tagString), rv.String()), nil
	case reflect.Pointer:
		if rv.IsNil() {
			return append(dst, tagNil), nil
		}
		if depth > MaxDepth {
			return dst, fmt.Errorf("record nests deeper than %d levels", MaxDepth)
		}
		return appendValue(dst, rv.Elem().Interface(), depth+1)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return append(dst, tagNil), nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return appendValue(dst, b, depth)
		}
		if depth+1 > MaxDepth {
			return dst, fmt.Errorf("record nests deeper than %d levels", MaxDepth)
		}
		dst = binary.AppendUvarint(append(dst, tagList), uint64(rv.Len()))
		var err error
		for i := 0; i < rv.Len(); i++ {
			if dst, err = appendValue(dst, rv.Index(i).Interface(), depth+1); err != nil {
				return dst, fmt.Errorf("index %d: %w", i, err)
			}
		}
		return dst, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			return append(dst, tagNil), nil
		}
		if depth+1 > MaxDepth {
			return dst, fmt.Errorf("record nests deeper than %d levels", MaxDepth)
		}
		dst = binary.AppendUvarint(append(dst, tagMap), uint64(rv.Len()))
		var err error
		it := rv.MapRange()
		for it.Next() {
			k := it.Key().String()
			dst = appendString(dst, k)
			if dst, err = appendValue(dst, it.Value().Interface(), depth+1); err != nil {
				return dst, fmt.Errorf("field %q: %w", k, err)
			}
		}
		return dst, nil
	}
	return dst, fmt.Errorf("unsupported record value of type %T", v)
}

type zoneKey struct {
	name string
	off  int
}

// zones caches the locations of decoded zones, so that decoding a time in a
// common zone does not allocate; it holds at most maxZones of them.
var (
	zonesMu sync.RWMutex
	zones   = map[zoneKey]*time.Location{}
)

const maxZones = 256

func fixedZone(name string, off int) *time.Location {
	k := zoneKey{name, off}
	zonesMu.RLock()
	loc := zones[k]
	zonesMu.RUnlock()
	if loc != nil {
		return loc
	}
	loc = time.FixedZone(name, off)
	zonesMu.Lock()
	if len(zones) < maxZones {
		k.name = strings.Clone(name) // name may be a substring of a big message
		zones[k] = loc
	}
	zonesMu.Unlock()
	return loc
}

// decoder reads an encoding. Strings are substrings of str, one conversion of
// the message's non-raw bytes, so a message costs one allocation for all of
// its strings.
type decoder struct {
	b   []byte
	str string
	off int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.off = len(d.b)
}

func (d *decoder) byte() byte {
	if d.off >= len(d.b) {
		d.fail()
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

// count reads a length or element count and bounds it by the bytes left,
// each element taking at least min bytes.
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if left := uint64(len(d.b) - d.off); v > left/uint64(min) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.count(1)
	if d.err != nil {
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) string() string {
	n := d.count(1)
	if d.err != nil || n == 0 {
		return ""
	}
	s := d.str[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 || sec > 1<<62 || sec < -1<<62 {
		d.fail()
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	switch d.byte() {
	case zoneUTC:
		return t.UTC()
	case zoneFixed:
		off := d.varint()
		name := d.string()
		if off < -7*86400 || off > 7*86400 {
			d.fail()
			return time.Time{}
		}
		return t.In(fixedZone(name, int(off)))
	}
	d.fail()
	return time.Time{}
}

func (d *decoder) exponent() int32 {
	e := d.varint()
	if e < math.MinInt32 || e > math.MaxInt32 {
		d.fail()
		return 0
	}
	return int32(e)
}

func (d *decoder) value(depth int) any {
	switch d.byte() {
	case tagNil:
		return nil
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagInt:
		return d.varint()
	case tagUint:
		return d.uvarint()
	case tagFloat:
		if len(d.b)-d.off < 8 {
			d.fail()
			return nil
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.off:]))
		d.off += 8
		return f
	case tagString:
		return d.string()
	case tagBytes:
		return append([]byte{}, d.bytes()...)
	case tagTime:
		return d.time()
	case tagDecimal:
		exp := d.exponent()
		return decimal.New(d.varint(), exp)
	case tagBigDecimal:
		exp := d.exponent()
		sign := d.byte()
		mag := d.bytes()
		if d.err != nil || sign > 1 {
			d.fail()
			return nil
		}
		c := new(big.Int).SetBytes(mag)
		if sign == 1 {
			c.Neg(c)
		}
		return decimal.NewFromBigInt(c, exp)
	case tagList:
		if depth >= MaxDepth {
			d.fail()
			return nil
		}
		n := d.count(1)
		l := make([]any, n)
		for i := range l {
			l[i] = d.value(depth + 1)
		}
		return l
	case tagMap:
		if depth >= MaxDepth {
			d.fail()
			return nil
		}
		return d.record(depth + 1)
	}
	d.fail()
	return nil
}

func (d *decoder) record(depth int) map[string]any {
	n := d.count(2)
	m := make(map[string]any, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		m[k] = d.value(depth)
	}
	return m
}

// DecodeMessage decodes an encoding made by AppendMessage. It never retains
// b. Corrupt or truncated input gives an error wrapping ErrCorrupt, never a
// panic, and allocations are bounded by len(b).
func DecodeMessage(b []byte) (adapters.Message, error) { return decodeMessage(b, false) }

// DecodeMessageShared is DecodeMessage, except that the message's Raw is a
// slice of b rather than a copy: the caller must not modify b while the
// message is in use. It saves a copy of large payloads on the read path.
func DecodeMessageShared(b []byte) (adapters.Message, error) { return decodeMessage(b, true) }

func decodeMessage(b []byte, share bool) (adapters.Message, error) {
	var m adapters.Message
	if len(b) < 2 {
		return m, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	}
	if b[0] != WireVersion {
		return m, fmt.Errorf("%w: unknown version %d", ErrCorrupt, b[0])
	}
	flags := b[1]
	if flags&^(flagTime|flagRaw|flagRecord|flagMeta) != 0 {
		return m, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	d := decoder{b: b, off: 2}
	end := len(b)
	if flags&flagRaw != 0 {
		n := d.count(1)
		if d.err != nil {
			return m, d.err
		}
		end -= n
		if share {
			m.Raw = b[end:len(b):len(b)]
		} else {
			m.Raw = append(make([]byte, 0, n), b[end:]...)
		}
	}
	d.b = b[:end]
	d.str = string(b[:end]) // offsets in str are offsets in b
	m.ID = d.string()
	if flags&flagTime != 0 {
		m.Time = d.time()
	}
	att := d.uvarint()
	if att > math.MaxInt32 {
		d.fail()
	}
	m.Attempt = int(att)
	if flags&flagMeta != 0 && d.err == nil {
		n := d.count(2)
		m.Meta = make(map[string]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.string()
			m.Meta[k] = d.string()
		}
	}
	if flags&flagRecord != 0 && d.err == nil {
		m.Record = d.record(1)
	}
	if d.err == nil && d.off != end {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, end-d.off)
	}
	if d.err != nil {
		return adapters.Message{}, d.err
	}
	return m, nil
}
