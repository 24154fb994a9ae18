package recvalue

import "bytes"

// MaxCached is the longest field whose value a Cache keeps.
const MaxCached = 16

// Cache remembers, per field, the last value decoded and the bytes it came
// from. Files repeat values (status codes, currencies, zero amounts, dates)
// and a hit saves the allocations of decoding and boxing them again. Values
// must be immutable: strings, int64, decimal.Decimal (whose methods never
// modify it) and the like. A Cache belongs to one decoder.
//
// A field whose value changes on every record (an amount, a key) only pays
// for the comparison and the copy: after coldAfter misses in a row its entry
// goes cold, and Get and Put skip it for the next coldFor lookups.
type Cache struct {
	entries []entry
}

const (
	coldAfter = 64
	coldFor   = 1024
)

type entry struct {
	n      int8 // -1: empty
	raw    [MaxCached]byte
	misses uint16 // in a row
	cold   uint16 // lookups left to skip
	val    any
}

// NewCache returns a cache of n fields.
func NewCache(n int) *Cache {
	c := &Cache{entries: make([]entry, n)}
	for i := range c.entries {
		c.entries[i].n = -1
	}
	return c
}

// Get returns the value field i had when its bytes were raw.
func (c *Cache) Get(i int, raw []byte) (any, bool) {
	e := &c.entries[i]
	if e.cold > 0 {
		e.cold--
		return nil, false
	}
	if int(e.n) != len(raw) || !bytes.Equal(e.raw[:e.n], raw) {
		if e.misses++; e.misses >= coldAfter {
			e.n, e.val, e.misses, e.cold = -1, nil, 0, coldFor
		}
		return nil, false
	}
	e.misses = 0
	return e.val, true
}

// Put records that field i decoded raw (at most MaxCached bytes) to v,
// unless the field's entry is cold.
func (c *Cache) Put(i int, raw []byte, v any) {
	e := &c.entries[i]
	if e.cold > 0 {
		return
	}
	e.n = int8(copy(e.raw[:], raw))
	e.val = v
}
