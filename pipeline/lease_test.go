package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/statestore"
)

// fakeLeases grants a lease each time grant is called; the test takes it
// away with lose.
type fakeLeases struct {
	grants   chan struct{}
	mu       sync.Mutex
	held     *fakeLease
	acquired int
	released int
}

type fakeLease struct {
	f        *fakeLeases
	lost     chan struct{}
	loseOnce sync.Once
	relOnce  sync.Once
}

func (l *fakeLease) Lost() <-chan struct{} { return l.lost }

func (l *fakeLease) Release(ctx context.Context) error {
	l.relOnce.Do(func() {
		l.f.mu.Lock()
		l.f.released++
		l.f.mu.Unlock()
	})
	return nil
}

func (f *fakeLeases) acquire(ctx context.Context, pipeline, source string) (Lease, error) {
	select {
	case <-f.grants:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l := &fakeLease{f: f, lost: make(chan struct{})}
	f.mu.Lock()
	f.held = l
	f.acquired++
	f.mu.Unlock()
	return l, nil
}

func (f *fakeLeases) lose() {
	f.mu.Lock()
	l := f.held
	f.mu.Unlock()
	l.loseOnce.Do(func() { close(l.lost) })
}

func (f *fakeLeases) counts() (acquired, released int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acquired, f.released
}

func TestSourceRunsOnlyWhileLeaseHeld(t *testing.T) {
	cfg := mustLoad(t, `
pipelines:
  leased:
    sources:
      - {name: src, type: test_source, batch: 2, records: [{n: 0}, {n: 1}, {n: 2}, {n: 3}]}
    queues: {q: {}}
    sinks:
      - {name: out, type: test_sink}
`)
	b := broker.NewMemory()
	defer b.Close()
	st := statestore.Memory()
	f := &fakeLeases{grants: make(chan struct{}, 1)}
	var mu sync.Mutex
	var asked []string
	lease := func(ctx context.Context, p, s string) (Lease, error) {
		mu.Lock()
		asked = append(asked, p+"/"+s)
		mu.Unlock()
		return f.acquire(ctx, p, s)
	}
	a := NewAgent(Options{Broker: b, Memory: b, DrainTimeout: 5 * time.Second, Lease: lease,
		State: func(p, c string) adapters.State { return st }})
	if _, err := a.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	rt := a.Runtime("leased")
	eventually(t, "standby", func() bool { return rt.Status()["source/src"] == "standby" })
	if nr := rt.NotReady(); len(nr) != 0 {
		t.Fatalf("a source on standby counts as not ready: %v", nr)
	}
	time.Sleep(50 * time.Millisecond)
	first := getSource("leased/src")
	if n := len(getSink("leased/out").messages()); n != 0 || first.ackedCount() != 0 {
		t.Fatalf("the source ran without its lease: %d delivered", n)
	}

	f.grants <- struct{}{}
	eventually(t, "4 records", func() bool { return len(getSink("leased/out").messages()) == 4 })

	// losing the lease stops the source, closes it and waits for the lease
	// again with a fresh instance
	f.lose()
	eventually(t, "standby after the loss", func() bool {
		return rt.Status()["source/src"] == "standby" && getSource("leased/src") != first
	})
	select {
	case <-first.done:
	default:
		t.Fatal("the source that lost its lease was not closed")
	}
	f.grants <- struct{}{}
	// the new instance keeps no position here, so it emits its records again
	eventually(t, "8 records", func() bool { return len(getSink("leased/out").messages()) == 8 })

	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	acquired, released := f.counts()
	if acquired != 2 || released != 2 {
		t.Fatalf("leases acquired %d, released %d; want 2 and 2", acquired, released)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) < 2 || asked[0] != "leased/src" {
		t.Fatalf("lease asked for %v", asked)
	}
}

func TestBackendReplacesBrokerStateAndLease(t *testing.T) {
	cfg := mustLoad(t, `
pipelines:
  other:
    sources:
      - {name: src, type: test_source, records: [{n: 0}]}
    queues: {q: {}}
    sinks:
      - {name: out, type: test_sink}
`)
	agentB, own := broker.NewMemory(), broker.NewMemory()
	defer agentB.Close()
	defer own.Close()
	st := statestore.Memory()
	var states []string
	var smu sync.Mutex
	a := NewAgent(Options{Broker: agentB, Memory: agentB, DrainTimeout: 5 * time.Second,
		State: func(p, c string) adapters.State { t.Error("the agent's state store was used"); return st },
		Backend: func(p *Pipeline) (*Backend, error) {
			return &Backend{Broker: own, State: func(p, c string) adapters.State {
				smu.Lock()
				states = append(states, p+"/"+c)
				smu.Unlock()
				return st
			}}, nil
		}})
	if _, err := a.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	eventually(t, "delivery", func() bool { return len(getSink("other/out").messages()) == 1 })
	if names, _ := own.List(); len(names) == 0 {
		t.Fatal("the pipeline's own broker holds no queue")
	}
	if names, _ := agentB.List(); len(names) != 0 {
		t.Fatalf("the agent's broker was used: %v", names)
	}
	smu.Lock()
	defer smu.Unlock()
	if len(states) != 2 {
		t.Fatalf("backend state asked for %v", states)
	}
}
