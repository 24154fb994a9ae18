package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/transform"
)

// Options configure how pipelines run.
type Options struct {
	// Broker holds the queues of pipelines that do not ask for the memory
	// broker. It is required.
	Broker broker.Broker
	// Memory holds the queues of pipelines with `broker: {type: memory}`;
	// it is created on first use when nil.
	Memory broker.Broker
	// State returns the durable state store of one adapter instance.
	State func(pipeline, component string) adapters.State
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Once makes sources stop at the end of what is available now; the
	// pipeline then stops once its queues are empty.
	Once bool
	// DrainTimeout bounds how long Stop waits for in-flight work.
	DrainTimeout time.Duration
	// MaxInflight is how many source batches may wait for their enqueue to
	// become durable at once, per source.
	MaxInflight int
	// OutageBackoff is how a sink probes a target that is unavailable: the
	// first probe after Initial, doubling up to Max (default 1s to 1m).
	OutageBackoff struct{ Initial, Max time.Duration }
	// Hooks observe the flow, for metrics. Nil hooks are skipped.
	Hooks Hooks
	// Lease, when set, makes every source run only while this agent holds
	// its lease (agents sharing a broker run each source once); a source
	// waiting for it is in state "standby". Not used with Once.
	Lease LeaseFunc
	// Backend, when set, is called at Start for every pipeline; a non-nil
	// result replaces Broker, State and Lease for that pipeline (a pipeline
	// whose broker block names a broker other than the agent's).
	Backend func(p *Pipeline) (*Backend, error)
	// Replies routes the answers of request/reply pipelines from sinks to
	// the sources whose callers wait (adapters.MetaReplyTo). Nil gives each
	// pipeline its own in-process registry (NewLocalReplies); a broker
	// shared by several agents supplies one that routes between them.
	Replies adapters.Replies
}

// Hooks are callbacks the engine makes as messages flow. They are called
// concurrently and must be cheap.
type Hooks struct {
	// SourceRead is called per source batch with the messages read.
	SourceRead func(pipeline, source string, msgs int)
	// SourceBytes is called per source batch with the payload bytes read
	// (raw bytes only; records are not measured), when there are any.
	SourceBytes func(pipeline, source string, bytes int64)
	// Dropped counts messages a filter dropped.
	Dropped func(pipeline string, n int)
	// Rejected counts messages sent to the pipeline's dead-letter queue, by
	// reason ("decode", "stage", "route").
	Rejected func(pipeline, reason string, n int)
	// Enqueued counts messages durably enqueued into a queue.
	Enqueued func(pipeline, queue string, n int)
	// SinkWrite reports one Write: how many succeeded, failed by kind, and
	// how long it took.
	SinkWrite func(pipeline, sink string, ok int, failed map[adapters.Kind]int, d time.Duration)
	// Delivered reports end-to-end latency (source read to sink ack) of
	// delivered messages.
	Delivered func(pipeline, sink string, latencies []time.Duration)
	// Nacked reports a failed Write's messages: how many will be retried and
	// how many were moved to the queue's dead-letter queue.
	Nacked func(pipeline, sink string, retried, deadLettered int)
	// SinkState reports sink health changes: "connected", "unavailable".
	SinkState func(pipeline, sink, state string, err error)
	// SourceState reports source health changes.
	SourceState func(pipeline, source, state string, err error)
}

// Counters are a pipeline's running totals.
type Counters struct {
	Read         atomic.Int64 // messages read by sources
	Enqueued     atomic.Int64 // messages durably enqueued (counted once per queue)
	Dropped      atomic.Int64 // dropped by filters
	Rejected     atomic.Int64 // sent to the pipeline's dead-letter queue
	Written      atomic.Int64 // written by sinks and acked
	Retried      atomic.Int64 // nacked for retry
	DeadLettered atomic.Int64 // moved to a queue's dead-letter queue by a sink failure
}

// Snapshot is a copy of Counters.
type Snapshot struct {
	Read, Enqueued, Dropped, Rejected, Written, Retried, DeadLettered int64
}

func (c *Counters) snapshot() Snapshot {
	return Snapshot{c.Read.Load(), c.Enqueued.Load(), c.Dropped.Load(), c.Rejected.Load(), c.Written.Load(), c.Retried.Load(), c.DeadLettered.Load()}
}

