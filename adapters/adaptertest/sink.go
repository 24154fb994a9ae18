package adaptertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// SinkCase tells RunSink how to test a sink.
type SinkCase struct {
	// Setup prepares a fresh, empty peer for one test and returns its
	// controls. Release what it creates with t.Cleanup. Required.
	Setup func(t *testing.T) *SinkPeer
	// Timeout bounds each wait of the suite; DefaultTimeout when zero.
	Timeout time.Duration
}

// SinkPeer controls one peer of a sink under test.
type SinkPeer struct {
	// New builds a new, unconnected sink writing to the peer (NewSink does
	// that from a config map). Required.
	New func(t *testing.T) adapters.Sink
	// Received returns the records the peer holds, in any order, duplicates
	// included. Records are matched on their field "n", compared as text, so
	// a CSV file's "3" matches the int64 3 that was sent. Required.
	Received func(t *testing.T) []adapters.Record
	// Message builds message i of a test; it must carry field "n" = i in its
	// Record. Optional: the default has an ID, the Record {n, name, amount}
	// and the same record as JSON in Raw.
	Message func(i int) adapters.Message
	// Reject builds a message the peer refuses (a constraint violation, a
	// record the program rejects): the suite checks that Write fails it with
	// a permanent error and delivers the rest of its batch. Optional.
	Reject func(i int) adapters.Message
	// Restart stops the peer and starts it again. Optional: without it the
	// reconnect test is skipped.
	Restart func(t *testing.T)
	// VisibleAfterClose says the peer shows what was written only after the
	// sink is closed (a file published on close). The suite then closes the
	// sink before calling Received.
	VisibleAfterClose bool
}

// DefaultMessage is the message the suite sends as number i when the case
// does not supply SinkPeer.Message.
func DefaultMessage(i int) adapters.Message {
	rec := adapters.Record{"n": int64(i), "name": fmt.Sprintf("record %d", i), "amount": float64(i) * 1.5}
	raw, _ := json.Marshal(rec)
	return adapters.Message{
		ID:      adapters.NewID("adaptertest", fmt.Sprint(i)),
		Record:  rec,
		Raw:     append(raw, '\n'),
		Meta:    map[string]string{adapters.MetaSource: "adaptertest"},
		Time:    time.Now(),
		Attempt: 1,
	}
}

