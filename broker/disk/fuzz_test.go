package disk

import (
	"testing"
)

// FuzzRecoveryParsers feeds arbitrary bytes to everything recovery parses:
// segments, ack-log records and the cursor snapshot. None may panic, and
// whatever a segment scan keeps must be whole, checksummed records.
func FuzzRecoveryParsers(f *testing.F) {
	seg := []byte{}
	for i := uint64(1); i <= 3; i++ {
		var start int
		seg, start = beginFrame(seg)
		seg = append(seg, kindInline, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
		seg = append(seg, "payload"...)
		endFrame(seg, start)
		patchSeq(seg[start:], i)
	}
	f.Add(seg)
	f.Add(appendOp(nil, &stateOp{typ: opAck, group: "g", ranges: []rng{{1, 5}, {9, 10}}}))
	f.Add(appendOp(nil, &stateOp{typ: opRetry, group: "g", seq: 3, retry: retryInfo{attempts: 2, first: 1, due: 2}}))
	c := newCursors()
	c.apply(&stateOp{typ: opAdd, group: "g", seq: 4})
	f.Add(appendSnapshot(nil, 7, c))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := scanSegment(b, 1, nil)
		var prev uint64
		for _, v := range s.valid {
			if v.from < 0 || v.to > int64(len(b)) || v.from >= v.to {
				t.Fatalf("valid span %v out of %d bytes", v, len(b))
			}
			for off := v.from; off < v.to; {
				body, n, ok := frameAt(b[off:v.to])
				if !ok {
					t.Fatalf("kept span %v holds a bad record at %d", v, off)
				}
				r, ok := parseData(body)
				if !ok || r.seq <= prev {
					t.Fatalf("kept record at %d: seq %d after %d", off, r.seq, prev)
				}
				prev = r.seq
				off += int64(n)
			}
		}
		if body, _, ok := frameAt(b); ok {
			if op, ok := parseOp(body); ok {
				newCursors().apply(&op)
			}
		}
		if _, c, err := parseSnapshot(b); err == nil {
			_ = c.minFloor()
		}
	})
}
