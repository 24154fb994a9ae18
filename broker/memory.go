package broker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// NewMemory returns a broker that keeps queues in memory. Nothing survives a
// restart: it is for tests, demos and pipelines that explicitly opt in.
func NewMemory() Broker { return &memBroker{queues: map[string]*memQueue{}} }

type memBroker struct {
	mu     sync.Mutex
	queues map[string]*memQueue
	closed bool
}

func (b *memBroker) Open(name string, opts Options) (Queue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	q, err := b.openLocked(name, opts)
	if err != nil {
		return nil, err
	}
	if !IsDLQ(name) {
		dopts := opts
		dopts.MaxBytes, dopts.MaxMessages = 0, 0
		dopts.MaxAttempts = -1
		dopts.Groups = nil
		d, err := b.openLocked(name+DLQSuffix, dopts)
		if err != nil {
			return nil, err
		}
		q.dlq = d
		if _, err := d.Consumer(ReplayGroup); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func (b *memBroker) openLocked(name string, opts Options) (*memQueue, error) {
	if name == "" {
		return nil, fmt.Errorf("queue name is empty")
	}
	opts = opts.WithDefaults()
	q, ok := b.queues[name]
	if !ok {
		q = &memQueue{name: name, groups: map[string]*memGroup{}, changed: make(chan struct{}), base: 1}
		b.queues[name] = q
	}
	q.mu.Lock()
	q.opts = opts
	q.closed = false
	if opts.Groups != nil {
		keep := map[string]bool{ReplayGroup: true}
		for _, g := range opts.Groups {
			keep[g] = true
		}
		for g := range q.groups {
			if !keep[g] {
				delete(q.groups, g)
			}
		}
		q.trimLocked()
	}
	q.mu.Unlock()
	return q, nil
}

func (b *memBroker) List() ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.queues))
	for n := range b.queues {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (b *memBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, q := range b.queues {
		_ = q.Close()
	}
	return nil
}

// ring is a FIFO of T in a power-of-two circular buffer: pushing at the end
// and dropping from the front allocate only when it grows (or shrinks after
// a peak), where an append/re-slice queue reallocates over and over as its
// front moves.
type ring[T any] struct {
	buf  []T
	head int // index in buf of element 0
	n    int
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		r.resize(max(16, 2*len(r.buf)))
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

// drop removes the first k elements, clearing them so that what they
// reference can be collected.
func (r *ring[T]) drop(k int) {
	var zero T
	for i := 0; i < k; i++ {
		r.buf[(r.head+i)&(len(r.buf)-1)] = zero
	}
	r.head = (r.head + k) & (len(r.buf) - 1)
	r.n -= k
	if r.n == 0 {
		r.head = 0
	}
	if len(r.buf) > 1024 && r.n < len(r.buf)/8 {
		r.resize(len(r.buf) / 2)
	}
}

func (r *ring[T]) reset() { *r = ring[T]{} }

func (r *ring[T]) resize(size int) {
	buf := make([]T, size)
	for i := 0; i < r.n; i++ {
		buf[i] = *r.at(i)
	}
	r.buf, r.head = buf, 0
}

type memEntry struct {
	msg  adapters.Message
	size int64
	at   time.Time
}

type memQueue struct {
	name string
	dlq  *memQueue

	mu      sync.Mutex
	opts    Options
	closed  bool
	base    uint64 // seq of entries.at(0)
	entries ring[memEntry]
	bytes   int64
	groups  map[string]*memGroup
	// changed is closed and replaced on every change while waiters (blocked
	// Receive and Enqueue calls) wait on it.
	changed chan struct{}
	waiters int
	full    bool

	enqueued, deadLettered int64
}

// States of a message in a group's window.
const (
	slotNew      uint8 = iota // reached, not delivered (being skipped)
	slotInflight              // delivered, not settled
	slotWaiting               // released or nacked: delivered again once visibleAt is past
	slotAcked                 // acked out of order: the floor has not reached it
)

// memSlot is a group's state of one message it has reached (seq in
// [floor, next)).
type memSlot struct {
	// visibleAt is, in flight, when the visibility timeout expires and,
	// waiting, when the message may be delivered again.
	visibleAt time.Time
	first     time.Time // first failure
	attempts  int32
	tok       uint16 // deliveries of the message, the low bits of its tokens
	state     uint8
}

// Delivery tokens: the message's seq above tokBits, its delivery count below.
// A token whose count is not the slot's is stale (the message was delivered
// again after its visibility timeout) and settles nothing. Seqs stay below
// 2^48 (a queue taking a million messages a second for nine years).
const tokBits = 16

type memGroup struct {
	q     *memQueue
	name  string
	floor uint64 // every seq below is acked
	next  uint64 // lowest seq never reached
	win   ring[memSlot]
	// counts of slots by state, for Stats and to skip the redelivery scan
	inflight, waiting, ackedAhead int
	// deadline is at or before the earliest visibility timeout of the
	// deliveries in flight (zero: none in flight); a Receive scans for
	// expired deliveries only once it is past.
	deadline time.Time
	nAcked   int64
	nRetried int64
}

func (q *memQueue) Name() string { return q.name }

func (q *memQueue) DeadLetters() Queue {
	if q.dlq == nil {
		return nil
	}
	return q.dlq
}

func (q *memQueue) broadcastLocked() {
	if q.waiters == 0 {
		return // nobody holds q.changed
	}
	close(q.changed)
	q.changed = make(chan struct{})
}

// wait releases q.mu until the next change, ctx's end or timer, whichever
// comes first, and reports ctx's error.
func (q *memQueue) waitLocked(ctx context.Context, timer <-chan time.Time) error {
	ch := q.changed
	q.waiters++
	q.mu.Unlock()
	var err error
	select {
	case <-ch:
	case <-timer:
	case <-ctx.Done():
		err = ctx.Err()
	}
	q.mu.Lock()
	q.waiters--
	return err
}

// Memory a queued message holds beyond its strings, measured on amd64 with
// Go 1.26 maps: a map's header, table and directory; per entry a slot (32
// bytes for string keys and interface or string values) at the tables'
// average load, plus a boxed scalar value; the Message, the queue's entry and
// the group's slot.
const (
	mapOverhead   = 100
	fieldOverhead = 64
	metaOverhead  = 48
	msgOverhead   = 240
)

// sampleEvery is how often batchSizes walks a message's maps.
const sampleEvery = 16

// batchSizes fills sizes with the estimated size of each message and returns
// their sum. Walking every map costs as much as the rest of an enqueue, so
// only every sampleEvery-th message (the first included) is measured: its
// strings and byte slices by length (strings sliced from one shared buffer
// count once each, an overestimate), scalars, maps and slices by the
// overheads above, nested values to 8 levels. The others are estimated from their field counts and the bytes
// per field of the measured ones, which is close for the streams of
// same-shaped records queues carry.
func batchSizes(msgs []adapters.Message, sizes []int64) int64 {
	var total, recBytes, recFields, metaBytes, metaFields int64
	for i := range msgs {
		m := &msgs[i]
		n := int64(msgOverhead + len(m.ID) + len(m.Raw))
		if i%sampleEvery == 0 {
			if m.Meta != nil {
				s := metaSize(m.Meta)
				n += s
				metaBytes += s - mapOverhead
				metaFields += int64(len(m.Meta))
			}
			if m.Record != nil {
				s := recordSize(m.Record, 0)
				n += s
				recBytes += s - mapOverhead
				recFields += int64(len(m.Record))
			}
		} else {
			if m.Meta != nil {
				n += mapOverhead + perField(int64(len(m.Meta)), metaBytes, metaFields, metaOverhead)
			}
			if m.Record != nil {
				n += mapOverhead + perField(int64(len(m.Record)), recBytes, recFields, fieldOverhead)
			}
		}
		sizes[i] = n
		total += n
	}
	return total
}

// perField estimates n fields at the average of the measured ones.
func perField(n, bytes, fields, least int64) int64 {
	if fields == 0 {
		return n * least
	}
	return n * bytes / fields
}

func metaSize(meta map[string]string) int64 {
	n := int64(mapOverhead)
	for k, v := range meta {
		n += int64(metaOverhead + len(k) + len(v))
	}
	return n
}

func recordSize(r adapters.Record, depth int) int64 {
	n := int64(mapOverhead)
	for k, v := range r {
		n += int64(fieldOverhead+len(k)) + valueSize(v, depth)
	}
	return n
}

func valueSize(v any, depth int) int64 {
	switch x := v.(type) {
	case string:
		return int64(len(x))
	case []byte:
		return int64(len(x))
	case decimal.Decimal:
		return 64 // big.Int and its words
	case adapters.Record:
		if depth < 8 {
			return recordSize(x, depth+1)
		}
	case []any:
		if depth < 8 {
			n := int64(24)
			for _, e := range x {
				n += 16 + valueSize(e, depth+1)
			}
			return n
		}
	}
	return 0
}

func (q *memQueue) Enqueue(ctx context.Context, msgs []adapters.Message) error {
	var small [64]int64
	sizes := small[:]
	if len(msgs) > len(small) {
		sizes = make([]int64, len(msgs))
	}
	size := batchSizes(msgs, sizes)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.opts.MaxBytes > 0 && size > q.opts.MaxBytes {
		return fmt.Errorf("queue %s: %d bytes: %w", q.name, size, ErrTooLarge)
	}
	for {
		if q.closed {
			return ErrClosed
		}
		overBytes := q.opts.MaxBytes > 0 && q.bytes+size > q.opts.MaxBytes && q.entries.len() > 0
		overCount := q.opts.MaxMessages > 0 && int64(q.entries.len()+len(msgs)) > q.opts.MaxMessages && q.entries.len() > 0
		if !overBytes && !overCount {
			break
		}
		q.full = true
		if err := q.waitLocked(ctx, nil); err != nil {
			return err
		}
	}
	q.full = false
	now := time.Now()
	for i := range msgs {
		m := msgs[i]
		if m.ID == "" {
			m.ID = adapters.NewID(q.name, fmt.Sprint(now.UnixNano(), i, q.end()))
		}
		if m.Time.IsZero() {
			m.Time = now
		}
		m.Attempt = 0
		q.entries.push(memEntry{msg: m, size: sizes[i], at: now})
	}
	q.bytes += size
	q.enqueued += int64(len(msgs))
	q.broadcastLocked()
	return nil
}

func (q *memQueue) Consumer(group string) (Consumer, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	g, ok := q.groups[group]
	if !ok {
		g = &memGroup{q: q, name: group, floor: q.base, next: q.base}
		q.groups[group] = g
	}
	return g, nil
}

func (q *memQueue) entry(seq uint64) *memEntry { return q.entries.at(int(seq - q.base)) }

func (q *memQueue) end() uint64 { return q.base + uint64(q.entries.len()) }

// trimLocked drops entries every group has acked.
func (q *memQueue) trimLocked() {
	if len(q.groups) == 0 {
		return
	}
	low := q.end()
	for _, g := range q.groups {
		if g.floor < low {
			low = g.floor
		}
	}
	if low <= q.base {
		return
	}
	n := int(low - q.base)
	for i := 0; i < n; i++ {
		q.bytes -= q.entries.at(i).size
	}
	q.entries.drop(n)
	q.base = low
	q.broadcastLocked()
}

func (q *memQueue) Peek(ctx context.Context, n int) ([]adapters.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]adapters.Message, 0, min(n, q.entries.len()))
	for i := 0; i < q.entries.len() && len(out) < n; i++ {
		out = append(out, q.entries.at(i).msg)
	}
	return out, nil
}

