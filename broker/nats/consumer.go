package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// Attempts. JetStream counts deliveries (NumDelivered); Sluice charges an
// attempt for every delivery except those handed back by Release (the
// target was down). A release therefore records, in the key/value bucket
// PREFIX_released under STREAM.GROUP.SEQ, how many times the message was
// released, and the attempt of a delivery is NumDelivered minus that count.
// The bucket is read only for redeliveries and written only by releases, so
// the normal path costs nothing; the record is deleted when the message is
// settled, and expires after releasedTTL if it is left behind.
const releasedTTL = 7 * 24 * time.Hour

// longPoll is how long one pull request waits for a message when the
// caller's context has no deadline: the longest a Receive takes to notice
// that its context was cancelled.
const longPoll = 500 * time.Millisecond

type consumer struct {
	q     *queue
	group string

	mu       sync.Mutex
	jc       jetstream.Consumer
	tokens   uint64
	inflight map[uint64]*delivery // by token
	bySeq    map[uint64]uint64    // stream sequence -> token of its latest delivery here
	first    map[uint64]time.Time // stream sequence -> first failure seen here

	acked, retried atomic.Int64
}

// delivery is a message handed to a worker, until it is settled.
type delivery struct {
	jm       jetstream.Msg
	seq      uint64
	attempt  int
	released int
	msg      adapters.Message
}

var _ broker.Consumer = (*consumer)(nil)

func newConsumer(q *queue, group string) *consumer {
	return &consumer{q: q, group: group, inflight: map[uint64]*delivery{}, bySeq: map[uint64]uint64{}, first: map[uint64]time.Time{}}
}

func (c *consumer) setJC(jc jetstream.Consumer) {
	c.mu.Lock()
	c.jc = jc
	c.mu.Unlock()
}

func (c *consumer) current() jetstream.Consumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jc
}

// Receive pulls up to max messages: what is available at once, or else the
// first one that arrives.
func (c *consumer) Receive(ctx context.Context, max int) ([]broker.Delivery, error) {
	if max <= 0 {
		max = 1
	}
	for {
		if _, _, closed := c.q.state(); closed {
			return nil, broker.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		jc := c.current()
		msgs, err := collect(jc.FetchNoWait(max))
		if err == nil && len(msgs) == 0 {
			w := longPoll
			if dl, ok := ctx.Deadline(); ok {
				w = min(w, time.Until(dl))
			}
			if w < time.Millisecond {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			// The pull request ends by itself after w; waiting for its end
			// even when ctx is done means no message is ever delivered to a
			// request nobody reads.
			msgs, err = collect(jc.Fetch(1, jetstream.FetchMaxWait(w)))
		}
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				return nil, fmt.Errorf("nats: queue %s: consumer group %s: %w", c.q.name, c.group, err)
			}
			c.q.b.o.Logger.Debug("nats: fetch failed; retrying", "queue", c.q.name, "group", c.group, "error", err)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		if _, _, closed := c.q.state(); closed {
			rctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			_ = c.q.b.mux.settle(rctx, replySubjects(msgs), func(int) []byte { return ackNak })
			cancel()
			return nil, broker.ErrClosed
		}
		ds, err := c.deliver(ctx, msgs)
		if err != nil {
			return nil, err
		}
		if len(ds) > 0 {
			return ds, nil
		}
	}
}

func collect(b jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, err
	}
	var out []jetstream.Msg
	for m := range b.Messages() {
		out = append(out, m)
	}
	return out, b.Error()
}

func replySubjects(msgs []jetstream.Msg) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Reply()
	}
	return out
}

// Ack protocol payloads.
var (
	ackAck  = []byte("+ACK")
	ackNak  = []byte("-NAK")
	ackTerm = []byte("+TERM")
)

func nakDelay(d time.Duration) []byte {
	return []byte(`-NAK {"delay": ` + strconv.FormatInt(int64(d), 10) + `}`)
}

