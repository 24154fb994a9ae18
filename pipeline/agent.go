package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Agent runs a set of pipelines and applies new configurations to it.
type Agent struct {
	opts Options

	// applyMu serialises Apply; mu guards running only, so Runtimes (admin
	// API, metrics scrapes) does not wait while Apply drains a pipeline.
	applyMu sync.Mutex
	mu      sync.Mutex
	running map[string]*Runtime
}

// NewAgent returns an agent that starts pipelines with opts.
func NewAgent(opts Options) *Agent {
	return &Agent{opts: opts, running: map[string]*Runtime{}}
}

// Change says what Apply did.
type Change struct {
	Started, Restarted, Stopped, Unchanged []string
}

// Apply makes the running pipelines match cfg: it stops pipelines that are
// gone, restarts (drain, then start) those whose configuration changed,
// starts new ones and leaves unchanged ones alone. Queues and checkpoints
// are kept across restarts.
func (a *Agent) Apply(ctx context.Context, cfg *Config) (Change, error) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	var ch Change
	want := map[string]*Pipeline{}
	for _, p := range cfg.Pipelines {
		want[p.Name] = p
	}
	var errs []error
	for _, rt := range a.Runtimes() {
		name := rt.Name()
		p, keep := want[name]
		switch {
		case !keep:
			errs = append(errs, rt.Stop(ctx))
			a.setRunning(name, nil)
			ch.Stopped = append(ch.Stopped, name)
		case p.Hash == rt.p.Hash:
			ch.Unchanged = append(ch.Unchanged, name)
			delete(want, name)
		default:
			errs = append(errs, rt.Stop(ctx))
			a.setRunning(name, nil)
			ch.Restarted = append(ch.Restarted, name)
		}
	}
	for _, p := range cfg.Pipelines {
		if _, ok := want[p.Name]; !ok {
			continue
		}
		rt, err := Start(p, a.opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("start pipeline %s: %w", p.Name, err))
			continue
		}
		a.setRunning(p.Name, rt)
		if !containsStr(ch.Restarted, p.Name) {
			ch.Started = append(ch.Started, p.Name)
		}
	}
	return ch, errors.Join(errs...)
}

// setRunning records rt as the running pipeline called name; nil removes it.
func (a *Agent) setRunning(name string, rt *Runtime) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rt == nil {
		delete(a.running, name)
		return
	}
	a.running[name] = rt
}

func containsStr(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

func sortedNames(m map[string]*Runtime) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Runtimes returns the running pipelines, sorted by name.
func (a *Agent) Runtimes() []*Runtime {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*Runtime, 0, len(a.running))
	for _, n := range sortedNames(a.running) {
		out = append(out, a.running[n])
	}
	return out
}

// Runtime returns the running pipeline called name, or nil.
func (a *Agent) Runtime(name string) *Runtime {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running[name]
}

// Wait blocks until every running pipeline has stopped on its own (once
// mode) or ctx is done.
func (a *Agent) Wait(ctx context.Context) error {
	for _, rt := range a.Runtimes() {
		select {
		case <-rt.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Stop drains every pipeline, concurrently.
func (a *Agent) Stop(ctx context.Context) error {
	rts := a.Runtimes()
	errs := make([]error, len(rts))
	var wg sync.WaitGroup
	for i, rt := range rts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = rt.Stop(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
