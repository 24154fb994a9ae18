package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// breaker is a sink's circuit breaker: while the target is unavailable, every
// worker waits for the next probe time; probes grow from 1s to a minute.
type breaker struct {
	mu       sync.Mutex
	until    time.Time
	interval time.Duration
	min, max time.Duration
}

func (b *breaker) wait(ctx context.Context) bool {
	b.mu.Lock()
	d := time.Until(b.until)
	b.mu.Unlock()
	if d <= 0 {
		return true
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

// trip opens the breaker and returns the wait until the next probe.
func (b *breaker) trip() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.interval == 0 {
		b.interval = b.min
	} else if time.Now().After(b.until) {
		b.interval *= 2
		if b.interval > b.max {
			b.interval = b.max
		}
	}
	b.until = time.Now().Add(b.interval)
	return b.interval
}

// reset closes the breaker; it reports whether it was open.
func (b *breaker) reset() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	was := b.interval != 0
	b.interval, b.until = 0, time.Time{}
	return was
}

type sinkRunner struct {
	r      *Runtime
	sc     *SinkConfig
	sink   adapters.Sink
	cons   broker.Consumer
	queue  string
	br     breaker
	connMu sync.Mutex
	// replier is the sink as an adapters.Replier, or nil; replies is false
	// for sinks reading a dead-letter queue, which answer no caller.
	replier adapters.Replier
	replies bool
}

// runSink connects a sink and runs its workers until the pipeline stops.
func (r *Runtime) runSink(sc *SinkConfig, sink adapters.Sink, cons broker.Consumer) {
	s := &sinkRunner{r: r, sc: sc, sink: sink, cons: cons, queue: brokerName(r.p.Name, sc.From), replies: !broker.IsDLQ(sc.From)}
	s.replier, _ = sink.(adapters.Replier)
	s.br.min, s.br.max = r.opts.OutageBackoff.Initial, r.opts.OutageBackoff.Max
	log := r.log.With("component", "sink", "sink", sc.Name)
	if !r.connect(r.sinksCtx, "sink/"+sc.Name, sink.Connect, log, s.state) {
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < sc.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work(log)
		}()
	}
	wg.Wait()
}

func (s *sinkRunner) state(state string, err error) {
	if h := s.r.opts.Hooks.SinkState; h != nil {
		h(s.r.p.Name, s.sc.Name, state, err)
	}
}

func (s *sinkRunner) work(log *slog.Logger) {
	r := s.r
	ctx := r.sinksCtx
	msgs := make([]adapters.Message, 0, s.sc.BatchSize)
	for {
		if !s.br.wait(ctx) {
			return
		}
		ds, err := s.cons.Receive(ctx, s.sc.BatchSize)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, broker.ErrClosed) {
				return
			}
			log.Error("receive failed", "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		msgs = msgs[:0]
		for _, d := range ds {
			msgs = append(msgs, d.Message)
		}
		start := time.Now()
		// Writes in progress finish even while the pipeline drains; only the
		// drain timeout (hardCtx) cuts them short.
		var werr error
		var recs []adapters.Record
		reply := s.replies && wantsReply(msgs)
		if reply && s.replier != nil {
			recs, werr = s.replier.WriteReply(r.hardCtx, msgs)
		} else {
			werr = s.sink.Write(r.hardCtx, msgs)
		}
		s.settle(ctx, ds, werr, time.Since(start), log)
		if reply {
			s.reply(ds, recs, werr)
		}
	}
}

// reply answers the callers of the messages of a Write that succeeded;
// failures that dead-lettered a message were answered by fail.
func (s *sinkRunner) reply(ds []broker.Delivery, recs []adapters.Record, werr error) {
	var be *adapters.BatchError
	if werr != nil && !errors.As(werr, &be) {
		return
	}
	for i := range ds {
		m := &ds[i].Message
		to := m.Meta[adapters.MetaReplyTo]
		if to == "" {
			continue
		}
		if be != nil {
			if _, failed := be.Failed[i]; failed {
				continue
			}
		}
		rep := adapters.Reply{Status: adapters.ReplyDelivered, ID: m.ID, Sink: s.sc.Name}
		if i < len(recs) {
			rep.Record = recs[i]
		}
		if !s.r.replies.Deliver(to, rep) {
			s.r.log.Debug("reply not delivered: the caller gave up", "sink", s.sc.Name, "id", m.ID, "reply_to", to)
		}
	}
}