// Runtime is a running pipeline.
type Runtime struct {
	p    *Pipeline
	opts Options
	log  *slog.Logger

	queues  map[string]broker.Queue // by pipeline-local name: "orders", "orders.dlq", "dlq"
	rejectQ broker.Queue
	// lookups are the pipeline's lookup tables, or nil.
	lookups *transform.Lookups

	counters Counters

	sourcesCtx    context.Context
	stopSources   context.CancelFunc
	sinksCtx      context.Context
	stopSinks     context.CancelFunc
	hardCtx       context.Context
	hardStop      context.CancelFunc
	sourcesWG     sync.WaitGroup
	sinksWG       sync.WaitGroup
	sourcesActive atomic.Int32
	done          chan struct{}
	stopOnce      sync.Once

	mu          sync.Mutex
	status      map[string]string // component -> state
	paused      atomic.Bool
	pauseCh     chan struct{}
	sourceClose []func()
	sinkClose   []func()
	lag         map[string]adapters.LagReporter // sources that report their lag
	started     time.Time

	replies adapters.Replies // request/reply routing
	readers map[string]int   // sinks per queue, for reply counts
	full    *fullCache       // Resources.Backpressure
}

// Queue name on the broker of a pipeline-local queue name.
func brokerName(pipeline, queue string) string { return pipeline + "/" + queue }

// Start opens a pipeline's queues, builds its adapters and starts them. It
// returns once everything is started; Connect failures are retried in the
// background and reported through Status.
func Start(p *Pipeline, opts Options) (*Runtime, error) {
	if opts.Broker == nil {
		return nil, errors.New("pipeline: Options.Broker is nil")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 8
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.OutageBackoff.Initial <= 0 {
		opts.OutageBackoff.Initial = time.Second
	}
	if opts.OutageBackoff.Max < opts.OutageBackoff.Initial {
		opts.OutageBackoff.Max = max(time.Minute, opts.OutageBackoff.Initial)
	}
	if opts.Backend != nil {
		be, err := opts.Backend(p)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: broker: %w", p.Name, err)
		}
		if be != nil {
			opts.Broker, opts.Lease = be.Broker, be.Lease
			if be.State != nil {
				opts.State = be.State
			}
			if be.Replies != nil {
				opts.Replies = be.Replies
			}
		}
	}
	if opts.State == nil {
		return nil, errors.New("pipeline: Options.State is nil")
	}
	r := &Runtime{p: p, opts: opts, log: opts.Logger.With("pipeline", p.Name), queues: map[string]broker.Queue{},
		done: make(chan struct{}), status: map[string]string{}, pauseCh: make(chan struct{}),
		lag: map[string]adapters.LagReporter{}, started: time.Now()}
	b := opts.Broker
	if p.Broker == "memory" {
		if opts.Memory == nil {
			return nil, errors.New("pipeline: memory broker requested but Options.Memory is nil")
		}
		b = opts.Memory
	}
	if err := r.openQueues(b); err != nil {
		return nil, err
	}
	r.replies = opts.Replies
	if r.replies == nil {
		r.replies = NewLocalReplies()
	}
	r.readers = countReaders(p)
	r.full = &fullCache{}
	for _, qc := range p.Queues {
		r.full.queues = append(r.full.queues, r.queues[qc.Name])
	}
	if len(p.Lookups) > 0 {
		l, err := transform.LoadLookups(p.Lookups, transform.LookupOptions{Logger: r.log.With("component", "lookups")})
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: lookups: %w", p.Name, err)
		}
		r.lookups = l
	}
	r.hardCtx, r.hardStop = context.WithCancel(context.Background())
	r.sourcesCtx, r.stopSources = context.WithCancel(r.hardCtx)
	r.sinksCtx, r.stopSinks = context.WithCancel(r.hardCtx)

	type builtSource struct {
		sc    *SourceConfig
		src   adapters.Source
		build func() (adapters.Source, error)
	}
	var sources []builtSource
	type builtSink struct {
		sc   *SinkConfig
		sink adapters.Sink
		cons broker.Consumer
	}
	var sinks []builtSink
	closeAll := func() {
		for _, s := range sources {
			_ = s.src.Close(context.Background())
		}
		for _, s := range sinks {
			_ = s.sink.Close(context.Background())
		}
	}
	for _, sc := range p.Sources {
		res := adapters.Resources{Pipeline: p.Name, Name: sc.Name, Logger: r.log.With("component", "source", "source", sc.Name),
			State: opts.State(p.Name, "source/"+sc.Name), Once: opts.Once, Replies: r.replies, Backpressure: r.full.check}
		build := func() (adapters.Source, error) { return adapters.NewSource(sc.Type, sc.Conf, res) }
		src, err := build()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("pipeline %s: source %q: %w", p.Name, sc.Name, err)
		}
		sources = append(sources, builtSource{sc, src, build})
		if l, ok := src.(adapters.LagReporter); ok {
			r.lag[sc.Name] = l
		}
	}
	for _, sc := range p.Sinks {
		res := adapters.Resources{Pipeline: p.Name, Name: sc.Name, Logger: r.log.With("component", "sink", "sink", sc.Name),
			State: opts.State(p.Name, "sink/"+sc.Name), Once: opts.Once, Replies: r.replies, Backpressure: r.full.check}
		sink, err := adapters.NewSink(sc.Type, sc.Conf, res)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("pipeline %s: sink %q: %w", p.Name, sc.Name, err)
		}
		q := r.queues[sc.From]
		cons, err := q.Consumer(sc.Name)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("pipeline %s: sink %q: consumer of %s: %w", p.Name, sc.Name, q.Name(), err)
		}
		sinks = append(sinks, builtSink{sc, sink, cons})
	}
	for _, s := range sinks {
		s := s
		r.sinkClose = append(r.sinkClose, func() { _ = s.sink.Close(context.Background()) })
		r.sinksWG.Add(1)
		go func() {
			defer r.sinksWG.Done()
			r.runSink(s.sc, s.sink, s.cons)
		}()
	}
	for _, s := range sources {
		s := s
		leased := opts.Lease != nil && !opts.Once
		slot := &sourceSlot{src: s.src}
		if leased {
			if _, ok := r.lag[s.sc.Name]; ok {
				r.lag[s.sc.Name] = slot // follows the instance rebuilt after a lost lease
			}
		}
		r.sourceClose = append(r.sourceClose, slot.close)
		r.sourcesWG.Add(1)
		r.sourcesActive.Add(1)
		go func() {
			defer r.sourcesWG.Done()
			defer r.sourcesActive.Add(-1)
			if leased {
				r.runLeased(s.sc, slot, s.build)
				return
			}
			r.runRestarting(s.sc, slot, s.build)
		}()
	}
	if opts.Once {
		go r.watchOnce()
	}
	r.log.Info("pipeline started", "sources", len(sources), "sinks", len(sinks), "queues", len(p.Queues))
	return r, nil
}

