package disk

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// queue is a read-write disk queue.
type queue struct {
	b    *Broker
	name string
	dir  string
	log  *dataLog
	st   *stateLog
	dlq  *queue

	mu       sync.Mutex
	opts     broker.Options
	groups   map[string]*group
	closed   bool
	full     bool
	resBytes int64 // admitted, not yet committed
	resMsgs  int64
	space    chan struct{} // closed and replaced when room may have freed
	waiters  atomic.Int32  // producers blocked on space

	groupList atomic.Pointer[[]*group]
	closedCh  chan struct{}

	enqueued, deadLettered, quarantined atomic.Int64
}

var (
	_ broker.Queue         = (*queue)(nil)
	_ broker.AsyncEnqueuer = (*queue)(nil)
)

func openQueue(b *Broker, name string, opts broker.Options) (*queue, error) {
	q := &queue{b: b, name: name, dir: b.queueDir(name), opts: opts, groups: map[string]*group{},
		space: make(chan struct{}), closedCh: make(chan struct{})}
	q.groupList.Store(&[]*group{})
	fsys := b.fs
	if err := fsys.MkdirAll(path.Join(q.dir, blobDir)); err != nil {
		return nil, err
	}
	l, err := q.recoverLog()
	if err != nil {
		return nil, err
	}
	closeSegs := func() {
		for _, s := range l.segs {
			_ = s.f.Close()
		}
	}
	q.log = l
	if err := q.removeLeftovers(l); err != nil {
		closeSegs()
		return nil, err
	}
	cur, gen, logs, err := loadCursors(fsys, q.dir, func(msg string, args ...any) {
		b.logger.Warn("disk broker: "+msg, append([]any{"queue", name}, args...)...)
	})
	if err != nil {
		closeSegs()
		return nil, err
	}
	// Never reuse a seq a cursor may have passed: that message would count
	// as acked.
	next := l.nextSeq.Load()
	next = max(next, cur.purged)
	for _, g := range cur.groups {
		next = max(next, g.floor)
		if n := len(g.acked); n > 0 {
			next = max(next, g.acked[n-1].hi)
		}
	}
	l.wseq = next
	if len(l.segs) > 0 {
		l.active = l.segs[len(l.segs)-1]
	}
	if l.active == nil || l.active.last.Load()+1 != next {
		if l.active, err = l.createSegment(next); err != nil {
			closeSegs()
			return nil, err
		}
		l.nextSeq.Store(next)
	}
	st := &stateLog{q: q, fs: fsys, dir: q.dir, cur: cur, gen: gen}
	if err := st.reset(logs); err != nil {
		closeSegs()
		return nil, err
	}
	q.st = st
	for gname, gs := range cur.groups {
		q.groups[gname] = newGroup(q, gname, gs)
	}
	q.publishGroups()
	if err := q.pruneLocked(opts.Groups); err != nil {
		closeSegs()
		return nil, err
	}
	l.start()
	st.start()
	if _, err := l.retain(cur.minFloor()); err != nil {
		b.logger.Warn("could not remove consumed segments", "queue", name, "error", err)
	}
	return q, nil
}

func (q *queue) publishGroups() {
	gs := make([]*group, 0, len(q.groups))
	for _, g := range q.groups {
		gs = append(gs, g)
	}
	q.groupList.Store(&gs)
}

// pruneLocked removes the groups not in keep (nil: keep all) durably.
// The state writer may not run yet; then the cursors are changed directly
// and the next reset persists them... so it persists them itself.
func (q *queue) pruneLocked(keep []string) error {
	if keep == nil {
		return nil
	}
	ok := map[string]bool{broker.ReplayGroup: true}
	for _, g := range keep {
		ok[g] = true
	}
	var drops []stateOp
	for name := range q.groups {
		if !ok[name] {
			drops = append(drops, stateOp{typ: opDrop, group: name})
			delete(q.groups, name)
		}
	}
	if len(drops) == 0 {
		return nil
	}
	q.publishGroups()
	if q.st.reqs == nil { // not started: at open
		for i := range drops {
			q.st.cur.apply(&drops[i])
		}
		return q.st.reset([]string{ackLogName(q.st.gen)})
	}
	return q.st.persist(drops...)
}

func (q *queue) setOptions(opts broker.Options) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errClosedQueue
	}
	q.opts = opts
	q.log.segBytes.Store(opts.SegmentBytes)
	err := q.pruneLocked(opts.Groups)
	q.wakeSpace()
	return err
}

func (q *queue) Name() string { return q.name }

func (q *queue) DeadLetters() broker.Queue {
	if q.dlq == nil {
		return nil
	}
	return q.dlq
}