// settle acks, nacks or releases a batch after Write.
func (s *sinkRunner) settle(ctx context.Context, ds []broker.Delivery, werr error, took time.Duration, log *slog.Logger) {
	r := s.r
	sctx, cancel := context.WithTimeout(r.hardCtx, 30*time.Second)
	defer cancel()
	var ok []broker.Delivery
	failed := map[adapters.Kind]int{}
	if werr == nil {
		ok = ds
	} else {
		var be *adapters.BatchError
		if errors.As(werr, &be) {
			byErr := map[error][]broker.Delivery{}
			var order []error
			for i, d := range ds {
				if e, bad := be.Failed[i]; bad {
					if _, seen := byErr[e]; !seen {
						order = append(order, e)
					}
					byErr[e] = append(byErr[e], d)
					continue
				}
				ok = append(ok, d)
			}
			for _, e := range order {
				failed[adapters.KindOf(e)] += len(byErr[e])
				s.fail(sctx, byErr[e], e, log)
			}
		} else {
			failed[adapters.KindOf(werr)] += len(ds)
			s.fail(sctx, ds, werr, log)
		}
	}
	if len(ok) > 0 {
		if err := s.cons.Ack(sctx, ok); err != nil {
			log.Error("ack failed; the messages will be delivered again", "error", err, "messages", len(ok))
		} else {
			r.counters.Written.Add(int64(len(ok)))
			if h := r.opts.Hooks.Delivered; h != nil {
				now := time.Now()
				lat := make([]time.Duration, len(ok))
				for i, d := range ok {
					lat[i] = now.Sub(d.Message.Time)
				}
				h(r.p.Name, s.sc.Name, lat)
			}
		}
		if werr == nil && s.br.reset() {
			log.Info("sink available again")
			r.setStatus("sink/"+s.sc.Name, "running")
			s.state("connected", nil)
		}
	}
	if h := r.opts.Hooks.SinkWrite; h != nil {
		h(r.p.Name, s.sc.Name, len(ok), failed, took)
	}
}

func (s *sinkRunner) fail(ctx context.Context, ds []broker.Delivery, err error, log *slog.Logger) {
	r := s.r
	switch kind := adapters.KindOf(err); {
	case kind == adapters.Unavailable || errors.Is(err, adapters.ErrNotConnected):
		if rerr := s.cons.Release(ctx, ds); rerr != nil {
			log.Error("release failed; the messages return after the visibility timeout", "error", rerr)
		}
		wait := s.br.trip()
		r.setStatus("sink/"+s.sc.Name, "unavailable: "+err.Error())
		s.state("unavailable", err)
		log.Warn("target unavailable; backing off without charging attempts", "error", err, "next_probe_in", wait, "messages", len(ds))
		if errors.Is(err, adapters.ErrNotConnected) {
			s.reconnect(log)
		}
	default:
		dead := 0
		max := 0
		if q := r.p.Queue(s.sc.From); q != nil {
			max = q.Options.MaxAttempts
		}
		isDead := func(d *broker.Delivery) bool {
			return kind == adapters.Permanent || (max > 0 && d.Message.Attempt >= max)
		}
		for i := range ds {
			if isDead(&ds[i]) {
				dead++
			}
		}
		if nerr := s.cons.Nack(ctx, ds, err); nerr != nil {
			log.Error("nack failed; the messages return after the visibility timeout", "error", nerr)
			return
		}
		if s.replies && dead > 0 {
			for i := range ds {
				m := &ds[i].Message
				if to := m.Meta[adapters.MetaReplyTo]; to != "" && isDead(&ds[i]) {
					s.r.replies.Deliver(to, adapters.Reply{Status: adapters.ReplyFailed, ID: m.ID, Sink: s.sc.Name, Error: err.Error()})
				}
			}
		}
		r.counters.DeadLettered.Add(int64(dead))
		r.counters.Retried.Add(int64(len(ds) - dead))
		if h := r.opts.Hooks.Nacked; h != nil {
			h(r.p.Name, s.sc.Name, len(ds)-dead, dead)
		}
		if dead > 0 {
			log.Warn("messages moved to the dead-letter queue", "error", err, "kind", kind.String(), "messages", dead, "dlq", s.queue+broker.DLQSuffix)
		}
		if len(ds)-dead > 0 {
			log.Warn("write failed; will retry with backoff", "error", err, "messages", len(ds)-dead)
		}
	}
}

func (s *sinkRunner) reconnect(log *slog.Logger) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	ctx, cancel := context.WithTimeout(s.r.sinksCtx, 30*time.Second)
	defer cancel()
	if err := s.sink.Connect(ctx); err != nil {
		log.Warn("reconnect failed", "error", fmt.Errorf("sink %q: %w", s.sc.Name, err))
	}
}
