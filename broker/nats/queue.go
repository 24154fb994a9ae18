package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// holdGroup is a consumer that keeps every message of a queue that has no
// consumer group: an interest-retention stream drops what nobody is
// interested in, while Sluice keeps messages for groups created later. It is
// deleted as soon as a real group exists.
const holdGroup = "_hold"

type queue struct {
	b       *Broker
	name    string
	stream  string
	subject string
	isDLQ   bool
	dlq     *queue

	mu     sync.Mutex
	s      jetstream.Stream
	opts   broker.Options
	closed bool
	groups map[string]*consumer

	full                                atomic.Bool
	enqueued, deadLettered, quarantined atomic.Int64
}

var (
	_ broker.Queue         = (*queue)(nil)
	_ broker.AsyncEnqueuer = (*queue)(nil)
)

func (q *queue) Name() string { return q.name }

func (q *queue) DeadLetters() broker.Queue {
	if q.dlq == nil {
		return nil
	}
	return q.dlq
}

func (q *queue) state() (jetstream.Stream, broker.Options, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.s, q.opts, q.closed
}

// consumerConfig is the durable pull consumer of group.
func (q *queue) consumerConfig(group string, opts broker.Options) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       group,
		Description:   "Sluice consumer group " + group + " of " + q.name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       opts.VisibilityTimeout,
		MaxDeliver:    -1, // Sluice counts attempts and dead-letters itself
		MaxAckPending: q.b.o.MaxAckPending,
	}
}

// ensureGroups creates the durable consumers of groups (and the replay
// group of a dead-letter queue), deletes the others when groups is not nil,
// and keeps the hold consumer exactly while there is no other.
func (q *queue) ensureGroups(ctx context.Context, groups []string, inspect bool) error {
	s, opts, _ := q.state()
	var names []string
	l := s.ConsumerNames(ctx)
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		return fmt.Errorf("nats: queue %s: list consumers: %w", q.name, err)
	}
	want := slices.Clone(groups)
	if q.isDLQ {
		want = append(want, broker.ReplayGroup)
	}
	for _, g := range want {
		if !groupRE.MatchString(g) || g == holdGroup {
			return fmt.Errorf("nats: queue %s: invalid consumer group name %q", q.name, g)
		}
		if inspect && slices.Contains(names, g) {
			continue
		}
		if _, err := s.CreateOrUpdateConsumer(ctx, q.consumerConfig(g, opts)); err != nil {
			return fmt.Errorf("nats: queue %s: consumer group %s: %w", q.name, g, err)
		}
	}
	others := 0
	for _, n := range names {
		switch {
		case n == holdGroup:
		case groups != nil && !slices.Contains(want, n) && n != broker.ReplayGroup:
			if err := s.DeleteConsumer(ctx, n); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("nats: queue %s: remove consumer group %s: %w", q.name, n, err)
			}
			q.mu.Lock()
			delete(q.groups, n)
			q.mu.Unlock()
		default:
			others++
		}
	}
	for _, g := range want {
		if !slices.Contains(names, g) {
			others++
		}
	}
	hasHold := slices.Contains(names, holdGroup)
	switch {
	case others == 0 && !hasHold:
		if _, err := s.CreateOrUpdateConsumer(ctx, q.consumerConfig(holdGroup, opts)); err != nil {
			return fmt.Errorf("nats: queue %s: hold consumer: %w", q.name, err)
		}
	case others > 0 && hasHold:
		if err := s.DeleteConsumer(ctx, holdGroup); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("nats: queue %s: remove hold consumer: %w", q.name, err)
		}
	}
	return nil
}