// RunSink runs the sink conformance tests as subtests of t.
func RunSink(t *testing.T, c SinkCase) {
	if c.Setup == nil {
		t.Fatal("adaptertest: SinkCase.Setup is required")
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	peer := func(t *testing.T) *sinkRun {
		p := c.Setup(t)
		if p == nil || p.New == nil || p.Received == nil {
			t.Fatal("adaptertest: SinkPeer.New and Received are required")
		}
		if p.Message == nil {
			p.Message = DefaultMessage
		}
		return &sinkRun{t: t, timeout: c.Timeout, p: p}
	}
	t.Run("ConnectWrite", func(t *testing.T) {
		r := peer(t)
		s := r.open()
		r.deliver(s, r.messages(0, 10))
		r.closeIfNeeded(s)
		r.expect(0, 10)
		r.close(s)
	})
	t.Run("BatchesAndRecreate", func(t *testing.T) {
		r := peer(t)
		s := r.open()
		for b := 0; b < 3; b++ {
			r.deliver(s, r.messages(b*5, b*5+5))
		}
		r.close(s)
		s = r.open()
		r.deliver(s, r.messages(15, 20))
		r.close(s)
		r.expect(0, 20)
	})
	t.Run("ConcurrentWrites", func(t *testing.T) {
		r := peer(t)
		s := r.open()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := 0; b < 3; b++ {
					lo := w*15 + b*5
					if err := r.tryDeliver(s, r.messages(lo, lo+5)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		r.closeIfNeeded(s)
		r.expect(0, 60)
		r.close(s)
	})
	t.Run("CloseTwice", func(t *testing.T) {
		r := peer(t)
		s := r.p.New(t)
		closeOK(t, "unconnected sink", c.Timeout, s.Close)
		s = r.open()
		r.closed = true
		closeOK(t, "connected sink", c.Timeout, s.Close)
	})
	t.Run("CancelledContext", func(t *testing.T) {
		r := peer(t)
		s := r.p.New(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = returnsWithin(t, "Connect with a cancelled context", c.Timeout, func() error { return s.Connect(ctx) })
		closeOK(t, "sink", c.Timeout, s.Close)

		s = r.open()
		msgs := r.messages(0, 3)
		err := returnsWithin(t, "Write with a cancelled context", c.Timeout, func() error { return s.Write(ctx, msgs) })
		if err == nil {
			// Delivered despite the cancelled context: then it must be there.
			r.closeIfNeeded(s)
			r.expect(0, 3)
		}
		r.close(s)
	})
	t.Run("PermanentFailure", func(t *testing.T) {
		r := peer(t)
		if r.p.Reject == nil {
			t.Skip("the case has no message its peer rejects (SinkPeer.Reject is nil)")
		}
		s := r.open()
		msgs := []adapters.Message{r.p.Message(0), r.p.Reject(1), r.p.Message(2)}
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		err := s.Write(ctx, msgs)
		cancel()
		if err == nil {
			t.Fatal("Write of a batch with a rejected message returned nil")
		}
		var be *adapters.BatchError
		switch {
		case errors.As(err, &be):
			if e, ok := be.Failed[1]; !ok || adapters.KindOf(e) != adapters.Permanent {
				t.Fatalf("the rejected message is not failed permanently: %v (kind %v)", e, adapters.KindOf(e))
			}
			var retry []adapters.Message
			for _, i := range []int{0, 2} {
				if e, failed := be.Failed[i]; failed {
					if adapters.KindOf(e) == adapters.Permanent {
						t.Fatalf("good message %d failed permanently: %v", i, e)
					}
					retry = append(retry, msgs[i])
				}
			}
			r.deliver(s, retry)
		case adapters.KindOf(err) == adapters.Permanent:
			t.Fatalf("the whole batch failed permanently (%v): return a *adapters.BatchError so the good messages are not dead-lettered", err)
		default:
			t.Fatalf("Write failed but not permanently: %v (kind %v)", err, adapters.KindOf(err))
		}
		r.closeIfNeeded(s)
		got := r.received()
		if got["1"] > 0 {
			t.Fatal("the rejected message reached the peer")
		}
		if got["0"] == 0 || got["2"] == 0 {
			t.Fatalf("the good messages of the batch did not arrive: %v", got)
		}
		r.close(s)
	})
	t.Run("ReconnectAfterPeerRestart", func(t *testing.T) {
		r := peer(t)
		if r.p.Restart == nil {
			t.Skip("the case cannot restart its peer (SinkPeer.Restart is nil)")
		}
		s := r.open()
		r.deliver(s, r.messages(0, 5))
		r.p.Restart(t)
		r.deliver(s, r.messages(5, 10))
		r.closeIfNeeded(s)
		r.expect(0, 10)
		r.close(s)
	})
}

type sinkRun struct {
	t       *testing.T
	timeout time.Duration
	p       *SinkPeer
	closed  bool
}

func (r *sinkRun) open() adapters.Sink {
	r.t.Helper()
	s := r.p.New(r.t)
	r.closed = false
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		defer cancel()
		_ = s.Close(ctx)
	})
	connect(r.t, "sink", r.timeout, s.Connect)
	return s
}

func (r *sinkRun) close(s adapters.Sink) {
	r.t.Helper()
	if r.closed {
		return
	}
	r.closed = true
	closeOK(r.t, "sink", r.timeout, s.Close)
}

func (r *sinkRun) closeIfNeeded(s adapters.Sink) {
	r.t.Helper()
	if r.p.VisibleAfterClose {
		r.close(s)
	}
}

func (r *sinkRun) messages(lo, hi int) []adapters.Message {
	out := make([]adapters.Message, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, r.p.Message(i))
	}
	return out
}

func (r *sinkRun) deliver(s adapters.Sink, msgs []adapters.Message) {
	r.t.Helper()
	if err := r.tryDeliver(s, msgs); err != nil {
		r.t.Fatal(err)
	}
}

// tryDeliver writes msgs the way the engine does until every one is
// delivered: failed messages of a BatchError are written again, Connect is
// called again after ErrNotConnected or an Unavailable error, and a
// permanent failure is an error.
func (r *sinkRun) tryDeliver(s adapters.Sink, msgs []adapters.Message) error {
	deadline := time.Now().Add(r.timeout)
	wait := 10 * time.Millisecond
	for attempt := 1; len(msgs) > 0; attempt++ {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d message(s) not delivered after %s", len(msgs), r.timeout)
		}
		for i := range msgs {
			msgs[i].Attempt = attempt
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := s.Write(ctx, msgs)
		cancel()
		if err == nil {
			return nil
		}
		var be *adapters.BatchError
		var failed []adapters.Message
		reconnect := false
		if errors.As(err, &be) {
			for i, e := range be.Failed {
				if adapters.KindOf(e) == adapters.Permanent {
					return fmt.Errorf("message %d failed permanently: %v", i, e)
				}
				reconnect = reconnect || errors.Is(e, adapters.ErrNotConnected) || adapters.KindOf(e) == adapters.Unavailable
				failed = append(failed, msgs[i])
			}
		} else {
			if adapters.KindOf(err) == adapters.Permanent {
				return fmt.Errorf("write failed permanently: %v", err)
			}
			reconnect = errors.Is(err, adapters.ErrNotConnected) || adapters.KindOf(err) == adapters.Unavailable
			failed = msgs
		}
		r.t.Logf("Write attempt %d: %v (retrying %d message(s))", attempt, err, len(failed))
		msgs = failed
		time.Sleep(wait)
		wait = min(2*wait, 500*time.Millisecond)
		if reconnect {
			cctx, ccancel := context.WithDeadline(context.Background(), deadline)
			if cerr := s.Connect(cctx); cerr != nil {
				r.t.Logf("Connect: %v", cerr)
			}
			ccancel()
		}
	}
	return nil
}

// received counts the records the peer holds by their field "n".
func (r *sinkRun) received() map[string]int {
	r.t.Helper()
	got := map[string]int{}
	for _, rec := range r.p.Received(r.t) {
		got[fmt.Sprint(rec["n"])]++
	}
	return got
}

// expect checks that every record from lo to hi-1 reached the peer.
func (r *sinkRun) expect(lo, hi int) {
	r.t.Helper()
	got := r.received()
	var missing []string
	for i := lo; i < hi; i++ {
		if got[fmt.Sprint(i)] == 0 {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	if len(missing) > 0 {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		r.t.Fatalf("records missing at the peer: n = %s (it holds n = %s)", strings.Join(missing, ", "), strings.Join(keys, ", "))
	}
}