func (r *Runtime) openQueues(b broker.Broker) error {
	for _, qc := range r.p.Queues {
		q, err := b.Open(brokerName(r.p.Name, qc.Name), qc.Options)
		if err != nil {
			return fmt.Errorf("pipeline %s: open queue %s: %w", r.p.Name, qc.Name, err)
		}
		r.queues[qc.Name] = q
		if d := q.DeadLetters(); d != nil {
			r.queues[qc.Name+broker.DLQSuffix] = d
		}
	}
	var groups []string
	for _, s := range r.p.Sinks {
		if s.From == broker.PipelineDLQ {
			groups = append(groups, s.Name)
		}
	}
	rq, err := b.Open(brokerName(r.p.Name, broker.PipelineDLQ), broker.Options{MaxBytes: -1, MaxAttempts: -1, Groups: append(groups, broker.ReplayGroup)})
	if err != nil {
		return fmt.Errorf("pipeline %s: open dead-letter queue: %w", r.p.Name, err)
	}
	if _, err := rq.Consumer(broker.ReplayGroup); err != nil {
		return fmt.Errorf("pipeline %s: open dead-letter queue: %w", r.p.Name, err)
	}
	r.queues[broker.PipelineDLQ] = rq
	r.rejectQ = rq
	return nil
}

// Name returns the pipeline's name.
func (r *Runtime) Name() string { return r.p.Name }

// Pipeline returns the configuration the runtime runs.
func (r *Runtime) Pipeline() *Pipeline { return r.p }

// Counters returns the pipeline's running totals.
func (r *Runtime) Counters() Snapshot { return r.counters.snapshot() }

// Queues returns the pipeline's queues by pipeline-local name.
func (r *Runtime) Queues() map[string]broker.Queue {
	out := make(map[string]broker.Queue, len(r.queues))
	for k, v := range r.queues {
		out[k] = v
	}
	return out
}

// Started returns when the pipeline was started.
func (r *Runtime) Started() time.Time { return r.started }

// SourceLag returns the lag of every source that reports one
// (adapters.LagReporter), by source name. It may be called concurrently.
func (r *Runtime) SourceLag() map[string]adapters.Lag {
	out := make(map[string]adapters.Lag, len(r.lag))
	for name, l := range r.lag {
		out[name] = l.Lag()
	}
	return out
}

// Status returns the state of every source and sink ("connecting",
// "running", "unavailable: ...", "finished").
func (r *Runtime) Status() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.status))
	for k, v := range r.status {
		out[k] = v
	}
	return out
}

// Healthy reports whether a component state from Status means the component
// works: "running", "finished" for a source that reached its end, or
// "standby" for a source waiting for the lease another agent holds.
func Healthy(state string) bool { return state == "running" || state == "finished" || state == standby }

// NotReady returns the sources and sinks ("source/NAME", "sink/NAME") that
// are not Healthy, with their state; one that has not reported a state yet
// is "starting". An empty map means the pipeline is ready.
func (r *Runtime) NotReady() map[string]string {
	st := r.Status()
	out := map[string]string{}
	check := func(component string) {
		s, ok := st[component]
		if !ok {
			s = "starting"
		}
		if !Healthy(s) {
			out[component] = s
		}
	}
	for _, s := range r.p.Sources {
		check("source/" + s.Name)
	}
	for _, s := range r.p.Sinks {
		check("sink/" + s.Name)
	}
	return out
}

