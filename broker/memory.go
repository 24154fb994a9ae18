package broker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

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
	base    uint64 // seq of entries[0]
	entries []memEntry
	bytes   int64
	groups  map[string]*memGroup
	changed chan struct{} // closed and replaced on every change
	full    bool

	enqueued, deadLettered int64
}

type memPending struct {
	attempts  int
	visibleAt time.Time // when it may be delivered (again)
	inflight  bool
	first     time.Time
}

type memGroup struct {
	q        *memQueue
	name     string
	floor    uint64 // every seq below is acked
	next     uint64 // lowest seq never delivered
	pending  map[uint64]*memPending
	acked    map[uint64]bool
	tokens   uint64
	inflight map[uint64]uint64 // token -> seq
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
	close(q.changed)
	q.changed = make(chan struct{})
}

func msgSize(m *adapters.Message) int64 {
	n := int64(len(m.ID) + len(m.Raw) + 64)
	for k, v := range m.Meta {
		n += int64(len(k) + len(v))
	}
	n += int64(len(m.Record) * 32)
	return n
}

func (q *memQueue) Enqueue(ctx context.Context, msgs []adapters.Message) error {
	var size int64
	for i := range msgs {
		size += msgSize(&msgs[i])
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.opts.MaxBytes > 0 && size > q.opts.MaxBytes {
		return fmt.Errorf("queue %s: %d bytes: %w", q.name, size, ErrTooLarge)
	}
	for {
		if q.closed {
			return ErrClosed
		}
		overBytes := q.opts.MaxBytes > 0 && q.bytes+size > q.opts.MaxBytes && len(q.entries) > 0
		overCount := q.opts.MaxMessages > 0 && int64(len(q.entries)+len(msgs)) > q.opts.MaxMessages && len(q.entries) > 0
		if !overBytes && !overCount {
			break
		}
		q.full = true
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			q.mu.Lock()
			return ctx.Err()
		}
		q.mu.Lock()
	}
	q.full = false
	now := time.Now()
	for i := range msgs {
		m := msgs[i]
		if m.ID == "" {
			m.ID = adapters.NewID(q.name, fmt.Sprint(now.UnixNano(), i, q.base+uint64(len(q.entries))))
		}
		if m.Time.IsZero() {
			m.Time = now
		}
		m.Attempt = 0
		s := msgSize(&m)
		q.entries = append(q.entries, memEntry{msg: m, size: s, at: now})
		q.bytes += s
	}
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
		g = &memGroup{q: q, name: group, floor: q.base, next: q.base, pending: map[uint64]*memPending{}, acked: map[uint64]bool{}, inflight: map[uint64]uint64{}}
		q.groups[group] = g
	}
	return g, nil
}

func (q *memQueue) entry(seq uint64) *memEntry { return &q.entries[seq-q.base] }

func (q *memQueue) end() uint64 { return q.base + uint64(len(q.entries)) }

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
		q.bytes -= q.entries[i].size
	}
	// Re-slice rather than copy: copying the rest on every ack made a long
	// queue quadratic. The dropped entries are cleared so their messages can
	// be collected; append reallocates (copying live entries only) as the
	// array's end is reached.
	clear(q.entries[:n])
	q.entries = q.entries[n:]
	q.base = low
	q.broadcastLocked()
}

func (q *memQueue) Peek(ctx context.Context, n int) ([]adapters.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]adapters.Message, 0, n)
	for i := range q.entries {
		if len(out) >= n {
			break
		}
		out = append(out, q.entries[i].msg)
	}
	return out, nil
}

func (q *memQueue) Purge(ctx context.Context) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := int64(len(q.entries))
	end := q.end()
	q.entries = nil
	q.bytes = 0
	q.base = end
	for _, g := range q.groups {
		g.floor, g.next = end, end
		g.pending = map[uint64]*memPending{}
		g.acked = map[uint64]bool{}
		g.inflight = map[uint64]uint64{}
	}
	q.broadcastLocked()
	return n, nil
}

func (q *memQueue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Name: q.name, Messages: int64(len(q.entries)), Bytes: q.bytes, Full: q.full, Enqueued: q.enqueued, DeadLettered: q.deadLettered}
	if len(q.entries) > 0 {
		s.OldestAge = time.Since(q.entries[0].at)
	}
	names := make([]string, 0, len(q.groups))
	for n := range q.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := q.groups[n]
		s.Groups = append(s.Groups, GroupStats{Name: n, Pending: int64(q.end()-g.floor) - int64(len(g.acked)), InFlight: int64(len(g.inflight)), Acked: g.nAcked, Retried: g.nRetried})
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
	for {
		if q.closed {
			return nil, ErrClosed
		}
		now := time.Now()
		out, wake := g.collectLocked(now, max)
		if len(out) > 0 {
			return out, nil
		}
		ch := q.changed
		q.mu.Unlock()
		var timer <-chan time.Time
		if !wake.IsZero() {
			t := time.NewTimer(time.Until(wake))
			timer = t.C
			defer t.Stop()
		}
		select {
		case <-ch:
		case <-timer:
		case <-ctx.Done():
			q.mu.Lock()
			return nil, ctx.Err()
		}
		q.mu.Lock()
	}
}

