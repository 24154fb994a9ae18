package mysql

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform"
)

// row is one message ready to be written.
type row struct {
	idx   int    // index of the message in the batch
	shape *shape // its columns
	vals  []any  // one per shape column
	size  int    // estimated bytes in a statement
	done  bool   // committed
}

// shape is a list of columns shared by consecutive rows, with what the
// statements need to know about them.
type shape struct {
	cols    []string
	exact   map[string]int  // record field → index in cols
	ignored map[string]bool // record fields left out (unknown_fields: ignore)
	info    []column        // information_schema of each column (zero when unknown)
	isKey   []bool
	keyIdx  []int // index in cols of each key column of the sink, or -1
}

func newShape(cols []string, sc *sinkSchema) *shape {
	sh := &shape{cols: cols, exact: make(map[string]int, len(cols)), info: make([]column, len(cols)), isKey: make([]bool, len(cols))}
	for i, c := range cols {
		sh.exact[c] = i
		sh.info[i], _ = sc.info.column(c)
	}
	sh.keyIdx = make([]int, len(sc.key))
	for j, k := range sc.key {
		sh.keyIdx[j] = -1
		for i, c := range cols {
			if strings.EqualFold(k, c) {
				sh.keyIdx[j], sh.isKey[i] = i, true
			}
		}
	}
	return sh
}

// arena holds the text of the values a Write formats (times, decimals, JSON):
// their strings are slices of a few large allocations rather than one
// allocation each. Bytes are only ever appended, never changed.
type arena struct{ b []byte }

// text appends what f writes and returns it as a string.
func (a *arena) text(f func([]byte) []byte) string {
	if a == nil {
		return string(f(nil))
	}
	if cap(a.b)-len(a.b) < 64 {
		a.b = make([]byte, 0, 16<<10) // earlier strings keep the old chunk alive
	}
	start := len(a.b)
	a.b = f(a.b)
	if len(a.b) == start {
		return ""
	}
	return unsafe.String(&a.b[start], len(a.b)-start)
}

// rowAlloc hands out the rows of one Write and their values from a few
// large allocations.
type rowAlloc struct {
	rows []row
	vals []any
	n    int // messages in the batch, to size the chunks
	ar   arena
}

func (a *rowAlloc) row(sh *shape) *row {
	if len(a.rows) == cap(a.rows) {
		a.rows = make([]row, 0, a.n)
	}
	k := len(sh.cols)
	if cap(a.vals)-len(a.vals) < k {
		a.vals = make([]any, 0, max(k*a.n, 64))
	}
	a.rows = append(a.rows, row{shape: sh, vals: a.vals[len(a.vals) : len(a.vals)+k : len(a.vals)+k]})
	a.vals = a.vals[:len(a.vals)+k]
	return &a.rows[len(a.rows)-1]
}

// rows converts messages to rows; a message that cannot be converted is
// failed permanently in be.
func (s *Sink) rows(msgs []adapters.Message, sc *sinkSchema, be *adapters.BatchError) []*row {
	out := make([]*row, 0, len(msgs))
	var cur *shape
	var runner *transform.Runner
	if s.o.columns != nil {
		runner = s.runners.Get().(*transform.Runner)
		defer s.runners.Put(runner)
		cur = s.mappedShape(sc)
	}
	alloc := &rowAlloc{n: len(msgs)}
	for i := range msgs {
		m := &msgs[i]
		var r *row
		var err error
		if s.o.columns != nil {
			r, err = s.mappedRow(runner, cur, m, alloc)
		} else {
			r, cur, err = s.fieldRow(cur, m, sc, alloc)
		}
		if err == nil {
			err = s.checkKey(r, sc)
		}
		if err != nil {
			be.Fail(i, adapters.PermanentError(fmt.Errorf("sink %q: message %s: %w", s.res.Name, m.ID, err)))
			continue
		}
		r.idx = i
		out = append(out, r)
	}
	return out
}

func (s *Sink) checkKey(r *row, sc *sinkSchema) error {
	if s.o.mode != modeUpdate && s.o.mode != modeDelete {
		return nil
	}
	for j, i := range r.shape.keyIdx {
		if i < 0 {
			return fmt.Errorf("no value for key column %q", sc.key[j])
		}
		if r.vals[i] == nil {
			return fmt.Errorf("key column %q is null", sc.key[j])
		}
	}
	return nil
}

func (s *Sink) mappedShape(sc *sinkSchema) *shape {
	cols := make([]string, len(s.o.columns))
	for i, c := range s.o.columns {
		cols[i] = c.name
	}
	return newShape(cols, sc)
}

func (s *Sink) mappedRow(runner *transform.Runner, sh *shape, m *adapters.Message, alloc *rowAlloc) (*row, error) {
	r := alloc.row(sh)
	for i, c := range s.o.columns {
		v, err := runner.Eval(c.prog, m.Record, m.Meta)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		if r.vals[i], err = sqlArgIn(&sh.info[i], v, s.o.conn.loc, &alloc.ar); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		r.size += argSize(r.vals[i]) + 1
	}
	return r, nil
}

// fieldRow makes a row of the record's fields, reusing the shape of the
// previous row when the record has the same fields.
func (s *Sink) fieldRow(prev *shape, m *adapters.Message, sc *sinkSchema, alloc *rowAlloc) (*row, *shape, error) {
	if len(m.Record) == 0 {
		return nil, prev, errors.New("empty record: nothing to write")
	}
	sh := prev
	if !sameShape(prev, m.Record) {
		var cols []string
		var ignored map[string]bool
		for k := range m.Record {
			if s.o.ignoreUnknown {
				if _, ok := sc.info.column(k); !ok {
					if ignored == nil {
						ignored = map[string]bool{}
					}
					ignored[k] = true
					continue
				}
			}
			cols = append(cols, k)
		}
		if len(cols) == 0 {
			return nil, prev, errors.New("no field of the record is a column of the table")
		}
		slices.Sort(cols)
		for i := 1; i < len(cols); i++ {
			if strings.EqualFold(cols[i-1], cols[i]) {
				return nil, prev, fmt.Errorf("fields %q and %q name the same column", cols[i-1], cols[i])
			}
		}
		sh = newShape(cols, sc)
		sh.ignored = ignored
	}
	r := alloc.row(sh)
	for i, c := range sh.cols {
		v, err := sqlArgIn(&sh.info[i], m.Record[c], s.o.conn.loc, &alloc.ar)
		if err != nil {
			return nil, sh, fmt.Errorf("field %s: %w", c, err)
		}
		r.vals[i] = v
		r.size += argSize(v) + 1
	}
	return r, sh, nil
}

// sameShape reports whether rec has exactly the fields of sh (ignoring
// the ones sh ignores).
func sameShape(sh *shape, rec adapters.Record) bool {
	if sh == nil {
		return false
	}
	n := 0
	for k := range rec {
		if _, ok := sh.exact[k]; ok {
			n++
		} else if !sh.ignored[k] {
			return false
		}
	}
	return n == len(sh.cols)
}
