package filekit

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"hash"
	"strconv"
	"unsafe"
)

// IDMaker makes the deterministic message IDs of adapters.NewID for many
// positions that share their leading parts (pipeline, source, path, file
// identity): the hash state after the shared parts is computed once, so an
// ID costs one short hash and one string allocation.
//
// IDMaker.ID(n) == adapters.NewID(prefix..., strconv.FormatInt(n, 10)).
// An IDMaker is not safe for concurrent use.
type IDMaker struct {
	h     hash.Hash
	state []byte
	num   [20]byte
	sum   [sha256.Size]byte
	hex   [32]byte
}

// NewIDMaker returns an IDMaker for the given leading parts.
func NewIDMaker(prefix ...string) *IDMaker {
	h := sha256.New()
	for _, p := range prefix {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("filekit: sha256 state: " + err.Error())
	}
	return &IDMaker{h: h, state: state}
}

// ID returns the ID of position n.
func (m *IDMaker) ID(n int64) string {
	if err := m.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(m.state); err != nil {
		panic("filekit: sha256 state: " + err.Error())
	}
	b := strconv.AppendInt(m.num[:0], n, 10)
	b = append(b, 0)
	m.h.Write(b)
	sum := m.h.Sum(m.sum[:0])
	hex.Encode(m.hex[:], sum[:16])
	return string(m.hex[:])
}

// Arena hands out strings carved from one growing buffer, so that the
// numeric metadata of a whole batch (line numbers, offsets) costs a few
// allocations instead of one per value. A string it returned is never
// modified: a full buffer is replaced, not reused. Not safe for concurrent
// use.
type Arena struct {
	buf []byte
}

// Int returns the decimal text of n.
func (a *Arena) Int(n int64) string {
	if n >= 0 && n < 100 {
		return smallInts[n]
	}
	if cap(a.buf)-len(a.buf) < 20 {
		a.buf = make([]byte, 0, 4096)
	}
	start := len(a.buf)
	a.buf = strconv.AppendInt(a.buf, n, 10)
	b := a.buf[start:len(a.buf):len(a.buf)]
	return unsafe.String(unsafe.SliceData(b), len(b))
}

var smallInts = func() (out [100]string) {
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return
}()