func (q *memQueue) Purge(ctx context.Context) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := int64(q.entries.len())
	end := q.end()
	q.entries.reset()
	q.bytes = 0
	q.base = end
	for _, g := range q.groups {
		g.floor, g.next = end, end
		g.win.reset()
		g.inflight, g.waiting, g.ackedAhead = 0, 0, 0
		g.deadline = time.Time{}
	}
	q.broadcastLocked()
	return n, nil
}

func (q *memQueue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Name: q.name, Messages: int64(q.entries.len()), Bytes: q.bytes, Full: q.full, Enqueued: q.enqueued, DeadLettered: q.deadLettered}
	if q.entries.len() > 0 {
		s.OldestAge = time.Since(q.entries.at(0).at)
	}
	names := make([]string, 0, len(q.groups))
	for n := range q.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := q.groups[n]
		s.Groups = append(s.Groups, GroupStats{Name: n, Pending: int64(q.end()-g.floor) - int64(g.ackedAhead), InFlight: int64(g.inflight), Acked: g.nAcked, Retried: g.nRetried})
	}
	return s
}

func (q *memQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.broadcastLocked()
	}
	return nil
}

func (g *memGroup) Receive(ctx context.Context, max int) ([]Delivery, error) {
	if max <= 0 {
		max = 1
	}
	q := g.q
	q.mu.Lock()
	defer q.mu.Unlock()
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		if q.closed {
			return nil, ErrClosed
		}
		now := time.Now()
		out, wake := g.collectLocked(now, max)
		if len(out) > 0 {
			return out, nil
		}
		var timer <-chan time.Time
		if !wake.IsZero() {
			if t == nil {
				t = time.NewTimer(wake.Sub(now))
			} else {
				t.Reset(wake.Sub(now))
			}
			timer = t.C
		}
		if err := q.waitLocked(ctx, timer); err != nil {
			return nil, err
		}
	}
}

