package disk

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// Slot states of a delivered message.
const (
	sInflight uint8 = iota + 1 // received, not settled
	sReady                     // waiting in ready for redelivery
	sWaiting                   // retry scheduled in retries
	sDying                     // being moved to the dead-letter queue
	sAcked
)

// slot is the state of one seq in a group's window [floor, next).
type slot struct {
	pos      int64
	attempts int32
	epoch    uint16
	state    uint8
	first    int64 // first failure, Unix ns
}

type timeout struct {
	at    int64
	seq   uint64
	epoch uint16
}

type retryEntry struct {
	due int64
	seq uint64
}

type retryHeap []retryEntry

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retryEntry)) }
func (h *retryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// A Delivery's token is its seq and the slot's epoch, so a late settle of
// a delivery that was redelivered meanwhile is recognised and ignored.
// Seqs must stay below 2^48.
const epochBits = 16

func token(seq uint64, epoch uint16) uint64 { return seq<<epochBits | uint64(epoch) }

func untoken(t uint64) (uint64, uint16) { return t >> epochBits, uint16(t) }

// group is a consumer group of a disk queue. Its mutex guards everything
// below it; the log is read through rd.
type group struct {
	q    *queue
	name string

	mu       sync.Mutex
	floor    uint64 // every seq below is acked; win[head] is its slot
	win      []slot
	head     int
	rpos     int64 // log position of the next record not yet in the window
	rd       frameReader
	ready    []uint64
	touts    []timeout
	thead    int
	retries  retryHeap
	inflight int
	nAckedIn int // acked slots in the window
	recAcked []rng
	recRetry map[uint64]retryInfo
	gapAcks  []rng // acks the reader made (skips), not yet persisted
	waitCh   chan struct{}
	waiting  int

	floorSeq atomic.Uint64
	floorPos atomic.Int64
	nAcked   atomic.Int64
	nRetried atomic.Int64
}

func newGroup(q *queue, name string, gs *groupState) *group {
	g := &group{q: q, name: name, floor: gs.floor, waitCh: make(chan struct{}), rd: frameReader{fresh: true}}
	g.recAcked = slices.Clone(gs.acked)
	if len(gs.retries) > 0 {
		g.recRetry = make(map[uint64]retryInfo, len(gs.retries))
		for s, r := range gs.retries {
			g.recRetry[s] = r
		}
	}
	g.rpos = q.log.posOfSeq(g.floor)
	g.floorSeq.Store(g.floor)
	g.floorPos.Store(g.rpos)
	g.advanceLocked()
	return g
}

func (g *group) next() uint64 { return g.floor + uint64(len(g.win)-g.head) }

func (g *group) slotLocked(seq uint64) *slot {
	if seq < g.floor || seq >= g.next() {
		return nil
	}
	return &g.win[g.head+int(seq-g.floor)]
}

// notify wakes the group's waiting receivers.
func (g *group) notify() {
	g.mu.Lock()
	if g.waiting > 0 {
		close(g.waitCh)
		g.waitCh = make(chan struct{})
	}
	g.mu.Unlock()
}

// advanceLocked moves the floor past acked slots.
func (g *group) advanceLocked() {
	moved := false
	for g.head < len(g.win) && g.win[g.head].state == sAcked {
		g.head++
		g.floor++
		g.nAckedIn--
		moved = true
	}
	if g.head == len(g.win) {
		g.win, g.head = g.win[:0], 0
		// acked before a restart and not read since: the cursor moves
		// past them now, the reader skips them
		for len(g.recAcked) > 0 && g.recAcked[0].lo <= g.floor {
			g.floor = max(g.floor, g.recAcked[0].hi)
			g.recAcked = g.recAcked[1:]
			moved = true
		}
	} else if g.head > 1024 && g.head > len(g.win)/2 {
		n := copy(g.win, g.win[g.head:])
		g.win, g.head = g.win[:n], 0
	}
	if moved {
		g.floorSeq.Store(g.floor)
		if g.head < len(g.win) {
			g.floorPos.Store(g.win[g.head].pos)
		} else {
			g.floorPos.Store(g.rpos)
		}
	}
}

// pick is a message chosen for delivery; its frame is decoded outside the
// lock.
type pick struct {
	seq      uint64
	epoch    uint16
	attempts int32
	rec      dataRecord // its payload is in a buffer no later read reuses
}

func (g *group) deliverLocked(seq uint64, s *slot, now int64, vt time.Duration) pick {
	s.attempts++
	s.epoch++
	s.state = sInflight
	g.inflight++
	if len(g.touts)-g.thead > 2*g.inflight+4096 {
		// a long-running delivery holds the front: drop the settled entries
		// behind it, so the list stays proportional to what is in flight
		kept := g.touts[:0]
		for _, t := range g.touts[g.thead:] {
			if x := g.slotLocked(t.seq); x != nil && x.state == sInflight && x.epoch == t.epoch {
				kept = append(kept, t)
			}
		}
		g.touts, g.thead = kept, 0
	}
	g.touts = append(g.touts, timeout{at: now + int64(vt), seq: seq, epoch: s.epoch})
	return pick{seq: seq, epoch: s.epoch, attempts: s.attempts}
}

// expireLocked makes due what timed out or waited out its backoff, and
// returns when the next thing falls due (0: nothing scheduled).
func (g *group) expireLocked(now int64) int64 {
	for g.thead < len(g.touts) {
		t := g.touts[g.thead]
		s := g.slotLocked(t.seq)
		if s == nil || s.state != sInflight || s.epoch != t.epoch {
			g.thead++
			continue
		}
		if t.at > now {
			break
		}
		// visibility timeout: the worker is presumed dead
		s.state = sReady
		g.inflight--
		g.ready = append(g.ready, t.seq)
		g.thead++
	}
	if g.thead == len(g.touts) {
		g.touts, g.thead = g.touts[:0], 0
	} else if g.thead > 4096 && g.thead > len(g.touts)/2 {
		n := copy(g.touts, g.touts[g.thead:])
		g.touts, g.thead = g.touts[:n], 0
	}
	for len(g.retries) > 0 && g.retries[0].due <= now {
		e := heap.Pop(&g.retries).(retryEntry)
		if s := g.slotLocked(e.seq); s != nil && s.state == sWaiting {
			s.state = sReady
			g.ready = append(g.ready, e.seq)
		}
	}
	var wake int64
	if g.thead < len(g.touts) {
		wake = g.touts[g.thead].at
	}
	if len(g.retries) > 0 && (wake == 0 || g.retries[0].due < wake) {
		wake = g.retries[0].due
	}
	return wake
}

// Receive returns up to max deliverable messages: redeliveries first, then
// new ones in log order.
func (g *group) Receive(ctx context.Context, max int) ([]broker.Delivery, error) {
	if max <= 0 {
		max = 1
	}
	q := g.q
	for {
		picks, wake, ch, cerr := g.collect(max)
		if cerr != nil {
			return nil, cerr
		}
		if len(picks) > 0 {
			out, merr := g.materialise(ctx, picks)
			if merr != nil || len(out) > 0 {
				return out, merr
			}
			continue // every pick was meant for another group
		}
		var timer <-chan time.Time
		var t *time.Timer
		if wake > 0 {
			t = time.NewTimer(time.Duration(wake - time.Now().UnixNano()))
			timer = t.C
		}
		var err error
		select {
		case <-ch:
		case <-timer:
		case <-q.closedCh:
			err = errClosedQueue
		case <-q.b.dead:
			err = q.b.Err()
		case <-ctx.Done():
			err = ctx.Err()
		}
		if t != nil {
			t.Stop()
		}
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// collect picks deliverable messages; when there are none it registers the
// caller as waiting and returns the channel to wait on.
func (g *group) collect(max int) ([]pick, int64, chan struct{}, error) {
	q := g.q
	vt := q.options().VisibilityTimeout
	g.mu.Lock()
	defer g.mu.Unlock()
	if isClosed(q.closedCh) {
		return nil, 0, nil, errClosedQueue
	}
	if err := q.b.Err(); err != nil {
		return nil, 0, nil, err
	}
	now := time.Now().UnixNano()
	wake := g.expireLocked(now)
	var picks []pick
	rd := frameReader{fresh: true, chunk: 4096} // redeliveries, apart from the sequential reader
	for len(picks) < max && len(g.ready) > 0 {
		seq := g.ready[0]
		g.ready = g.ready[1:]
		s := g.slotLocked(seq)
		if s == nil || s.state != sReady {
			continue
		}
		rec, _, err := rd.next(q.log, s.pos)
		if err != nil || rec.seq != seq {
			// unreadable: set aside like corrupt data, never a panic
			q.b.logger.Error("disk broker: unreadable record skipped", "queue", q.name, "group", g.name, "seq", seq, "error", err)
			q.quarantined.Add(1)
			s.state = sAcked
			g.nAckedIn++
			g.gapAcks = append(g.gapAcks, rng{seq, seq + 1})
			continue
		}
		p := g.deliverLocked(seq, s, now, vt)
		p.rec = rec
		picks = append(picks, p)
	}
	for len(picks) < max {
		p, ok, err := g.readNewLocked(now, vt)
		if err != nil {
			return nil, 0, nil, err
		}
		if !ok {
			break
		}
		if p.attempts > 0 {
			picks = append(picks, p)
		}
	}
	g.advanceLocked()
	if len(g.gapAcks) > 0 {
		// persisted in the background: losing them only replays skips
		r := &stateReq{ops: []stateOp{{typ: opAck, group: g.name, ranges: g.gapAcks}}}
		g.gapAcks = nil
		_ = q.st.send(r)
		q.freed()
	}
	if len(picks) > 0 {
		return picks, 0, nil, nil
	}
	g.waiting++
	if len(g.retries) > 0 {
		wake = g.expireLocked(now) // the reader may have scheduled retries
	}
	return nil, wake, g.waitCh, nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// readNewLocked takes the next record of the log into the window. It
// returns ok=false at the durable end; a pick with zero attempts is a
// record taken in but not delivered (acked before, or waiting to retry).
func (g *group) readNewLocked(now int64, vt time.Duration) (pick, bool, error) {
	q := g.q
	for {
		rec, n, err := g.rd.next(q.log, g.rpos)
		if err != nil {
			if first, _ := q.log.first(); g.rpos < first {
				g.rpos = first // the segment went away: every group was past it
				continue
			}
			if err := g.resyncLocked(err); err != nil {
				return pick{}, false, err
			}
			continue
		}
		if n == 0 {
			return pick{}, false, nil
		}
		pos := g.rpos
		g.rpos += int64(n)
		next := g.next()
		if rec.seq < next {
			continue // below the cursor: read again after a restart
		}
		if rec.seq > next {
			// a gap (corrupt records quarantined, or a purge): nothing there
			if g.head == len(g.win) {
				g.gapAcks = append(g.gapAcks, rng{next, rec.seq})
				g.floor = rec.seq
				g.floorSeq.Store(g.floor)
			} else {
				for s := next; s < rec.seq; s++ {
					g.win = append(g.win, slot{pos: pos, state: sAcked})
					g.nAckedIn++
				}
				g.gapAcks = append(g.gapAcks, rng{next, rec.seq})
			}
		}
		if g.head == len(g.win) {
			g.floorPos.Store(pos)
		}
		seq := rec.seq
		g.win = append(g.win, slot{pos: pos})
		s := &g.win[len(g.win)-1]
		if g.recoveredAck(seq) {
			s.state = sAcked
			g.nAckedIn++
			return pick{}, true, nil
		}
		if ri, ok := g.recRetry[seq]; ok {
			delete(g.recRetry, seq)
			s.attempts, s.first = ri.attempts, ri.first
			if ri.due > now {
				s.state = sWaiting
				heap.Push(&g.retries, retryEntry{due: ri.due, seq: seq})
				return pick{}, true, nil
			}
		}
		p := g.deliverLocked(seq, s, now, vt)
		p.rec = rec
		return p, true, nil
	}
}

// resyncLocked skips a record that went bad on disk after it was written:
// reading goes on at the next valid record of the segment. Recovery at the
// next open quarantines the bad bytes.
func (g *group) resyncLocked(cause error) error {
	q := g.q
	end := q.log.segmentEnd(g.rpos)
	if end <= g.rpos {
		return cause
	}
	buf := make([]byte, end-g.rpos)
	n, err := q.log.readAt(g.rpos, buf)
	if err != nil {
		return err
	}
	s := scanSegment(buf[:n], g.next(), nil)
	skip := int64(n)
	if len(s.valid) > 0 {
		skip = s.valid[0].from
	}
	q.quarantined.Add(1)
	q.b.logger.Error("disk broker: CORRUPT RECORDS SKIPPED: a durable record failed its checksum on read; the queue goes on after it",
		"queue", q.name, "group", g.name, "position", g.rpos, "bytes", skip, "error", cause)
	g.rpos += skip
	g.rd = frameReader{fresh: true}
	return nil
}

// recoveredAck reports whether seq was acked before a restart.
func (g *group) recoveredAck(seq uint64) bool {
	for len(g.recAcked) > 0 && g.recAcked[0].hi <= seq {
		g.recAcked = g.recAcked[1:]
	}
	return len(g.recAcked) > 0 && g.recAcked[0].lo <= seq
}

// materialise decodes picks into deliveries. A message replayed for
// another group is acked at once and left out.
func (g *group) materialise(ctx context.Context, picks []pick) ([]broker.Delivery, error) {
	out := make([]broker.Delivery, 0, len(picks))
	var skip, bad []uint64
	for _, p := range picks {
		m, err := g.q.decode(p.rec)
		if err != nil {
			g.q.b.logger.Error("disk broker: undecodable message set aside", "queue", g.q.name, "group", g.name, "seq", p.seq, "error", err)
			g.q.quarantined.Add(1)
			bad = append(bad, token(p.seq, p.epoch))
			continue
		}
		if !broker.ForGroup(&m, g.name) {
			skip = append(skip, token(p.seq, p.epoch))
			continue
		}
		m.Attempt = int(p.attempts)
		out = append(out, broker.Delivery{Message: m, Token: token(p.seq, p.epoch)})
	}
	if len(skip)+len(bad) > 0 {
		ds := make([]broker.Delivery, 0, len(skip)+len(bad))
		for _, t := range append(skip, bad...) {
			ds = append(ds, broker.Delivery{Token: t})
		}
		if err := g.Ack(ctx, ds); err != nil {
			return out, err
		}
	}
	return out, nil
}

// settleLocked applies f to the slot of every delivery still in flight
// under its token.
func (g *group) settleLocked(ds []broker.Delivery, f func(seq uint64, s *slot, d *broker.Delivery)) {
	for i := range ds {
		seq, ep := untoken(ds[i].Token)
		s := g.slotLocked(seq)
		if s == nil || s.state != sInflight || s.epoch != ep {
			continue // settled already, or redelivered after its timeout
		}
		g.inflight--
		f(seq, s, &ds[i])
	}
}

func (g *group) Ack(ctx context.Context, ds []broker.Delivery) error {
	if err := g.q.b.Err(); err != nil {
		return err
	}
	seqs := make([]uint64, 0, len(ds))
	g.mu.Lock()
	g.settleLocked(ds, func(seq uint64, s *slot, _ *broker.Delivery) {
		s.state = sAcked
		g.nAckedIn++
		seqs = append(seqs, seq)
	})
	g.advanceLocked()
	g.mu.Unlock()
	if len(seqs) == 0 {
		return nil
	}
	g.nAcked.Add(int64(len(seqs)))
	g.q.freed()
	return g.q.st.persist(stateOp{typ: opAck, group: g.name, ranges: toRanges(seqs)})
}

// toRanges turns seqs into sorted, merged ranges.
func toRanges(seqs []uint64) []rng {
	slices.Sort(seqs)
	out := make([]rng, 0, 4)
	for _, s := range seqs {
		if n := len(out); n > 0 && out[n-1].hi >= s {
			out[n-1].hi = max(out[n-1].hi, s+1)
			continue
		}
		out = append(out, rng{s, s + 1})
	}
	return out
}

func (g *group) Release(ctx context.Context, ds []broker.Delivery) error {
	if err := g.q.b.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	g.settleLocked(ds, func(seq uint64, s *slot, _ *broker.Delivery) {
		s.attempts--
		s.state = sReady
		g.ready = append(g.ready, seq)
	})
	g.mu.Unlock()
	g.notify()
	return nil
}

type dying struct {
	seq uint64
	msg adapters.Message
}

func (g *group) Nack(ctx context.Context, ds []broker.Delivery, cause error) error {
	q := g.q
	if err := q.b.Err(); err != nil {
		return err
	}
	kind := adapters.KindOf(cause)
	opts := q.options()
	now := time.Now()
	var dead []dying
	var ops []stateOp
	g.mu.Lock()
	g.settleLocked(ds, func(seq uint64, s *slot, d *broker.Delivery) {
		if s.first == 0 {
			s.first = now.UnixNano()
		}
		if kind == adapters.Unavailable {
			s.attempts--
			s.state = sReady
			g.ready = append(g.ready, seq)
			return
		}
		if q.dlq != nil && (kind == adapters.Permanent || (opts.MaxAttempts > 0 && int(s.attempts) >= opts.MaxAttempts)) {
			s.state = sDying
			dead = append(dead, dying{seq, broker.DeadLetter(d.Message, q.name, g.name, cause, int(s.attempts), time.Unix(0, s.first))})
			return
		}
		g.nRetried.Add(1)
		due := now.Add(opts.Backoff.Delay(int(s.attempts))).UnixNano()
		s.state = sWaiting
		heap.Push(&g.retries, retryEntry{due: due, seq: seq})
		ops = append(ops, stateOp{typ: opRetry, group: g.name, seq: seq, retry: retryInfo{attempts: s.attempts, first: s.first, due: due}})
	})
	g.mu.Unlock()
	g.notify()
	if len(ops) > 0 {
		if err := q.st.persist(ops...); err != nil {
			return err
		}
	}
	if len(dead) == 0 {
		return nil
	}
	// the dead letter is durable before the original is acked: a crash in
	// between duplicates it, never loses it
	msgs := make([]adapters.Message, len(dead))
	for i, d := range dead {
		msgs[i] = d.msg
	}
	err := q.dlq.Enqueue(ctx, msgs)
	seqs := make([]uint64, 0, len(dead))
	g.mu.Lock()
	for _, d := range dead {
		s := g.slotLocked(d.seq)
		if s == nil || s.state != sDying {
			continue
		}
		if err != nil {
			s.state = sReady
			g.ready = append(g.ready, d.seq)
			continue
		}
		s.state = sAcked
		g.nAckedIn++
		seqs = append(seqs, d.seq)
	}
	g.advanceLocked()
	g.mu.Unlock()
	if err != nil {
		g.notify()
		return err
	}
	q.deadLettered.Add(int64(len(seqs)))
	g.nAcked.Add(int64(len(seqs)))
	q.freed()
	return q.st.persist(stateOp{typ: opAck, group: g.name, ranges: toRanges(seqs)})
}

// purge moves the group to seq end at log position pos, forgetting every
// delivery.
func (g *group) purge(end uint64, pos int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if end <= g.floor {
		return
	}
	g.floor = end
	g.win, g.head = g.win[:0], 0
	g.rpos = pos
	g.rd = frameReader{fresh: true}
	g.ready, g.touts, g.thead, g.retries = nil, nil, 0, nil
	g.inflight, g.nAckedIn = 0, 0
	g.recAcked, g.recRetry, g.gapAcks = nil, nil, nil
	g.floorSeq.Store(end)
	g.floorPos.Store(pos)
}

func (g *group) stats() broker.GroupStats {
	end := g.q.log.nextSeq.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	pending := int64(end) - int64(g.floor) - int64(g.nAckedIn)
	next := g.next()
	for _, r := range g.recAcked { // acked before a restart, not read since
		if lo, hi := max(r.lo, next), min(r.hi, end); hi > lo {
			pending -= int64(hi - lo)
		}
	}
	return broker.GroupStats{Name: g.name, Pending: max(pending, 0), InFlight: int64(g.inflight),
		Acked: g.nAcked.Load(), Retried: g.nRetried.Load()}
}
