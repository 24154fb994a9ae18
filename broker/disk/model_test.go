package disk

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// The model-based test runs random sequences of operations against the disk
// queue and against a plain model of its contract, and compares them after
// every step.

type mstate int

const (
	mAvail mstate = iota
	mInflight
	mAcked
	mDead
)

type mmsg struct {
	id        string
	state     mstate
	attempts  int // deliveries charged so far
	persisted int // attempts as of the last transient nack: what a reopen keeps
	deadline  time.Time
	token     uint64
}

type model struct {
	msgs []*mmsg
	byID map[string]*mmsg
	dead int
}

const (
	modelVT  = 250 * time.Millisecond
	modelMax = 3
)

var modelOpts = broker.Options{
	MaxAttempts:       modelMax,
	Backoff:           broker.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, Multiplier: 2},
	VisibilityTimeout: modelVT,
	SegmentBytes:      1024,
}

func (m *model) inflight() []*mmsg {
	var out []*mmsg
	for _, x := range m.msgs {
		if x.state == mInflight {
			out = append(out, x)
		}
	}
	return out
}

// settleTimeouts waits out deliveries whose visibility timeout is about to
// pass, so that whether they expired is certain, and expires them.
func (m *model) settleTimeouts() {
	now := time.Now()
	var wait time.Duration
	for _, x := range m.inflight() {
		if d := x.deadline.Sub(now); d < 60*time.Millisecond {
			wait = max(wait, d+20*time.Millisecond)
		}
	}
	if wait > 0 {
		time.Sleep(wait)
	}
	now = time.Now()
	for _, x := range m.inflight() {
		if !x.deadline.After(now) {
			x.state = mAvail
		}
	}
}

func (m *model) deliverable() map[string]bool {
	out := map[string]bool{}
	for _, x := range m.msgs {
		if x.state == mAvail {
			out[x.id] = true
		}
	}
	return out
}