// deliver turns fetched messages into deliveries: messages replayed for
// another group are acked and skipped, undecodable ones are dead-lettered,
// redeliveries get their release count to compute the attempt.
func (c *consumer) deliver(ctx context.Context, msgs []jetstream.Msg) ([]broker.Delivery, error) {
	var skip []string
	var bad []*delivery
	var redeliveries []*delivery
	ds := make([]*delivery, 0, len(msgs))
	for _, jm := range msgs {
		md, err := jm.Metadata()
		if err != nil {
			continue // not a JetStream delivery; nothing to settle
		}
		d := &delivery{jm: jm, seq: md.Sequence.Stream, attempt: int(md.NumDelivered)}
		m, err := broker.DecodeMessage(jm.Data())
		if err != nil {
			d.msg = corrupt(d.seq, jm.Data(), err)
			bad = append(bad, d)
			continue
		}
		if !broker.ForGroup(&m, c.group) {
			skip = append(skip, jm.Reply())
			continue
		}
		d.msg = m
		if md.NumDelivered > 1 {
			redeliveries = append(redeliveries, d)
		}
		ds = append(ds, d)
	}
	if len(skip) > 0 {
		if err := c.q.b.mux.settle(ctx, skip, func(int) []byte { return ackAck }); err != nil {
			return nil, fmt.Errorf("nats: queue %s: ack messages replayed for another group: %w", c.q.name, err)
		}
		c.acked.Add(int64(len(skip)))
	}
	if len(bad) > 0 {
		c.quarantine(ctx, bad)
	}
	if len(redeliveries) > 0 {
		if err := c.loadReleases(ctx, redeliveries); err != nil {
			c.q.b.o.Logger.Warn("nats: release counts not read; attempts may be overcounted", "queue", c.q.name, "error", err)
		}
	}
	out := make([]broker.Delivery, len(ds))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, d := range ds {
		d.attempt = max(d.attempt-d.released, 1)
		c.tokens++
		if old, ok := c.bySeq[d.seq]; ok {
			delete(c.inflight, old) // its visibility timeout passed: a late settle is ignored
		}
		c.inflight[c.tokens] = d
		c.bySeq[d.seq] = c.tokens
		m := d.msg
		m.Attempt = d.attempt
		out[i] = broker.Delivery{Message: m, Token: c.tokens}
	}
	return out, nil
}

// quarantine moves messages that do not decode to the dead-letter queue (or
// terminates them on a dead-letter queue), so that nothing is dropped
// silently.
func (c *consumer) quarantine(ctx context.Context, bad []*delivery) {
	c.q.quarantined.Add(int64(len(bad)))
	c.q.b.o.Logger.Error("nats: undecodable messages set aside", "queue", c.q.name, "group", c.group, "messages", len(bad))
	if c.q.dlq != nil {
		if err := c.deadLetter(ctx, bad, errors.New("undecodable message")); err != nil {
			c.q.b.o.Logger.Error("nats: undecodable messages not dead-lettered; they return after the visibility timeout", "queue", c.q.name, "error", err)
		}
		return
	}
	subjects := make([]string, len(bad))
	for i, d := range bad {
		subjects[i] = d.jm.Reply()
	}
	_ = c.q.b.mux.settle(ctx, subjects, func(int) []byte { return ackTerm })
}

func (c *consumer) releasedKey(seq uint64) string {
	return c.q.stream + "." + c.group + "." + strconv.FormatUint(seq, 10)
}

func (c *consumer) releasedKV(ctx context.Context) (jetstream.KeyValue, error) {
	return c.q.b.bucket(ctx, releasedBucket(c.q.b.o.Prefix), releasedTTL)
}

// loadReleases reads the release counts of redelivered messages.
func (c *consumer) loadReleases(ctx context.Context, ds []*delivery) error {
	kv, err := c.releasedKV(ctx)
	if err != nil {
		return err
	}
	return parallel(len(ds), func(i int) error {
		e, err := kv.Get(ctx, c.releasedKey(ds[i].seq))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(e.Value()))
		if err == nil {
			ds[i].released = n
		}
		return nil
	})
}

// parallel runs f(0..n-1) with bounded concurrency and joins the errors.
func parallel(n int, f func(i int) error) error {
	const width = 32
	sem := make(chan struct{}, width)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// take removes the deliveries of ds from the in-flight set and returns the
// ones still current (a delivery whose visibility timeout passed and that
// was delivered again here is not).
func (c *consumer) take(ds []broker.Delivery) []*delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*delivery, 0, len(ds))
	for _, bd := range ds {
		d, ok := c.inflight[bd.Token]
		if !ok {
			continue
		}
		delete(c.inflight, bd.Token)
		if c.bySeq[d.seq] == bd.Token {
			delete(c.bySeq, d.seq)
		}
		out = append(out, d)
	}
	return out
}

func subjectsOf(ds []*delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.jm.Reply()
	}
	return out
}

// forget drops what is kept about settled messages: first failure times and
// release records.
func (c *consumer) forget(ctx context.Context, ds []*delivery) {
	var released []*delivery
	c.mu.Lock()
	for _, d := range ds {
		delete(c.first, d.seq)
		if d.released > 0 {
			released = append(released, d)
		}
	}
	c.mu.Unlock()
	if len(released) == 0 {
		return
	}
	kv, err := c.releasedKV(ctx)
	if err == nil {
		err = parallel(len(released), func(i int) error {
			err := kv.Purge(ctx, c.releasedKey(released[i].seq))
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil
			}
			return err
		})
	}
	if err != nil {
		c.q.b.o.Logger.Debug("nats: release records left to expire", "queue", c.q.name, "error", err)
	}
}

// Ack settles ds as done; it returns once the server confirmed the acks.
func (c *consumer) Ack(ctx context.Context, ds []broker.Delivery) error {
	ents := c.take(ds)
	if len(ents) == 0 {
		return nil
	}
	if err := c.q.b.mux.settle(ctx, subjectsOf(ents), func(int) []byte { return ackAck }); err != nil {
		return fmt.Errorf("nats: queue %s: ack: %w", c.q.name, err)
	}
	c.acked.Add(int64(len(ents)))
	c.forget(ctx, ents)
	return nil
}

