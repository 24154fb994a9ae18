// Package box puts decoded values into interfaces in bulk, for the decoders
// of transform/codec: a record (adapters.Record, a map[string]any) holds
// each value as an interface, and Go boxes every value that is not a
// pointer (a string, an int64 of 256 or more, a float64, a time.Time, a
// decimal.Decimal) in an allocation of its own, which with the map makes up
// most of the cost of decoding a record.
//
// An Arena keeps the values in slabs and returns interfaces that point into
// them: one allocation per slab instead of one per value. A decimal.Decimal
// of up to 18 digits also gets its big.Int and the big.Int's word from
// slabs, where decimal.New allocates both (and boxing it a third time).
//
// This relies on two facts that the package checks when it starts, falling
// back to Go's own boxing (and decimal.New) if either does not hold: an
// interface holding a value of a non-pointer type is a type word and a
// pointer to an immutable copy of the value (the runtime never writes
// through it; a slab element is never written again once boxed), and
// decimal.Decimal is a *big.Int and an int32 exponent, which shopspring's
// methods never modify in place.
//
// A slab stays alive while any value boxed in it is referenced: a record
// kept for long keeps the values of up to slabSize-1 other records' fields
// of the same type (and the strings they point to) alive. Decoders'
// records live about as long as each other (a batch), so this costs little.
package box

import (
	"math/big"
	"math/bits"
	"time"
	"unsafe"

	"github.com/shopspring/decimal"
)

// slabSize is the number of values of one type per allocation.
const slabSize = 64

// Arena boxes values; its zero value is ready, and a nil *Arena boxes as Go
// does (for one-off parses). Not safe for concurrent use: each decoder has
// its own.
type Arena struct {
	strs   []string
	ints   []int64
	floats []float64
	times  []time.Time
	decs   []decSlot
}

// decSlot holds a decimal with its big.Int and the big.Int's one word.
type decSlot struct {
	d decimal.Decimal
	b big.Int
	w [1]big.Word
}

// eface is the layout of an interface{}.
type eface struct {
	typ, data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType  = typeWord("")
	int64Type   = typeWord(int64(0))
	float64Type = typeWord(float64(0))
	timeType    = typeWord(time.Time{})
	decimalType = typeWord(decimal.Decimal{})
)

// at returns an interface of dynamic type typ whose value is *p. The type
// must not be pointer-shaped (its interfaces would hold the value itself).
func at(typ, p unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, p
	return v
}

// ok is whether the layouts this package relies on hold; see init.
var ok = false

// decimalLayout is decimal.Decimal's layout (shopspring/decimal v1.x).
type decimalLayout struct {
	value *big.Int
	exp   int32
}

func init() {
	ok = check()
}

// check boxes sample values the fast way and compares them with Go's boxing
// and decimal.New.
func check() bool {
	if unsafe.Sizeof(decimal.Decimal{}) != unsafe.Sizeof(decimalLayout{}) || bits.UintSize != 64 {
		return false
	}
	var a Arena
	ok = true
	defer func() { ok = false }()
	s, i, f := a.String("box"), a.Int64(1<<40), a.Float64(-2.5)
	t0 := time.Date(2026, 11, 23, 10, 17, 0, 5, time.UTC)
	t := a.Time(t0)
	d, z := a.Decimal(-12345, -2), a.Decimal(0, -3)
	sd, _ := d.(decimal.Decimal)
	zd, _ := z.(decimal.Decimal)
	return s == any("box") && i == any(int64(1<<40)) && f == any(-2.5) && t == any(t0) &&
		sd.Equal(decimal.New(-12345, -2)) && sd.String() == "-123.45" && sd.Exponent() == -2 &&
		zd.Equal(decimal.Zero) && zd.Exponent() == -3 && zd.String() == "0"
}

// put appends v to the slab *s, a new one when it is full, and returns
// where v is.
func put[T any](s *[]T, v T) unsafe.Pointer {
	if len(*s) == cap(*s) {
		*s = make([]T, 0, slabSize)
	}
	*s = append(*s, v)
	return unsafe.Pointer(&(*s)[len(*s)-1])
}

// String returns s as an interface.
func (a *Arena) String(s string) any {
	if a == nil || !ok {
		return s
	}
	return at(stringType, put(&a.strs, s))
}

// Int64 returns v as an interface.
func (a *Arena) Int64(v int64) any {
	if a == nil || !ok || v >= 0 && v < 256 {
		return v // Go boxes these without allocating
	}
	return at(int64Type, put(&a.ints, v))
}

// Float64 returns v as an interface.
func (a *Arena) Float64(v float64) any {
	if a == nil || !ok {
		return v
	}
	return at(float64Type, put(&a.floats, v))
}

// Time returns t as an interface.
func (a *Arena) Time(t time.Time) any {
	if a == nil || !ok {
		return t
	}
	return at(timeType, put(&a.times, t))
}

// Decimal returns decimal.New(v, exp) as an interface.
func (a *Arena) Decimal(v int64, exp int32) any {
	if a == nil || !ok {
		return decimal.New(v, exp)
	}
	if len(a.decs) == cap(a.decs) {
		a.decs = make([]decSlot, 0, slabSize)
	}
	a.decs = a.decs[:len(a.decs)+1]
	sl := &a.decs[len(a.decs)-1]
	u := uint64(v)
	if v < 0 {
		u = -u
	}
	sl.w[0] = big.Word(u)
	sl.b.SetBits(sl.w[:]) // a zero word normalises to zero
	if v < 0 {
		sl.b.Neg(&sl.b)
	}
	d := &sl.d
	*(*decimalLayout)(unsafe.Pointer(d)) = decimalLayout{value: &sl.b, exp: exp}
	return at(decimalType, unsafe.Pointer(d))
}