func (g *memGroup) slot(seq uint64) *memSlot { return g.win.at(int(seq - g.floor)) }

// collectLocked gathers due messages: redeliveries first, in queue order,
// then new ones. It returns the earliest future time something becomes due
// when nothing is (possibly earlier: a spurious wake-up only collects again).
func (g *memGroup) collectLocked(now time.Time, max int) ([]Delivery, time.Time) {
	q := g.q // trimLocked keeps every group's floor at or above q.base
	var out []Delivery
	var wake time.Time
	scan := g.waiting > 0 || (!g.deadline.IsZero() && !now.Before(g.deadline))
	if n := int(q.end() - g.next); scan || n > 0 {
		if scan {
			n += g.waiting + g.inflight
		}
		out = make([]Delivery, 0, min(max, n))
	}
	if scan {
		// Scan the window: deliver the due redeliveries, and find the
		// earliest future visibility of what stays in flight or waiting.
		g.deadline = time.Time{}
		for i := 0; i < g.win.len(); i++ {
			s := g.win.at(i)
			if s.state != slotInflight && s.state != slotWaiting {
				continue
			}
			if s.visibleAt.After(now) || len(out) >= max {
				if s.visibleAt.After(now) && (wake.IsZero() || s.visibleAt.Before(wake)) {
					wake = s.visibleAt
				}
				if s.state == slotInflight && (g.deadline.IsZero() || s.visibleAt.Before(g.deadline)) {
					g.deadline = s.visibleAt
				}
				continue
			}
			// due: waiting, or in flight past its visibility timeout (the
			// worker is presumed dead; its token goes stale)
			if s.state == slotWaiting {
				g.waiting--
				g.inflight++
			}
			out = append(out, g.deliverLocked(g.floor+uint64(i), s, now))
		}
	} else if !g.deadline.IsZero() {
		wake = g.deadline
	}
	skipped := false
	for len(out) < max && g.next < q.end() {
		seq := g.next
		g.next++
		g.win.push(memSlot{})
		e := q.entry(seq)
		if !ForGroup(&e.msg, g.name) {
			g.ackLocked(seq)
			skipped = true
			continue
		}
		g.inflight++
		out = append(out, g.deliverLocked(seq, g.slot(seq), now))
	}
	if skipped {
		q.trimLocked()
	}
	if len(out) > 0 {
		wake = time.Time{}
	}
	return out, wake
}