func (q *queue) options() broker.Options {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.opts
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Enqueue appends msgs and returns once they are durable.
func (q *queue) Enqueue(ctx context.Context, msgs []adapters.Message) error {
	return q.EnqueueAsync(ctx, msgs)()
}

// EnqueueAsync encodes and admits msgs (waiting for room while the queue is
// full, until ctx is done) and hands them to the log writer in call order;
// the returned wait blocks until they are durable.
func (q *queue) EnqueueAsync(ctx context.Context, msgs []adapters.Message) func() error {
	if len(msgs) == 0 {
		return func() error { return nil }
	}
	if err := q.b.Err(); err != nil {
		return func() error { return err }
	}
	bp := bufPool.Get().(*[]byte)
	r, err := q.encode(msgs, (*bp)[:0])
	if err != nil {
		bufPool.Put(bp)
		return func() error { return err }
	}
	if err := q.admit(ctx, r); err != nil {
		*bp = r.buf[:0]
		bufPool.Put(bp)
		return func() error { return err }
	}
	q.enqueued.Add(int64(len(msgs)))
	if err := q.log.submit(r); err != nil {
		q.unreserve(r)
		return func() error { return err }
	}
	return func() error {
		err := <-r.done
		if cap(r.buf) <= 1<<20 {
			*bp = r.buf[:0]
			bufPool.Put(bp)
		}
		return err
	}
}

// encode frames msgs; a message whose encoding is above InlineMax goes to a
// blob file now, and its frame refers to it.
func (q *queue) encode(msgs []adapters.Message, buf []byte) (*appendReq, error) {
	opts := q.options()
	now := time.Now()
	at := now.UnixNano()
	var err error
	for i := range msgs {
		m := msgs[i]
		if m.ID == "" {
			m.ID = newID()
		}
		if m.Time.IsZero() {
			m.Time = now
		}
		m.Attempt = 0
		var start int
		buf, start = beginFrame(buf)
		buf = append(buf, kindInline)
		buf = binary.LittleEndian.AppendUint64(buf, 0)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(at))
		payload := len(buf)
		if buf, err = broker.AppendMessage(buf, &m); err != nil {
			return nil, fmt.Errorf("queue %s: %w", q.name, err)
		}
		if enc := buf[payload:]; int64(len(enc)) > opts.InlineMax {
			ref, err := q.writeBlob(enc)
			if err != nil {
				return nil, err
			}
			buf = buf[:payload]
			buf[start+frameHeader] = kindBlob
			buf = binary.LittleEndian.AppendUint32(buf, ref.crc)
			buf = binary.LittleEndian.AppendUint64(buf, uint64(ref.size))
			buf = append(buf, ref.name...)
		}
		// the length now; the log writer seals the checksum with the seq
		binary.LittleEndian.PutUint32(buf[start:], uint32(len(buf)-start-frameHeader))
	}
	r := &appendReq{buf: buf, n: len(msgs), bytes: int64(len(buf)), done: make(chan error, 1)}
	if opts.MaxBytes > 0 && r.bytes > opts.MaxBytes {
		return nil, fmt.Errorf("queue %s: %d bytes: %w", q.name, r.bytes, broker.ErrTooLarge)
	}
	return r, nil
}

func newID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// writeBlob stores a large message encoding as a blob file and makes it
// durable before its record is written.
func (q *queue) writeBlob(enc []byte) (blobRef, error) {
	ref := blobRef{crc: crc(enc), size: int64(len(enc)), name: newID() + ".blob"}
	dir := path.Join(q.dir, blobDir)
	if err := writeFileSync(q.b.fs, path.Join(dir, ref.name), enc); err != nil {
		q.b.fatal(err)
		return ref, err
	}
	if err := q.b.fs.SyncDir(dir); err != nil {
		err = fmt.Errorf("fsync directory %s: %w", dir, err)
		q.b.fatal(err)
		return ref, err
	}
	return ref, nil
}

// readBlob returns the message encoding a blob record refers to.
func (q *queue) readBlob(p []byte) ([]byte, error) {
	ref, ok := parseBlobRef(p)
	if !ok {
		return nil, fmt.Errorf("queue %s: malformed blob reference", q.name)
	}
	name := path.Join(q.dir, blobDir, ref.name)
	b, err := q.b.fs.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("queue %s: blob: %w", q.name, err)
	}
	if int64(len(b)) != ref.size || crc(b) != ref.crc {
		return nil, fmt.Errorf("queue %s: blob %s is corrupt (%d bytes, want %d)", q.name, name, len(b), ref.size)
	}
	return b, nil
}

