package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// Lease is one agent's right to run a source while several agents run the
// same pipeline on a shared broker: the engine runs a source only while it
// holds the source's lease.
type Lease interface {
	// Lost is closed when the lease is lost: it could not be renewed in
	// time, or another agent holds it now. The engine then stops the source.
	Lost() <-chan struct{}
	// Release gives the lease up, so that another agent may take the source
	// at once. It is idempotent.
	Release(ctx context.Context) error
}

// LeaseFunc acquires the lease of one source of a pipeline. It blocks until
// the lease is held or ctx is done, and is called concurrently for
// different sources.
type LeaseFunc func(ctx context.Context, pipeline, source string) (Lease, error)

// Backend is where the queues, checkpoints and source leases of one
// pipeline live, when they are not the agent's own (Options.Broker, State
// and Lease): a pipeline whose broker block names another broker.
type Backend struct {
	Broker broker.Broker
	// State, when not nil, replaces Options.State for the pipeline.
	State func(pipeline, component string) adapters.State
	// Lease replaces Options.Lease for the pipeline (nil: no leases).
	Lease LeaseFunc
	// Replies, when not nil, replaces Options.Replies for the pipeline (a
	// broker shared by several agents routes replies between them).
	Replies adapters.Replies
}

// standby is the state of a source waiting for its lease.
const standby = "standby"

// sourceSlot holds the current instance of a source that is rebuilt after
// its lease was lost (the old instance's in-memory position may be behind
// the checkpoint the other agent committed since).
type sourceSlot struct {
	mu  sync.Mutex
	src adapters.Source
}

func (s *sourceSlot) get() adapters.Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src
}

func (s *sourceSlot) set(src adapters.Source) {
	s.mu.Lock()
	s.src = src
	s.mu.Unlock()
}

func (s *sourceSlot) close() { _ = s.get().Close(context.Background()) }

// Lag reports the current instance's lag.
func (s *sourceSlot) Lag() adapters.Lag {
	if l, ok := s.get().(adapters.LagReporter); ok {
		return l.Lag()
	}
	return adapters.Lag{Messages: -1, Bytes: -1, Age: -1}
}

// runLeased runs a source while this agent holds its lease: it waits for
// the lease (state "standby"), runs the source until it ends, the pipeline
// stops or the lease is lost, and after a loss builds a fresh instance with
// build and waits for the lease again.
func (r *Runtime) runLeased(sc *SourceConfig, slot *sourceSlot, build func() (adapters.Source, error)) {
	component := "source/" + sc.Name
	log := r.log.With("component", "source", "source", sc.Name)
	for {
		r.setStatus(component, standby)
		l, err := r.opts.Lease(r.sourcesCtx, r.p.Name, sc.Name)
		if err != nil {
			if r.sourcesCtx.Err() == nil {
				log.Error("source lease not acquired; the source does not run", "error", err)
				r.setStatus(component, "error: lease: "+err.Error())
			}
			return
		}
		log.Info("source lease acquired; running the source")
		ctx, cancel := context.WithCancel(r.sourcesCtx)
		go func() {
			select {
			case <-l.Lost():
				cancel()
			case <-ctx.Done():
			}
		}()
		restart := r.runSource(ctx, sc, slot.get())
		cancel()
		lost := restart // rebuilt like after a lost lease
		select {
		case <-l.Lost():
			lost = true
		default:
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := l.Release(rctx); err != nil && !lost {
			log.Warn("source lease not released; another agent takes the source when it expires", "error", err)
		}
		rcancel()
		if !lost || r.sourcesCtx.Err() != nil {
			return
		}
		log.Warn("source lease lost; the source stopped and waits to take it again")
		slot.close()
		src, err := build()
		if err != nil {
			log.Error("source not rebuilt after losing its lease", "error", err)
			r.setStatus(component, "error: "+err.Error())
			return
		}
		slot.set(src)
	}
}

// runRestarting runs a source until it ends or the pipeline stops; when it
// fails to commit its position it is closed and rebuilt with build, after a
// growing pause, and resumes from its last committed position.
func (r *Runtime) runRestarting(sc *SourceConfig, slot *sourceSlot, build func() (adapters.Source, error)) {
	log := r.log.With("component", "source", "source", sc.Name)
	bo := newBackoff(time.Minute)
	for r.runSource(r.sourcesCtx, sc, slot.get()) {
		slot.close()
		log.Warn("source restarting from its last committed position", "in", bo.peek())
		if !bo.wait(r.sourcesCtx) {
			return
		}
		src, err := build()
		if err != nil {
			log.Error("source not rebuilt", "error", err)
			r.setStatus("source/"+sc.Name, "error: "+err.Error())
			return
		}
		slot.set(src)
	}
}
