package testkit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/pipeline"
)

// Load validates a pipeline config given as YAML text and fails the test on
// any problem. It registers the kit adapters first.
func Load(t testing.TB, yaml string) *pipeline.Config {
	t.Helper()
	Register()
	cfg, err := pipeline.LoadBytes("test.yaml", []byte(yaml), pipeline.LoadOptions{Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return cfg
}

// Agent starts cfg on a fresh memory broker and in-memory checkpoint store,
// with options edited by edit (may be nil). The agent and broker are stopped
// when the test ends.
func Agent(t testing.TB, cfg *pipeline.Config, edit func(*pipeline.Options)) (*pipeline.Agent, broker.Broker) {
	t.Helper()
	Register()
	b := broker.NewMemory()
	var statesMu sync.Mutex
	states := map[string]adapters.State{}
	opts := pipeline.Options{Broker: b, Memory: b, DrainTimeout: 5 * time.Second,
		State: func(p, c string) adapters.State {
			// one store per component, kept across restarts
			statesMu.Lock()
			defer statesMu.Unlock()
			k := p + "/" + c
			if states[k] == nil {
				states[k] = statestore.Memory()
			}
			return states[k]
		}}
	opts.OutageBackoff.Initial, opts.OutageBackoff.Max = 10*time.Millisecond, 50*time.Millisecond
	if edit != nil {
		edit(&opts)
	}
	a := pipeline.NewAgent(opts)
	if cfg != nil {
		if _, err := a.Apply(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		Unblock()
		_ = a.Stop(context.Background())
		_ = b.Close()
		Reset()
	})
	return a, b
}

// Eventually polls f every 10ms until it is true, failing the test after
// 20 seconds.
func Eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