// Consumer returns the durable consumer of group, creating it at the oldest
// message the stream retains when it is new.
func (q *queue) Consumer(group string) (broker.Consumer, error) {
	if !groupRE.MatchString(group) || group == holdGroup {
		return nil, fmt.Errorf("nats: queue %s: invalid consumer group name %q (letters, digits, - and _)", q.name, group)
	}
	s, opts, closed := q.state()
	if closed {
		return nil, broker.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	jc, err := s.CreateOrUpdateConsumer(ctx, q.consumerConfig(group, opts))
	if err != nil {
		return nil, fmt.Errorf("nats: queue %s: consumer group %s: %w", q.name, group, err)
	}
	if err := s.DeleteConsumer(ctx, holdGroup); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("nats: queue %s: remove hold consumer: %w", q.name, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.groups[group]
	if c == nil {
		c = newConsumer(q, group)
		q.groups[group] = c
	}
	c.setJC(jc)
	return c, nil
}

// pubMsg is a message ready to publish.
type pubMsg struct {
	data  []byte
	msgID string
}

// msgID is the deduplication ID of m (Nats-Msg-Id). A message's own ID
// makes a message read twice (a source re-reading after a crash or a
// take-over) land once. A message replayed from a dead-letter queue is meant
// to be delivered again, so its publish gets an ID of its own.
func msgID(m *adapters.Message) string {
	if _, replayed := m.Meta[broker.OnlyGroupMeta]; replayed {
		return m.ID + ":replay:" + nuid.Next()
	}
	return m.ID
}

// prepare encodes msgs, filling in missing IDs and times.
func (q *queue) prepare(msgs []adapters.Message, ids func(i int, m *adapters.Message) string) ([]pubMsg, error) {
	_, opts, closed := q.state()
	if closed {
		return nil, broker.ErrClosed
	}
	now := time.Now()
	out := make([]pubMsg, len(msgs))
	var total int64
	for i := range msgs {
		m := msgs[i]
		if m.ID == "" {
			m.ID = adapters.NewID(q.name, nuid.Next())
		}
		if m.Time.IsZero() {
			m.Time = now
		}
		m.Attempt = 0
		data, err := broker.AppendMessage(nil, &m)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", q.name, err)
		}
		// what the stream accounts for a message: subject, headers, data
		size := int64(len(data) + len(q.subject) + len(m.ID) + 64)
		total += size
		if opts.MaxBytes > 0 && size > opts.MaxBytes {
			return nil, fmt.Errorf("queue %s: message %s of %d bytes: %w", q.name, m.ID, size, broker.ErrTooLarge)
		}
		if mp := q.b.nc.MaxPayload(); mp > 0 && int64(len(data)+len(m.ID)+64) > mp {
			return nil, fmt.Errorf("queue %s: message %s of %d bytes is above the server's max_payload %d: %w", q.name, m.ID, len(data), mp, broker.ErrTooLarge)
		}
		id := msgID(&m)
		if ids != nil {
			id = ids(i, &m)
		}
		out[i] = pubMsg{data: data, msgID: id}
	}
	return out, nil
}

// Enqueue publishes msgs and returns once JetStream acknowledged every one
// (stored, replicated to a quorum). A stream at its limits rejects
// publishes (discard new): Enqueue retries them until they fit or ctx is
// done. Publishes lost to a connection failure or a leader change are
// retried with the same message ID, so the stream keeps one copy.
func (q *queue) Enqueue(ctx context.Context, msgs []adapters.Message) error {
	return q.EnqueueAsync(ctx, msgs)()
}

// EnqueueAsync publishes msgs at once and returns; wait collects the
// acknowledgements and retries what the stream rejected.
func (q *queue) EnqueueAsync(ctx context.Context, msgs []adapters.Message) func() error {
	pm, err := q.prepare(msgs, nil)
	if err != nil {
		return func() error { return err }
	}
	return q.send(ctx, pm)
}

// send publishes pm and returns the function that waits for the outcome.
func (q *queue) send(ctx context.Context, pm []pubMsg) func() error {
	if len(pm) == 0 {
		return func() error { return nil }
	}
	idx := make([]int, len(pm))
	for i := range idx {
		idx[i] = i
	}
	c, err := q.publish(pm, idx)
	return func() error {
		if err != nil {
			return err
		}
		return q.finish(ctx, pm, idx, c)
	}
}

// publish sends pm[idx...] with their reply subjects on c.
func (q *queue) publish(pm []pubMsg, idx []int) (*call, error) {
	c := q.b.mux.newCall(len(idx))
	for j, i := range idx {
		m := &nats.Msg{Subject: q.subject, Reply: c.replyTo(j), Data: pm[i].data, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, pm[i].msgID)
		if err := q.b.nc.PublishMsg(m); err != nil {
			c.close()
			if errors.Is(err, nats.ErrMaxPayload) {
				return nil, fmt.Errorf("queue %s: %w: %w", q.name, broker.ErrTooLarge, err)
			}
			return nil, fmt.Errorf("queue %s: publish: %w", q.name, err)
		}
	}
	return c, nil
}

// pubAck is JetStream's answer to a publish.
type pubAck struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// publishTimeout bounds the wait for PubAcks before the publishes are sent
// again (same IDs: the stream keeps one copy).
const publishTimeout = 5 * time.Second

// finish waits for c's acknowledgements of pm[idx...] and republishes what
// failed for a reason that passes: a full stream, a lost connection, a
// leader election.
func (q *queue) finish(ctx context.Context, pm []pubMsg, idx []int, c *call) error {
	delay := 5 * time.Millisecond
	blocked := false
	defer func() {
		if blocked {
			q.full.Store(false)
		}
	}()
	for {
		replies := make([]*nats.Msg, len(idx))
		if err := c.wait(ctx, publishTimeout, replies); err != nil {
			return err
		}
		var retry []int
		full := false
		var lastErr error
		for j, r := range replies {
			ok, isFull, err := q.pubResult(r)
			switch {
			case ok:
				q.enqueued.Add(1)
			case err != nil && !isFull && !isTransient(err):
				return fmt.Errorf("queue %s: %w", q.name, err)
			default:
				full = full || isFull
				lastErr = err
				retry = append(retry, idx[j])
			}
		}
		if len(retry) == 0 {
			return nil
		}
		if full {
			blocked = true
			q.full.Store(true)
		} else {
			q.b.o.Logger.Debug("nats: publish not acknowledged; sending again", "queue", q.name, "messages", len(retry), "error", lastErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 250*time.Millisecond)
		idx = retry
		var err error
		if c, err = q.publish(pm, idx); err != nil {
			if !isTransient(err) {
				return err
			}
			c = q.b.mux.newCall(0)
		}
	}
}

// errPubTransient marks publish failures that a retry may cure.
var errPubTransient = errors.New("transient publish failure")

func isTransient(err error) bool {
	return errors.Is(err, errPubTransient) || errors.Is(err, errNoReply) || errors.Is(err, nats.ErrReconnectBufExceeded)
}

// pubResult interprets one reply to a publish.
func (q *queue) pubResult(r *nats.Msg) (ok, full bool, err error) {
	if r == nil {
		return false, false, errNoReply
	}
	if st := r.Header.Get("Status"); st != "" && len(r.Data) == 0 {
		// 503: no responders (no stream leader right now)
		return false, false, fmt.Errorf("%w: status %s %s", errPubTransient, st, r.Header.Get("Description"))
	}
	var a pubAck
	if err := json.Unmarshal(r.Data, &a); err != nil {
		return false, false, fmt.Errorf("%w: bad PubAck %q", errPubTransient, r.Data)
	}
	if a.Error == nil {
		return true, false, nil
	}
	d := a.Error.Description
	switch {
	case strings.Contains(d, "maximum messages") || strings.Contains(d, "maximum bytes") ||
		strings.Contains(d, "insufficient resources") || strings.Contains(d, "resource limits exceeded"):
		return false, true, fmt.Errorf("stream %s is full: %s", q.stream, d)
	case a.Error.Code == 503 || a.Error.Code == 408 || a.Error.Code == 500:
		return false, false, fmt.Errorf("%w: %s", errPubTransient, d)
	case strings.Contains(d, "message size exceeds"):
		return false, false, fmt.Errorf("%s: %w", d, broker.ErrTooLarge)
	}
	return false, false, fmt.Errorf("publish to stream %s: %s (code %d)", q.stream, d, a.Error.ErrCode)
}

// Peek reads up to n messages from the oldest, without consuming them.
func (q *queue) Peek(ctx context.Context, n int) ([]adapters.Message, error) {
	s, _, _ := q.state()
	var out []adapters.Message
	seq := uint64(1)
	for len(out) < n {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(q.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("nats: peek %s: %w", q.name, err)
		}
		m, err := broker.DecodeMessage(raw.Data)
		if err != nil {
			m = corrupt(raw.Sequence, raw.Data, err)
		}
		out = append(out, m)
		seq = raw.Sequence + 1
	}
	return out, nil
}

// corrupt is what a message that does not decode turns into: its bytes as
// Raw, with the error.
func corrupt(seq uint64, data []byte, err error) adapters.Message {
	return adapters.Message{ID: "nats-seq-" + strconv.FormatUint(seq, 10), Raw: append([]byte(nil), data...),
		Meta: map[string]string{adapters.MetaError: "undecodable message: " + err.Error()}}
}

// Purge deletes every message of the stream.
func (q *queue) Purge(ctx context.Context) (int64, error) {
	resp, err := q.b.nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+q.stream, nil)
	if err != nil {
		return 0, fmt.Errorf("nats: purge %s: %w", q.name, err)
	}
	var r struct {
		Success bool  `json:"success"`
		Purged  int64 `json:"purged"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, fmt.Errorf("nats: purge %s: %w", q.name, err)
	}
	if r.Error != nil || !r.Success {
		d := "failed"
		if r.Error != nil {
			d = r.Error.Description
		}
		return 0, fmt.Errorf("nats: purge %s: %s", q.name, d)
	}
	return r.Purged, nil
}

// Stats reads the stream's and its consumers' state from the server. On
// error the counters kept by this process are returned alone.
func (q *queue) Stats() broker.Stats {
	st := broker.Stats{Name: q.name, Full: q.full.Load(), Enqueued: q.enqueued.Load(),
		DeadLettered: q.deadLettered.Load(), Quarantined: q.quarantined.Load()}
	s, _, _ := q.state()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		q.b.o.Logger.Warn("nats: stream info", "queue", q.name, "error", err)
		return st
	}
	st.Messages, st.Bytes = int64(info.State.Msgs), int64(info.State.Bytes)
	if st.Messages > 0 {
		st.OldestAge = max(time.Since(info.State.FirstTime), 0)
	}
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Name == holdGroup {
			continue
		}
		g := broker.GroupStats{Name: ci.Name, Pending: int64(ci.NumPending) + int64(ci.NumAckPending), InFlight: int64(ci.NumAckPending)}
		q.mu.Lock()
		if c := q.groups[ci.Name]; c != nil {
			g.Acked, g.Retried = c.acked.Load(), c.retried.Load()
		}
		q.mu.Unlock()
		st.Groups = append(st.Groups, g)
	}
	if err := l.Err(); err != nil {
		q.b.o.Logger.Warn("nats: consumer info", "queue", q.name, "error", err)
	}
	sort.Slice(st.Groups, func(i, j int) bool { return st.Groups[i].Name < st.Groups[j].Name })
	return st
}

// Close hands the deliveries this process holds back (without charging an
// attempt) and makes the queue unusable until Open.
func (q *queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	cs := make([]*consumer, 0, len(q.groups))
	for _, c := range q.groups {
		cs = append(cs, c)
	}
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.releaseAll(ctx))
	}
	return errors.Join(errs...)
}
