package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// SourceCase tells RunSource how to test a source.
type SourceCase struct {
	// Setup prepares a fresh, empty peer for one test (a directory, a table,
	// a server) and returns its controls. Release what it creates with
	// t.Cleanup. Required.
	Setup func(t *testing.T) *SourcePeer
	// Timeout bounds each wait of the suite; DefaultTimeout when zero.
	Timeout time.Duration
}

// SourcePeer controls one peer of a source under test.
type SourcePeer struct {
	// New builds a new, unconnected source reading the peer, with state as
	// Resources.State (NewSource does that from a config map). The suite
	// calls it again with the same state to play a restart of the agent. The
	// source must wait for new input rather than end (Resources.Once false).
	// Required.
	New func(t *testing.T, state adapters.State) adapters.Source
	// Produce makes n more records available in the peer. Required.
	Produce func(t *testing.T, n int)
	// Restart stops the peer and starts it again (a server restart, a killed
	// child program). Optional: without it the reconnect test is skipped.
	Restart func(t *testing.T)
}

// RunSource runs the source conformance tests as subtests of t.
func RunSource(t *testing.T, c SourceCase) {
	if c.Setup == nil {
		t.Fatal("adaptertest: SourceCase.Setup is required")
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	peer := func(t *testing.T) *SourcePeer {
		p := c.Setup(t)
		if p == nil || p.New == nil || p.Produce == nil {
			t.Fatal("adaptertest: SourcePeer.New and Produce are required")
		}
		return p
	}
	t.Run("ConnectReadAck", func(t *testing.T) {
		p := peer(t)
		p.Produce(t, 5)
		r := newSourceRun(t, c.Timeout, p, MemoryState())
		got := r.collect(5, nil, false)
		for id, m := range got {
			if m.Record == nil && m.Raw == nil && m.Err == nil {
				t.Errorf("message %s has neither Record nor Raw", id)
			}
		}
		r.close()
	})
	t.Run("AckedNotEmittedAgain", func(t *testing.T) {
		p := peer(t)
		p.Produce(t, 4)
		state := MemoryState()
		r := newSourceRun(t, c.Timeout, p, state)
		first := r.collect(4, nil, false)
		r.close()
		r = newSourceRun(t, c.Timeout, p, state)
		p.Produce(t, 1)
		r.collect(1, first, true)
		r.close()
	})
	t.Run("NackedEmittedAgainWithSameIDs", func(t *testing.T) {
		p := peer(t)
		p.Produce(t, 3)
		state := MemoryState()
		r := newSourceRun(t, c.Timeout, p, state)
		r.nack = errors.New("adaptertest: enqueue failed")
		first := r.readBatch()
		r.close()
		r = newSourceRun(t, c.Timeout, p, state)
		again := r.collectIDs(first)
		for id := range first {
			if _, ok := again[id]; !ok {
				t.Fatalf("message %s was nacked but not emitted again with the same ID (got %v)", id, keys(again))
			}
		}
		r.close()
	})
	t.Run("CloseTwice", func(t *testing.T) {
		p := peer(t)
		src := p.New(t, MemoryState())
		closeOK(t, "unconnected source", c.Timeout, src.Close)
		r := newSourceRun(t, c.Timeout, p, MemoryState())
		closeOK(t, "connected source", c.Timeout, r.src.Close)
	})
	t.Run("CloseUnblocksRead", func(t *testing.T) {
		p := peer(t)
		r := newSourceRun(t, c.Timeout, p, MemoryState())
		readDone := make(chan error, 1)
		go func() {
			_, err := r.src.Read(context.Background())
			readDone <- err
		}()
		time.Sleep(20 * time.Millisecond) // let Read block; Close must unblock it either way
		closeOK(t, "source", c.Timeout, r.src.Close)
		select {
		case <-readDone:
		case <-time.After(c.Timeout):
			t.Fatalf("Read still blocked %s after Close", c.Timeout)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		p := peer(t)
		src := p.New(t, MemoryState())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = returnsWithin(t, "Connect with a cancelled context", c.Timeout, func() error { return src.Connect(ctx) })
		closeOK(t, "source", c.Timeout, src.Close)

		r := newSourceRun(t, c.Timeout, p, MemoryState())
		err := returnsWithin(t, "Read with a cancelled context", c.Timeout, func() error {
			_, err := r.src.Read(ctx)
			return err
		})
		if err == nil {
			t.Fatal("Read with a cancelled context and no input returned no error")
		}
		ctx2, cancel2 := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel2)
		err = returnsWithin(t, "Read whose context is cancelled while it waits", c.Timeout, func() error {
			_, err := r.src.Read(ctx2)
			return err
		})
		if err == nil {
			t.Fatal("Read whose context was cancelled returned no error")
		}
		r.close()
	})
	t.Run("ReconnectAfterPeerRestart", func(t *testing.T) {
		p := peer(t)
		if p.Restart == nil {
			t.Skip("the case cannot restart its peer (SourcePeer.Restart is nil)")
		}
		p.Produce(t, 2)
		r := newSourceRun(t, c.Timeout, p, MemoryState())
		first := r.collect(2, nil, false)
		p.Restart(t)
		p.Produce(t, 2)
		r.collect(2, first, false)
		r.close()
	})
}

// sourceRun drives one source like the engine: one goroutine, batches acked
// in read order, Connect again after ErrNotConnected.
type sourceRun struct {
	t       *testing.T
	timeout time.Duration
	p       *SourcePeer
	src     adapters.Source
	nack    error // when set, batches are acked with it
	closed  bool
}

func newSourceRun(t *testing.T, timeout time.Duration, p *SourcePeer, state adapters.State) *sourceRun {
	t.Helper()
	r := &sourceRun{t: t, timeout: timeout, p: p, src: p.New(t, state)}
	t.Cleanup(func() {
		if !r.closed {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_ = r.src.Close(ctx)
		}
	})
	connect(t, "source", timeout, r.src.Connect)
	return r
}

func (r *sourceRun) close() {
	r.t.Helper()
	r.closed = true
	closeOK(r.t, "source", r.timeout, r.src.Close)
}

// collect reads until n messages with IDs not in old arrived, and returns
// them by ID. With forbid, a message of old fails the test (it was acked);
// otherwise it is skipped (at least once allows it after a restart). Without
// old, an ID seen twice fails the test, unless batches are nacked (a source
// may emit a nacked message again at once).
func (r *sourceRun) collect(n int, old map[string]adapters.Message, forbid bool) map[string]adapters.Message {
	r.t.Helper()
	got := map[string]adapters.Message{}
	r.read(fmt.Sprintf("%d new message(s)", n), func(m adapters.Message) {
		if _, seen := old[m.ID]; seen {
			if forbid {
				r.t.Fatalf("message %s was acked, yet emitted again by a source re-created with the same state", m.ID)
			}
			return
		}
		if _, dup := got[m.ID]; dup && old == nil && r.nack == nil {
			r.t.Fatalf("message ID %s emitted twice in one run without a nack or restart", m.ID)
		}
		got[m.ID] = m
	}, func() bool { return len(got) >= n })
	return got
}

// readBatch reads the first batch with messages, acks it (with r.nack) and
// returns its messages by ID.
func (r *sourceRun) readBatch() map[string]adapters.Message {
	r.t.Helper()
	got := map[string]adapters.Message{}
	r.read("a batch", func(m adapters.Message) { got[m.ID] = m }, func() bool { return len(got) > 0 })
	return got
}

// collectIDs reads until every ID of want arrived.
func (r *sourceRun) collectIDs(want map[string]adapters.Message) map[string]adapters.Message {
	r.t.Helper()
	got := map[string]adapters.Message{}
	r.read(fmt.Sprintf("the %d nacked message(s) again", len(want)), func(m adapters.Message) { got[m.ID] = m }, func() bool {
		for id := range want {
			if _, ok := got[id]; !ok {
				return false
			}
		}
		return true
	})
	return got
}

// read calls Read, passing every message to each and acking every batch,
// until done returns true after a batch.
func (r *sourceRun) read(what string, each func(adapters.Message), done func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(r.timeout)
	for {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out after %s waiting for %s", r.timeout, what)
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		b, err := r.src.Read(ctx)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, adapters.ErrNotConnected):
			connect(r.t, "source", time.Until(deadline), r.src.Connect)
			continue
		case errors.Is(err, adapters.ErrEndOfInput):
			r.t.Fatalf("Read returned ErrEndOfInput while waiting for %s; the suite needs a source that waits for input", what)
		case time.Now().After(deadline):
			r.t.Fatalf("timed out after %s waiting for %s: %v", r.timeout, what, err)
		default:
			r.t.Logf("Read: %v (retrying, as the engine does)", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for _, m := range b.Messages {
			if m.ID == "" {
				r.t.Fatalf("message without an ID: %+v", m)
			}
			each(m)
		}
		if b.Ack != nil {
			actx, acancel := context.WithTimeout(context.Background(), r.timeout)
			aerr := b.Ack(actx, r.nack)
			acancel()
			if aerr != nil {
				r.t.Fatalf("Ack: %v", aerr)
			}
		}
		if done() {
			return
		}
	}
}

func keys(m map[string]adapters.Message) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