// retainedLocked returns the messages and bytes the queue holds: from the
// lowest cursor to the durable end, plus what is admitted and not yet
// committed.
func (q *queue) retained() (msgs, bytes int64, floorSeq uint64, floorPos int64) {
	floorSeq, floorPos = q.floor()
	msgs = int64(q.log.nextSeq.Load()) - int64(floorSeq)
	bytes = q.log.endPos.Load() - floorPos
	return max(msgs, 0), max(bytes, 0), floorSeq, floorPos
}

// floor returns the lowest cursor of the live groups, or the start of the
// log when there is none.
func (q *queue) floor() (uint64, int64) {
	gs := *q.groupList.Load()
	if len(gs) == 0 {
		pos, seq := q.log.first()
		return seq, pos
	}
	seq, pos := uint64(math.MaxUint64), int64(math.MaxInt64)
	for _, g := range gs {
		s, p := g.floorSeq.Load(), g.floorPos.Load()
		seq, pos = min(seq, s), min(pos, p)
	}
	return seq, pos
}

func (q *queue) admit(ctx context.Context, r *appendReq) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.closed {
			return errClosedQueue
		}
		if err := q.b.Err(); err != nil {
			return err
		}
		msgs, bytes, _, _ := q.retained()
		msgs += q.resMsgs
		bytes += q.resBytes
		overBytes := q.opts.MaxBytes > 0 && bytes+r.bytes > q.opts.MaxBytes && msgs > 0
		overCount := q.opts.MaxMessages > 0 && msgs+int64(r.n) > q.opts.MaxMessages && msgs > 0
		if !overBytes && !overCount {
			break
		}
		q.full = true
		ch := q.space
		q.waiters.Add(1)
		q.mu.Unlock()
		// the cursors may have moved between the check and here
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ch:
		case <-t.C:
		case <-q.b.dead:
		case <-ctx.Done():
			t.Stop()
			q.mu.Lock()
			q.waiters.Add(-1)
			return ctx.Err()
		}
		t.Stop()
		q.mu.Lock()
		q.waiters.Add(-1)
	}
	q.full = false
	q.resBytes += r.bytes
	q.resMsgs += int64(r.n)
	return nil
}

func (q *queue) unreserve(r *appendReq) {
	q.mu.Lock()
	q.resBytes -= r.bytes
	q.resMsgs -= int64(r.n)
	q.mu.Unlock()
}

// wakeSpace wakes blocked producers; callers hold q.mu.
func (q *queue) wakeSpace() {
	close(q.space)
	q.space = make(chan struct{})
}

// freed is called when cursors advanced: blocked producers look again.
func (q *queue) freed() {
	if q.waiters.Load() == 0 {
		return
	}
	q.mu.Lock()
	q.wakeSpace()
	q.mu.Unlock()
}

// committed is called by the log writer after each durable commit of the
// requests in reqs.
func (q *queue) committed(reqs []*appendReq) {
	var bytes, n int64
	for _, r := range reqs {
		bytes += r.bytes
		n += int64(r.n)
	}
	q.mu.Lock()
	q.resBytes -= bytes
	q.resMsgs -= n
	q.mu.Unlock()
	for _, g := range *q.groupList.Load() {
		g.notify()
	}
}

// Consumer returns the group called name, creating it durably at the
// oldest retained message when it is new.
func (q *queue) Consumer(name string) (broker.Consumer, error) {
	if name == "" {
		return nil, fmt.Errorf("queue %s: consumer group name is empty", q.name)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, errClosedQueue
	}
	if g, ok := q.groups[name]; ok {
		return g, nil
	}
	floor, _ := q.floor()
	if err := q.st.persist(stateOp{typ: opAdd, group: name, seq: floor}); err != nil {
		return nil, err
	}
	g := newGroup(q, name, &groupState{floor: floor})
	q.groups[name] = g
	q.publishGroups()
	return g, nil
}