// deliverLocked hands out the message of seq; the caller counted it in flight.
func (g *memGroup) deliverLocked(seq uint64, s *memSlot, now time.Time) Delivery {
	s.attempts++
	s.state = slotInflight
	s.visibleAt = now.Add(g.q.opts.VisibilityTimeout)
	s.tok++
	if g.deadline.IsZero() || s.visibleAt.Before(g.deadline) {
		g.deadline = s.visibleAt
	}
	m := g.q.entry(seq).msg
	m.Attempt = int(s.attempts)
	return Delivery{Message: m, Token: seq<<tokBits | uint64(s.tok)}
}

// ackLocked settles seq for good and moves the floor past every acked seq;
// the caller trims the queue.
func (g *memGroup) ackLocked(seq uint64) {
	s := g.slot(seq)
	switch s.state {
	case slotInflight:
		g.inflight--
	case slotWaiting:
		g.waiting--
	}
	g.nAcked++
	if seq != g.floor {
		s.state = slotAcked
		g.ackedAhead++
		return
	}
	n := 1
	for n < g.win.len() && g.win.at(n).state == slotAcked {
		n++
	}
	g.ackedAhead -= n - 1
	g.win.drop(n)
	g.floor += uint64(n)
	if g.inflight == 0 {
		g.deadline = time.Time{}
	}
}

