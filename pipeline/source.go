package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/transform"
)

// inflight is a source batch whose enqueues are under way; the acker waits
// for them in read order and then acks the batch to its source.
type inflight struct {
	batch   adapters.Batch
	waits   []func() error
	err     error
	replies []pendingReply // sent once the batch is durable
}

// runSource reads from a source until the pipeline stops or the source ends,
// runs each batch through the stage chain, enqueues the results and acks the
// batch once every message is durable. Batches are pipelined: up to
// MaxInflight batches may wait for durability while the next is read.
//
// It returns true when the source must be rebuilt: it failed to commit its
// position, so its in-memory state can no longer be trusted; a fresh
// instance resumes from the last committed position.
func (r *Runtime) runSource(ctx context.Context, sc *SourceConfig, src adapters.Source) (restart bool) {
	component := "source/" + sc.Name
	log := r.log.With("component", "source", "source", sc.Name)
	state := func(s string, err error) {
		if r.opts.Hooks.SourceState != nil {
			r.opts.Hooks.SourceState(r.p.Name, sc.Name, s, err)
		}
	}
	if !r.connect(ctx, component, src.Connect, log, state) {
		return false
	}
	pending := make(chan *inflight, r.opts.MaxInflight)
	ackerDone := make(chan struct{})
	ackFailed := make(chan struct{})
	// readCtx ends the reader's blocked Read when a commit failed.
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	defer func() { // runs last, once the acker has finished
		select {
		case <-ackFailed:
			restart = ctx.Err() == nil
		default:
		}
	}()
	go func() {
		defer close(ackerDone)
		failed := false
		for f := range pending {
			err := f.err
			for _, w := range f.waits {
				if werr := w(); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				log.Error("batch not enqueued; the source will read it again", "error", err, "messages", len(f.batch.Messages))
			} else {
				for _, p := range f.replies {
					r.replies.Deliver(p.to, p.reply)
				}
			}
			if f.batch.Ack == nil || failed {
				continue
			}
			actx, cancel := context.WithTimeout(r.hardCtx, 30*time.Second)
			aerr := f.batch.Ack(actx, err)
			cancel()
			if aerr != nil && !failed {
				failed = true
				log.Error("source could not commit its position; it restarts from the last committed one", "error", aerr)
				close(ackFailed)
				cancelRead()
			}
		}
	}()
	defer func() {
		close(pending)
		<-ackerDone
	}()

	// A reader goroutine reads ahead: the next batch is read (and decoded)
	// while this one runs the chain and enqueues, one batch at a time, in
	// read order.
	batches := make(chan adapters.Batch, 1)
	stopRead := make(chan struct{})
	go r.readSource(readCtx, sc, src, batches, stopRead, ackFailed, log, state)
	defer func() {
		close(stopRead)
		for range batches { // wait for the reader; what it read is not acked
		}
	}()

	runner := &transform.Runner{}
	runner.SetLookups(r.lookups)
	var outs []transform.Output
	for batch := range batches {
		select {
		case <-ackFailed:
			continue // the source restarts from its last committed position
		default:
		}
		f := &inflight{batch: batch}
		outs = r.process(runner, sc, batch.Messages, outs[:0])
		if plan := r.replyPlan(batch.Messages, outs); plan != nil {
			r.announce(plan)
			f.replies = rejectReplies(outs)
		}
		f.waits, f.err = r.enqueue(ctx, outs)
		select {
		case pending <- f:
		case <-r.hardCtx.Done():
			return false
		}
	}
	return false
}

// readSource calls Read until the pipeline stops, the source ends or fails
// to commit its position, and sends each non-empty batch to batches (closed
// on return), giving up when stop is closed. It acks empty batches at once.
func (r *Runtime) readSource(ctx context.Context, sc *SourceConfig, src adapters.Source, batches chan<- adapters.Batch, stop, ackFailed <-chan struct{}, log *slog.Logger, state func(string, error)) {
	defer close(batches)
	component := "source/" + sc.Name
	bo := newBackoff(30 * time.Second)
	for {
		r.waitUnpaused(ctx)
		select {
		case <-ackFailed:
			r.setStatus(component, "failed: could not commit position")
			return
		case <-ctx.Done():
			// stopping: a source that always has data ready may not look
			// at ctx in Read, so do not ask it for more
			return
		default:
		}
		batch, err := src.Read(ctx)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, adapters.ErrEndOfInput):
				r.setStatus(component, "finished")
				log.Info("source finished")
				return
			case errors.Is(err, adapters.ErrNotConnected):
				log.Warn("source lost its connection; reconnecting", "error", err)
				if !r.connect(ctx, component, src.Connect, log, state) {
					return
				}
				continue
			default:
				r.setStatus(component, "error: "+err.Error())
				log.Error("read failed; retrying", "error", err, "retry_in", bo.peek())
				if !bo.wait(ctx) {
					return
				}
				continue
			}
		}
		bo.reset()
		r.setStatus(component, "running")
		if len(batch.Messages) == 0 {
			if batch.Ack != nil {
				_ = batch.Ack(ctx, nil)
			}
			continue
		}
		select {
		case batches <- batch:
		case <-stop:
			return
		}
	}
}