// Peek decodes up to n messages from the oldest retained one.
func (q *queue) Peek(ctx context.Context, n int) ([]adapters.Message, error) {
	if n <= 0 {
		return nil, nil
	}
	floorSeq, pos := q.floor()
	out := make([]adapters.Message, 0, min(n, 1024))
	fr := frameReader{fresh: true} // decoded messages share its buffers
	for len(out) < n {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		rec, frame, err := fr.next(q.log, pos)
		if err != nil {
			return out, err
		}
		if frame == 0 {
			break
		}
		pos += int64(frame)
		if rec.seq < floorSeq {
			continue
		}
		m, err := q.decode(rec)
		if err != nil {
			q.b.logger.Error("disk broker: unreadable message skipped by peek", "queue", q.name, "seq", rec.seq, "error", err)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

func (q *queue) decode(rec dataRecord) (adapters.Message, error) {
	p := rec.payload
	if rec.kind == kindBlob {
		var err error
		if p, err = q.readBlob(p); err != nil {
			return adapters.Message{}, err
		}
	}
	m, err := broker.DecodeMessageShared(p) // p is never reused: see frameReader
	if err != nil {
		return m, fmt.Errorf("queue %s: message %d: %w", q.name, rec.seq, err)
	}
	return m, nil
}

// Purge drops every message for every group: the log starts a new segment,
// every cursor moves to it durably, and the old segments are deleted.
func (q *queue) Purge(ctx context.Context) (int64, error) {
	msgs, _, _, _ := q.retained()
	r := &appendReq{roll: true, done: make(chan error, 1)}
	if err := q.log.submit(r); err != nil {
		return 0, err
	}
	if err := <-r.done; err != nil {
		return 0, err
	}
	end := r.seq
	if err := q.st.persist(stateOp{typ: opPurge, seq: end}); err != nil {
		return 0, err
	}
	pos := q.log.posOfSeq(end)
	for _, g := range *q.groupList.Load() {
		g.purge(end, pos)
	}
	q.mu.Lock()
	q.wakeSpace()
	q.mu.Unlock()
	return msgs, nil
}

func (q *queue) Stats() broker.Stats {
	msgs, bytes, floorSeq, floorPos := q.retained()
	q.mu.Lock()
	s := broker.Stats{Name: q.name, Messages: msgs, Bytes: bytes, Full: q.full,
		Enqueued: q.enqueued.Load(), DeadLettered: q.deadLettered.Load(), Quarantined: q.quarantined.Load()}
	gs := make([]*group, 0, len(q.groups))
	for _, g := range q.groups {
		gs = append(gs, g)
	}
	q.mu.Unlock()
	if msgs > 0 {
		var fr frameReader
		for pos := floorPos; ; {
			rec, n, err := fr.next(q.log, pos)
			if err != nil || n == 0 {
				break
			}
			if rec.seq >= floorSeq {
				s.OldestAge = time.Since(time.Unix(0, rec.at))
				break
			}
			pos += int64(n)
		}
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].name < gs[j].name })
	for _, g := range gs {
		s.Groups = append(s.Groups, g.stats())
	}
	return s
}

// Close stops the queue's writers and closes its files; Open reads it
// afresh.
func (q *queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.closedCh)
	q.wakeSpace()
	q.mu.Unlock()
	q.log.stop()
	q.st.stop()
	q.b.forget(q)
	return nil
}

// frameReader reads records sequentially from a data log through a buffer.
// A fresh reader never overwrites bytes it returned: each refill reads into
// a new buffer, so records may be used after later reads.
type frameReader struct {
	buf    []byte
	bufPos int64 // log position of buf[0]
	fresh  bool
	chunk  int // bytes per read; 0 means 256 KiB
}

// next returns the record at pos and its frame length; 0 at the durable
// end. A frame that fails its checksum is an error.
func (fr *frameReader) next(l *dataLog, pos int64) (dataRecord, int, error) {
	need := fr.chunk
	if need == 0 {
		need = 256 << 10
	}
	for attempt := 0; attempt < 2; attempt++ {
		if off := pos - fr.bufPos; off >= 0 && off+frameHeader <= int64(len(fr.buf)) {
			b := fr.buf[off:]
			n := frameLen(b)
			if n == 0 {
				return dataRecord{}, 0, fmt.Errorf("queue %s: bad record length at log position %d", l.q.name, pos)
			}
			if n <= len(b) {
				body, n, ok := frameAt(b)
				if !ok {
					return dataRecord{}, 0, fmt.Errorf("queue %s: record at log position %d fails its checksum", l.q.name, pos)
				}
				rec, ok := parseData(body)
				if !ok {
					return dataRecord{}, 0, fmt.Errorf("queue %s: malformed record at log position %d", l.q.name, pos)
				}
				return rec, n, nil
			}
			need = max(need, n)
		}
		if cap(fr.buf) < need || fr.fresh {
			fr.buf = make([]byte, 0, need)
		}
		n, err := l.readAt(pos, fr.buf[:cap(fr.buf)])
		if err != nil {
			return dataRecord{}, 0, err
		}
		fr.buf, fr.bufPos = fr.buf[:n], pos
		if n == 0 {
			return dataRecord{}, 0, nil
		}
	}
	return dataRecord{}, 0, fmt.Errorf("queue %s: record at log position %d is cut short", l.q.name, pos)
}