// settle calls f for each delivery that is still current, in flight.
func (g *memGroup) settle(ds []Delivery, f func(seq uint64, s *memSlot)) error {
	q := g.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	for _, d := range ds {
		seq := d.Token >> tokBits
		if seq < g.floor || seq >= g.next {
			continue
		}
		s := g.slot(seq)
		if s.state != slotInflight || s.tok != uint16(d.Token) {
			continue // already redelivered after its visibility timeout
		}
		f(seq, s)
	}
	q.trimLocked()
	q.broadcastLocked()
	return nil
}

// retryLocked turns an in-flight delivery into one waiting for visibleAt.
func (g *memGroup) retryLocked(s *memSlot, visibleAt time.Time) {
	s.state = slotWaiting
	s.visibleAt = visibleAt
	g.inflight--
	g.waiting++
}

func (g *memGroup) Ack(ctx context.Context, ds []Delivery) error {
	return g.settle(ds, func(seq uint64, s *memSlot) { g.ackLocked(seq) })
}

func (g *memGroup) Release(ctx context.Context, ds []Delivery) error {
	return g.settle(ds, func(seq uint64, s *memSlot) {
		s.attempts--
		g.retryLocked(s, time.Time{})
	})
}

func (g *memGroup) Nack(ctx context.Context, ds []Delivery, cause error) error {
	kind := adapters.KindOf(cause)
	var dead []adapters.Message
	now := time.Now()
	err := g.settle(ds, func(seq uint64, s *memSlot) {
		if s.first.IsZero() {
			s.first = now
		}
		if kind == adapters.Unavailable {
			s.attempts--
			g.retryLocked(s, time.Time{})
			return
		}
		max := g.q.opts.MaxAttempts
		if kind == adapters.Permanent || (max > 0 && int(s.attempts) >= max) {
			if g.q.dlq != nil {
				dead = append(dead, DeadLetter(g.q.entry(seq).msg, g.q.name, g.name, cause, int(s.attempts), s.first))
				g.ackLocked(seq)
				g.q.deadLettered++
				return
			}
		}
		g.nRetried++
		g.retryLocked(s, now.Add(g.q.opts.Backoff.Delay(int(s.attempts))))
	})
	if err != nil || len(dead) == 0 {
		return err
	}
	return g.q.dlq.Enqueue(ctx, dead)
}

// String helps debugging output.
func (g *memGroup) String() string {
	return strings.Join([]string{g.q.name, g.name}, "/")
}

// EnqueueAsync stores msgs at once; the memory backend has nothing to wait for.
func (q *memQueue) EnqueueAsync(ctx context.Context, msgs []adapters.Message) func() error {
	if err := q.Enqueue(ctx, msgs); err != nil {
		return func() error { return err }
	}
	return enqueued
}

func enqueued() error { return nil }

var _ AsyncEnqueuer = (*memQueue)(nil)