// collectLocked gathers due messages: redeliveries first, then new ones. It
// returns the earliest future time something becomes due when nothing is.
func (g *memGroup) collectLocked(now time.Time, max int) ([]Delivery, time.Time) {
	q := g.q
	var out []Delivery
	var wake time.Time
	if g.floor < q.base {
		g.floor = q.base
	}
	if g.next < g.floor {
		g.next = g.floor
	}
	seqs := make([]uint64, 0, len(g.pending))
	for seq := range g.pending {
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, seq := range seqs {
		if len(out) >= max {
			break
		}
		p := g.pending[seq]
		if p.visibleAt.After(now) {
			if wake.IsZero() || p.visibleAt.Before(wake) {
				wake = p.visibleAt
			}
			continue
		}
		if p.inflight {
			// visibility timeout expired: the worker is presumed dead
			for tok, s := range g.inflight {
				if s == seq {
					delete(g.inflight, tok)
				}
			}
			p.inflight = false
		}
		out = append(out, g.deliverLocked(seq, p, now))
	}
	for len(out) < max && g.next < q.end() {
		seq := g.next
		g.next++
		e := q.entry(seq)
		if !ForGroup(&e.msg, g.name) {
			g.ackLocked(seq)
			continue
		}
		p := &memPending{}
		g.pending[seq] = p
		out = append(out, g.deliverLocked(seq, p, now))
	}
	return out, wake
}

func (g *memGroup) deliverLocked(seq uint64, p *memPending, now time.Time) Delivery {
	p.attempts++
	p.inflight = true
	p.visibleAt = now.Add(g.q.opts.VisibilityTimeout)
	g.tokens++
	g.inflight[g.tokens] = seq
	m := g.q.entry(seq).msg
	m.Attempt = p.attempts
	return Delivery{Message: m, Token: g.tokens}
}

func (g *memGroup) ackLocked(seq uint64) {
	delete(g.pending, seq)
	g.nAcked++
	if seq != g.floor {
		g.acked[seq] = true
		return
	}
	g.floor++
	for g.acked[g.floor] {
		delete(g.acked, g.floor)
		g.floor++
	}
	g.q.trimLocked()
}

func (g *memGroup) settle(ds []Delivery, f func(seq uint64, p *memPending)) error {
	q := g.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	for _, d := range ds {
		seq, ok := g.inflight[d.Token]
		if !ok {
			continue // already redelivered after its visibility timeout
		}
		delete(g.inflight, d.Token)
		p := g.pending[seq]
		p.inflight = false
		f(seq, p)
	}
	q.broadcastLocked()
	return nil
}

func (g *memGroup) Ack(ctx context.Context, ds []Delivery) error {
	return g.settle(ds, func(seq uint64, p *memPending) { g.ackLocked(seq) })
}

func (g *memGroup) Release(ctx context.Context, ds []Delivery) error {
	return g.settle(ds, func(seq uint64, p *memPending) {
		p.attempts--
		p.visibleAt = time.Time{}
	})
}

func (g *memGroup) Nack(ctx context.Context, ds []Delivery, cause error) error {
	kind := adapters.KindOf(cause)
	var dead []adapters.Message
	now := time.Now()
	err := g.settle(ds, func(seq uint64, p *memPending) {
		if p.first.IsZero() {
			p.first = now
		}
		if kind == adapters.Unavailable {
			p.attempts--
			p.visibleAt = time.Time{}
			return
		}
		max := g.q.opts.MaxAttempts
		if kind == adapters.Permanent || (max > 0 && p.attempts >= max) {
			if g.q.dlq != nil {
				dead = append(dead, DeadLetter(g.q.entry(seq).msg, g.q.name, g.name, cause, p.attempts, p.first))
				g.ackLocked(seq)
				g.q.deadLettered++
				return
			}
		}
		g.nRetried++
		p.visibleAt = now.Add(g.q.opts.Backoff.Delay(p.attempts))
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
	err := q.Enqueue(ctx, msgs)
	return func() error { return err }
}

var _ AsyncEnqueuer = (*memQueue)(nil)