// process runs messages through the chain.
func (r *Runtime) process(runner *transform.Runner, sc *SourceConfig, msgs []adapters.Message, outs []transform.Output) []transform.Output {
	now := time.Now()
	dropped := 0
	for i := range msgs {
		m := msgs[i]
		if m.Time.IsZero() {
			m.Time = now
		}
		if m.Meta == nil {
			m.Meta = map[string]string{adapters.MetaSource: sc.Name}
		} else if _, ok := m.Meta[adapters.MetaSource]; !ok {
			m.Meta[adapters.MetaSource] = sc.Name
		}
		if m.Err != nil {
			outs = append(outs, transform.Output{Msg: m, Err: m.Err})
			continue
		}
		var d int
		outs, d = r.p.Chain.Process(runner, m, outs)
		dropped += d
	}
	r.counters.Read.Add(int64(len(msgs)))
	if r.opts.Hooks.SourceRead != nil {
		r.opts.Hooks.SourceRead(r.p.Name, sc.Name, len(msgs))
	}
	if h := r.opts.Hooks.SourceBytes; h != nil {
		var n int64
		for i := range msgs {
			n += int64(len(msgs[i].Raw))
		}
		if n > 0 {
			h(r.p.Name, sc.Name, n)
		}
	}
	if dropped > 0 {
		r.counters.Dropped.Add(int64(dropped))
		if r.opts.Hooks.Dropped != nil {
			r.opts.Hooks.Dropped(r.p.Name, dropped)
		}
	}
	return outs
}

// enqueue groups outputs by queue and submits them. It returns one wait per
// queue; waiting on all of them tells whether the batch is durable.
func (r *Runtime) enqueue(ctx context.Context, outs []transform.Output) ([]func() error, error) {
	// A batch goes to a few queues: count per queue first (in order of
	// first use), then fill slices of the exact size.
	type queueBatch struct {
		name string
		msgs []adapters.Message
	}
	var small [4]queueBatch
	groups := small[:0]
	group := func(name string) int {
		for i := range groups {
			if groups[i].name == name {
				return i
			}
		}
		groups = append(groups, queueBatch{name: name})
		return len(groups) - 1
	}
	counts := make([]int, 0, 4)
	for i := range outs {
		o := &outs[i]
		if o.Err != nil {
			if g := group(broker.PipelineDLQ); g == len(counts) {
				counts = append(counts, 1)
			} else {
				counts[g]++
			}
			continue
		}
		for _, q := range o.Queues {
			if g := group(q); g == len(counts) {
				counts = append(counts, 1)
			} else {
				counts[g]++
			}
		}
	}
	for i := range groups {
		groups[i].msgs = make([]adapters.Message, 0, counts[i])
	}
	var reasons map[string]int
	for i := range outs {
		o := &outs[i]
		if o.Err != nil {
			m := o.Msg
			reason := "stage"
			switch {
			case m.Err != nil:
				reason = "decode"
			case errors.Is(o.Err, transform.ErrNoRoute):
				reason = "route"
			}
			if reasons == nil {
				reasons = map[string]int{}
			}
			reasons[reason]++
			m.Meta = m.CloneMeta()
			m.Meta[adapters.MetaError] = o.Err.Error()
			m.Meta["reason"] = reason
			m.Err = nil
			g := group(broker.PipelineDLQ)
			groups[g].msgs = append(groups[g].msgs, m)
			continue
		}
		for _, q := range o.Queues {
			g := group(q)
			groups[g].msgs = append(groups[g].msgs, o.Msg)
		}
	}
	var waits []func() error
	for _, qb := range groups {
		qn, msgs := qb.name, qb.msgs
		q, ok := r.queues[qn]
		if !ok {
			return waits, fmt.Errorf("queue %q is not open", qn)
		}
		n := len(msgs)
		var wait func() error
		if aq, ok := q.(broker.AsyncEnqueuer); ok {
			wait = aq.EnqueueAsync(ctx, msgs)
		} else {
			err := q.Enqueue(ctx, msgs)
			wait = func() error { return err }
		}
		waits = append(waits, func() error {
			if err := wait(); err != nil {
				return fmt.Errorf("enqueue into %s: %w", qn, err)
			}
			if qn == broker.PipelineDLQ {
				r.counters.Rejected.Add(int64(n))
				if r.opts.Hooks.Rejected != nil {
					for reason, c := range reasons {
						r.opts.Hooks.Rejected(r.p.Name, reason, c)
					}
				}
				return nil
			}
			r.counters.Enqueued.Add(int64(n))
			if r.opts.Hooks.Enqueued != nil {
				r.opts.Hooks.Enqueued(r.p.Name, qn, n)
			}
			return nil
		})
	}
	return waits, nil
}
