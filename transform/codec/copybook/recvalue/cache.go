package recvalue

import "bytes"

// MaxCached is the longest field whose value a Cache keeps.
const MaxCached = 16

// Cache remembers, per field, the last value decoded and the bytes it came
// from. Files repeat values (status codes, currencies, zero amounts, dates)
// and a hit saves the allocations of decoding and boxing them again. Values
// must be immutable: strings, int64, decimal.Decimal (whose methods never
// modify it) and the like. A Cache belongs to one decoder.
type Cache struct {
	entries []entry
}

type entry struct {
	n   int8 // -1: empty
	raw [MaxCached]byte
	val any
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
	if int(e.n) != len(raw) || !bytes.Equal(e.raw[:e.n], raw) {
		return nil, false
	}
	return e.val, true
}

// Put records that field i decoded raw (at most MaxCached bytes) to v.
func (c *Cache) Put(i int, raw []byte, v any) {
	e := &c.entries[i]
	e.n = int8(copy(e.raw[:], raw))
	e.val = v
}