// Nack settles ds as failed: an unavailable target releases them, a
// permanent failure or the last attempt dead-letters them (publish to the
// dead-letter stream, then terminate the original), anything else is
// redelivered after the queue's backoff (a delayed NAK).
func (c *consumer) Nack(ctx context.Context, ds []broker.Delivery, cause error) error {
	kind := adapters.KindOf(cause)
	if kind == adapters.Unavailable {
		return c.Release(ctx, ds)
	}
	ents := c.take(ds)
	_, opts, _ := c.q.state()
	var dead, retry []*delivery
	now := time.Now()
	c.mu.Lock()
	if len(c.first) > 100_000 { // failures seen here of messages settled elsewhere
		clear(c.first)
	}
	for _, d := range ents {
		if _, ok := c.first[d.seq]; !ok {
			c.first[d.seq] = now
		}
		if c.q.dlq != nil && (kind == adapters.Permanent || (opts.MaxAttempts > 0 && d.attempt >= opts.MaxAttempts)) {
			dead = append(dead, d)
			continue
		}
		retry = append(retry, d)
	}
	c.mu.Unlock()
	var errs []error
	if len(retry) > 0 {
		err := c.q.b.mux.settle(ctx, subjectsOf(retry), func(i int) []byte { return nakDelay(opts.Backoff.Delay(retry[i].attempt)) })
		if err != nil {
			errs = append(errs, fmt.Errorf("nats: queue %s: nack: %w", c.q.name, err))
		} else {
			c.retried.Add(int64(len(retry)))
		}
	}
	if len(dead) > 0 {
		errs = append(errs, c.deadLetter(ctx, dead, cause))
	}
	return errors.Join(errs...)
}

// deadLetter publishes ds to the dead-letter queue and, once stored,
// terminates the originals. The dead letters' message IDs name the original
// stream sequence and group: dead-lettering the same delivery twice (a crash
// between the two steps) stores it once, while two groups failing the same
// message, or a replayed copy failing again, each get their dead letter.
func (c *consumer) deadLetter(ctx context.Context, ds []*delivery, cause error) error {
	c.mu.Lock()
	msgs := make([]adapters.Message, len(ds))
	for i, d := range ds {
		msgs[i] = broker.DeadLetter(d.msg, c.q.name, c.group, cause, d.attempt, c.first[d.seq])
	}
	c.mu.Unlock()
	pm, err := c.q.dlq.prepare(msgs, func(i int, m *adapters.Message) string {
		return m.ID + ":dead:" + c.group + ":" + strconv.FormatUint(ds[i].seq, 10)
	})
	if err == nil {
		err = c.q.dlq.send(ctx, pm)()
	}
	if err != nil {
		return fmt.Errorf("nats: queue %s: dead-letter: %w", c.q.name, err)
	}
	if err := c.q.b.mux.settle(ctx, subjectsOf(ds), func(int) []byte { return ackTerm }); err != nil {
		return fmt.Errorf("nats: queue %s: terminate dead-lettered messages: %w", c.q.name, err)
	}
	c.q.deadLettered.Add(int64(len(ds)))
	c.forget(ctx, ds)
	return nil
}

// Release hands ds back for redelivery without charging an attempt: it
// records one more release per message, then NAKs them without delay.
func (c *consumer) Release(ctx context.Context, ds []broker.Delivery) error {
	return c.release(ctx, c.take(ds))
}

func (c *consumer) release(ctx context.Context, ents []*delivery) error {
	if len(ents) == 0 {
		return nil
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].seq < ents[j].seq })
	kv, kerr := c.releasedKV(ctx)
	if kerr == nil {
		kerr = parallel(len(ents), func(i int) error {
			_, err := kv.Put(ctx, c.releasedKey(ents[i].seq), []byte(strconv.Itoa(ents[i].released+1)))
			return err
		})
	}
	err := c.q.b.mux.settle(ctx, subjectsOf(ents), func(int) []byte { return ackNak })
	if kerr != nil {
		kerr = fmt.Errorf("nats: queue %s: record releases (the next delivery is charged an attempt): %w", c.q.name, kerr)
	}
	if err != nil {
		err = fmt.Errorf("nats: queue %s: release: %w", c.q.name, err)
	}
	return errors.Join(kerr, err)
}

// releaseAll releases every delivery this process holds.
func (c *consumer) releaseAll(ctx context.Context) error {
	c.mu.Lock()
	ents := make([]*delivery, 0, len(c.inflight))
	for _, d := range c.inflight {
		ents = append(ents, d)
	}
	clear(c.inflight)
	clear(c.bySeq)
	c.mu.Unlock()
	return c.release(ctx, ents)
}
