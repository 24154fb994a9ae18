package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// roQueue is a queue of a broker opened with OpenReadOnly. It holds no
// state: Peek and Stats read the files afresh, so they see what a writer in
// another process made durable, and tolerate its segments being deleted
// and its tail being written meanwhile.
type roQueue struct {
	b    *Broker
	name string
	dir  string
}

var _ broker.Queue = (*roQueue)(nil)

func openReadOnlyQueue(b *Broker, name string) (*roQueue, error) {
	q := &roQueue{b: b, name: name, dir: b.queueDir(name)}
	segs, err := listSegments(b.fs, q.dir)
	if err != nil || len(segs) == 0 {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("no queue %s in %s", name, b.dir)
		}
		return nil, err
	}
	return q, nil
}

func (q *roQueue) Name() string { return q.name }

func (q *roQueue) Enqueue(context.Context, []adapters.Message) error {
	return fmt.Errorf("queue %s: enqueue: %w", q.name, ErrReadOnly)
}

func (q *roQueue) Consumer(string) (broker.Consumer, error) {
	return nil, fmt.Errorf("queue %s: consume: %w", q.name, ErrReadOnly)
}

func (q *roQueue) Purge(context.Context) (int64, error) {
	return 0, fmt.Errorf("queue %s: purge: %w", q.name, ErrReadOnly)
}

func (q *roQueue) Close() error { return nil }

func (q *roQueue) DeadLetters() broker.Queue {
	if broker.IsDLQ(q.name) {
		return nil
	}
	d, err := openReadOnlyQueue(q.b, q.name+broker.DLQSuffix)
	if err != nil {
		return nil
	}
	return d
}

// view is one reading of a queue's files.
type view struct {
	cur   *cursors
	floor uint64
}

// scan reads the cursors, then every retained record at or past the lowest
// cursor, in order, until visit returns false.
func (q *roQueue) scan(visit func(rec dataRecord, size int) bool) (*view, uint64, error) {
	var lastErr error
	for try := 0; try < 3; try++ {
		cur, _, _, err := loadCursors(q.b.fs, q.dir, func(string, ...any) {})
		if err != nil {
			lastErr = err
			continue
		}
		v := &view{cur: cur, floor: cur.minFloor()}
		segs, err := listSegments(q.b.fs, q.dir)
		if err != nil {
			lastErr = err
			continue
		}
		var last uint64
		stop := false
		for i, sf := range segs {
			if i+1 < len(segs) && segs[i+1].base <= v.floor {
				last = max(last, segs[i+1].base-1)
				continue // wholly below every cursor
			}
			data, err := q.b.fs.ReadFile(path.Join(q.dir, sf.name))
			if errors.Is(err, fs.ErrNotExist) {
				continue // retention removed it meanwhile
			}
			if err != nil {
				return nil, 0, err
			}
			s := scanSegment(data, max(last+1, sf.base), func(off int64, r dataRecord) {
				if stop || r.seq < v.floor {
					return
				}
				body := frameLen(data[off:])
				if !visit(r, body) {
					stop = true
				}
			})
			last = max(last, sf.base-1)
			if s.n > 0 {
				last = max(last, s.last)
			}
			if stop {
				break
			}
		}
		return v, last + 1, nil
	}
	return nil, 0, fmt.Errorf("queue %s: %w", q.name, lastErr)
}

func (q *roQueue) Peek(ctx context.Context, n int) ([]adapters.Message, error) {
	var out []adapters.Message
	if n <= 0 {
		return out, nil
	}
	_, _, err := q.scan(func(rec dataRecord, _ int) bool {
		if ctx.Err() != nil {
			return false
		}
		p := rec.payload
		if rec.kind == kindBlob {
			ref, _ := parseBlobRef(p)
			b, err := q.b.fs.ReadFile(path.Join(q.dir, blobDir, ref.name))
			if err != nil || crc(b) != ref.crc {
				return true
			}
			p = b
		}
		m, err := broker.DecodeMessage(p)
		if err == nil {
			out = append(out, m)
		}
		return len(out) < n
	})
	if err == nil {
		err = ctx.Err()
	}
	return out, err
}

func (q *roQueue) Stats() broker.Stats {
	s := broker.Stats{Name: q.name}
	var oldest int64
	v, end, err := q.scan(func(rec dataRecord, size int) bool {
		if oldest == 0 {
			oldest = rec.at
		}
		s.Messages++
		s.Bytes += int64(size)
		return true
	})
	if err != nil {
		q.b.logger.Warn("disk broker: read-only stats", "queue", q.name, "error", err)
		return s
	}
	if oldest != 0 {
		s.OldestAge = time.Since(time.Unix(0, oldest))
	}
	names := make([]string, 0, len(v.cur.groups))
	for n := range v.cur.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := v.cur.groups[n]
		pending := int64(end) - int64(g.floor)
		for _, r := range g.acked {
			pending -= int64(min(r.hi, end) - min(r.lo, end))
		}
		s.Groups = append(s.Groups, broker.GroupStats{Name: n, Pending: max(pending, 0)})
	}
	return s
}