func TestModel(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	steps := 150
	if testing.Short() {
		seeds, steps = seeds[:1], 80
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			runModel(t, seed, steps)
		})
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	ctx := context.Background()
	open := func() (*Broker, broker.Queue, broker.Consumer) {
		b, err := Open(dir, Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		q, err := b.Open("m/q", modelOpts)
		if err != nil {
			t.Fatal(err)
		}
		c, err := q.Consumer("g")
		if err != nil {
			t.Fatal(err)
		}
		return b, q, c
	}
	b, q, c := open()
	defer func() { b.Close() }()
	m := &model{byID: map[string]*mmsg{}}
	next := 0
	pickInflight := func() []*mmsg {
		var out []*mmsg
		for _, x := range m.inflight() {
			if time.Until(x.deadline) > 60*time.Millisecond && r.IntN(2) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	deliveries := func(xs []*mmsg) []broker.Delivery {
		ds := make([]broker.Delivery, len(xs))
		for i, x := range xs {
			ds[i] = broker.Delivery{Message: adapters.Message{ID: x.id}, Token: x.token}
		}
		return ds
	}
	var trace []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("after %v:\n"+format, append([]any{trace}, args...)...)
	}
	for step := 0; step < steps; step++ {
		switch op := r.IntN(10); op {
		case 0, 1: // enqueue
			n := 1 + r.IntN(3)
			batch := make([]adapters.Message, n)
			for i := range batch {
				id := "x" + strconv.Itoa(next)
				next++
				batch[i] = adapters.Message{ID: id, Raw: []byte(id)}
				x := &mmsg{id: id}
				m.msgs = append(m.msgs, x)
				m.byID[id] = x
			}
			if err := q.Enqueue(ctx, batch); err != nil {
				fail("enqueue: %v", err)
			}
			trace = append(trace, fmt.Sprint("enqueue ", n))
		case 2, 3: // receive
			time.Sleep(3 * time.Millisecond) // backoffs of 1-2ms pass
			m.settleTimeouts()
			want := m.deliverable()
			max := 1 + r.IntN(4)
			wait := 2 * time.Second
			if len(want) == 0 {
				wait = 30 * time.Millisecond
			}
			rctx, cancel := context.WithTimeout(ctx, wait)
			ds, err := c.Receive(rctx, max)
			cancel()
			trace = append(trace, fmt.Sprint("receive ", max))
			if len(want) == 0 {
				if !errors.Is(err, context.DeadlineExceeded) {
					fail("nothing deliverable, got %v, %v", ids(ds), err)
				}
				continue
			}
			if err != nil || len(ds) == 0 || len(ds) > max {
				fail("want up to %d of %v, got %v, %v", max, want, ids(ds), err)
			}
			now := time.Now()
			for _, d := range ds {
				x := m.byID[d.Message.ID]
				if x == nil || !want[x.id] {
					fail("delivered %s, deliverable are %v", d.Message.ID, want)
				}
				x.attempts++
				if d.Message.Attempt != x.attempts {
					fail("%s: want attempt %d, got %d", x.id, x.attempts, d.Message.Attempt)
				}
				x.state, x.token, x.deadline = mInflight, d.Token, now.Add(modelVT)
			}
		case 4, 5: // ack
			xs := pickInflight()
			if err := c.Ack(ctx, deliveries(xs)); err != nil {
				fail("ack: %v", err)
			}
			for _, x := range xs {
				x.state = mAcked
			}
			trace = append(trace, fmt.Sprint("ack ", len(xs)))
		case 6: // nack
			xs := pickInflight()
			kind := r.IntN(3)
			var cause error = errors.New("transient")
			switch kind {
			case 1:
				cause = adapters.PermanentError(cause)
			case 2:
				cause = adapters.UnavailableError(cause)
			}
			if err := c.Nack(ctx, deliveries(xs), cause); err != nil {
				fail("nack: %v", err)
			}
			for _, x := range xs {
				switch {
				case kind == 2:
					x.state = mAvail
					x.attempts--
				case kind == 1 || x.attempts >= modelMax:
					x.state = mDead
					m.dead++
				default:
					x.state = mAvail
					x.persisted = x.attempts
				}
			}
			trace = append(trace, fmt.Sprint("nack ", adapters.KindOf(cause), " ", len(xs)))
		case 7: // release
			xs := pickInflight()
			if err := c.Release(ctx, deliveries(xs)); err != nil {
				fail("release: %v", err)
			}
			for _, x := range xs {
				x.state = mAvail
				x.attempts--
			}
			trace = append(trace, fmt.Sprint("release ", len(xs)))
		case 8: // a worker dies: its deliveries time out
			if len(m.inflight()) == 0 || r.IntN(3) > 0 {
				continue
			}
			time.Sleep(modelVT)
			trace = append(trace, "timeout")
		case 9: // restart
			if r.IntN(2) > 0 {
				continue
			}
			if err := b.Close(); err != nil {
				fail("close: %v", err)
			}
			b, q, c = open()
			for _, x := range m.msgs {
				if x.state == mInflight || x.state == mAvail {
					x.state = mAvail
					x.attempts = x.persisted
				}
			}
			trace = append(trace, "reopen")
		}
		// compare the observable state
		m.settleTimeouts()
		live := 0
		var first string
		for _, x := range m.msgs {
			if x.state != mAcked && x.state != mDead {
				live++
				if first == "" {
					first = x.id
				}
			}
		}
		s := q.Stats()
		if len(s.Groups) != 1 || s.Groups[0].Pending != int64(live) {
			fail("want %d pending, stats %+v", live, s)
		}
		if d := q.DeadLetters().Stats().Messages; d != int64(m.dead) {
			fail("want %d dead letters, got %d", m.dead, d)
		}
		if first != "" {
			p, err := q.Peek(ctx, 1)
			if err != nil || len(p) != 1 || p[0].ID != first {
				fail("peek: want %s, got %v, %v", first, p, err)
			}
		}
	}
	if next < 25 {
		t.Fatalf("only %d messages enqueued", next)
	}
}

func ids(ds []broker.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Message.ID
	}
	slices.Sort(out)
	return out
}