func (r *Runtime) setStatus(component, state string) {
	r.mu.Lock()
	r.status[component] = state
	r.mu.Unlock()
}

// Done is closed when the pipeline has stopped (after Stop, or in once mode
// when everything was delivered).
func (r *Runtime) Done() <-chan struct{} { return r.done }

// Pause stops sources from reading; sinks keep draining the queues.
func (r *Runtime) Pause() {
	if r.paused.CompareAndSwap(false, true) {
		r.log.Info("pipeline paused")
	}
}

// Resume lets paused sources read again.
func (r *Runtime) Resume() {
	if r.paused.CompareAndSwap(true, false) {
		r.mu.Lock()
		close(r.pauseCh)
		r.pauseCh = make(chan struct{})
		r.mu.Unlock()
		r.log.Info("pipeline resumed")
	}
}

// Paused reports whether the pipeline is paused.
func (r *Runtime) Paused() bool { return r.paused.Load() }

func (r *Runtime) waitUnpaused(ctx context.Context) {
	for r.paused.Load() {
		r.mu.Lock()
		ch := r.pauseCh
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// Stop drains the pipeline: sources stop reading, batches being enqueued
// finish (and are acked to their sources), sinks finish the writes in
// progress and settle them; what is still queued stays queued. Stop returns
// when everything stopped or ctx is done, whichever comes first; after the
// DrainTimeout, in-flight work is abandoned (it stays safely queued or is
// re-read by the source).
func (r *Runtime) Stop(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		err = r.stop(ctx)
		close(r.done)
	})
	return err
}

func (r *Runtime) stop(ctx context.Context) error {
	deadline := time.NewTimer(r.opts.DrainTimeout)
	defer deadline.Stop()
	waitFor := func(wg *sync.WaitGroup, what string) error {
		ch := make(chan struct{})
		go func() { wg.Wait(); close(ch) }()
		select {
		case <-ch:
			return nil
		case <-deadline.C:
			r.hardStop()
			<-ch
			return fmt.Errorf("pipeline %s: %s did not drain within %s; in-flight work stays queued", r.p.Name, what, r.opts.DrainTimeout)
		case <-ctx.Done():
			r.hardStop()
			<-ch
			return ctx.Err()
		}
	}
	r.stopSources()
	for _, c := range r.sourceClose {
		c() // unblocks Reads; in-flight enqueues still finish
	}
	err1 := waitFor(&r.sourcesWG, "sources")
	r.stopSinks()
	err2 := waitFor(&r.sinksWG, "sinks")
	for _, c := range r.sinkClose {
		c()
	}
	r.hardStop() // queues belong to the broker, which the agent closes
	if r.lookups != nil {
		_ = r.lookups.Close()
	}
	r.log.Info("pipeline stopped", "read", r.counters.Read.Load(), "written", r.counters.Written.Load())
	return errors.Join(err1, err2)
}

// watchOnce stops the pipeline once every source ended and every queue the
// sinks read is empty.
func (r *Runtime) watchOnce() {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		if r.sourcesActive.Load() > 0 {
			continue
		}
		if r.queuesDrained() {
			_ = r.Stop(context.Background())
			return
		}
	}
}

func (r *Runtime) queuesDrained() bool {
	for _, s := range r.p.Sinks {
		st := r.queues[s.From].Stats()
		for _, g := range st.Groups {
			if g.Name == s.Name && (g.Pending > 0 || g.InFlight > 0) {
				return false
			}
		}
	}
	return true
}

// backoff returns successive delays: 100ms doubling to max.
type backoff struct {
	next, max time.Duration
}

func newBackoff(max time.Duration) *backoff { return &backoff{next: 100 * time.Millisecond, max: max} }

func (b *backoff) wait(ctx context.Context) bool {
	d := b.next
	b.next *= 2
	if b.next > b.max {
		b.next = b.max
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *backoff) reset() { b.next = 100 * time.Millisecond }

func (b *backoff) peek() time.Duration { return b.next }

// connect calls f until it succeeds or ctx is done, logging failures.
func (r *Runtime) connect(ctx context.Context, component string, f func(context.Context) error, log *slog.Logger, state func(string, error)) bool {
	bo := newBackoff(time.Minute)
	r.setStatus(component, "connecting")
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := f(cctx)
		cancel()
		if err == nil {
			r.setStatus(component, "running")
			if state != nil {
				state("connected", nil)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.setStatus(component, "unavailable: "+err.Error())
		if state != nil {
			state("unavailable", err)
		}
		log.Warn("connect failed; retrying", "error", err, "retry_in", bo.peek())
		if !bo.wait(ctx) {
			return false
		}
	}
}
