package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/broker"
)

// Broker is the NATS JetStream backend. It is safe for concurrent use.
type Broker struct {
	o   Options
	nc  *nats.Conn
	js  jetstream.JetStream
	mux *mux

	mu      sync.Mutex
	queues  map[string]*queue
	buckets map[string]jetstream.KeyValue
	closed  bool
}

var _ broker.Broker = (*Broker)(nil)

// opTimeout bounds each call to the JetStream API made on behalf of a
// method without a context (Open, List, Stats, Close).
const opTimeout = 10 * time.Second

// Connect connects to the servers of o.URL and checks that JetStream
// answers. It fails when no server can be reached within ctx; once
// connected, lost connections are re-established in the background (the
// calls made meanwhile wait or fail with the connection's error).
func Connect(ctx context.Context, o Options) (*Broker, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	nopts, err := o.natsOptions()
	if err != nil {
		return nil, err
	}
	var nc *nats.Conn
	for {
		nc, err = nats.Connect(o.URL, nopts...)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("nats: connect to %s: %w", redactURL(o.URL), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: JetStream at %s: %w", redactURL(o.URL), err)
	}
	m, err := newMux(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Broker{o: o, nc: nc, js: js, mux: m, queues: map[string]*queue{}, buckets: map[string]jetstream.KeyValue{}}, nil
}

// Options returns the broker's effective options (secrets included: do not
// print them).
func (b *Broker) Options() Options { return b.o }

// Conn returns the broker's connection.
func (b *Broker) Conn() *nats.Conn { return b.nc }

// JetStream returns the broker's JetStream context.
func (b *Broker) JetStream() jetstream.JetStream { return b.js }

// Open returns the queue called name ("PIPELINE/QUEUE"), creating its
// stream and its dead-letter queue's when they do not exist, and the
// durable consumers of opts.Groups; consumers of groups not listed are
// deleted (a non-nil, empty Groups deletes all but the replay group). A zero
// opts on an existing stream keeps the stream's limits as they are, so that
// `sluice queues` can inspect a queue without changing it.
func (b *Broker) Open(name string, opts broker.Options) (broker.Queue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, broker.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	q, err := b.openLocked(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	if !broker.IsDLQ(name) {
		d, err := b.openLocked(ctx, name+broker.DLQSuffix, broker.Options{MaxAttempts: -1, Backoff: opts.Backoff, VisibilityTimeout: opts.VisibilityTimeout})
		if err != nil {
			return nil, err
		}
		q.dlq = d
	}
	return q, nil
}

func (b *Broker) openLocked(ctx context.Context, name string, opts broker.Options) (*queue, error) {
	stream, err := streamName(b.o.Prefix, name)
	if err != nil {
		return nil, err
	}
	subject, _ := subjectName(b.o.SubjectPrefix, name)
	inspect := isZero(opts)
	opts = opts.WithDefaults()
	dlq := broker.IsDLQ(name)
	if dlq {
		opts.MaxBytes, opts.MaxMessages, opts.MaxAttempts = -1, 0, -1
	}
	q := b.queues[name]
	if q == nil {
		q = &queue{b: b, name: name, stream: stream, subject: subject, isDLQ: dlq, groups: map[string]*consumer{}}
	}
	var s jetstream.Stream
	if inspect {
		s, err = b.js.Stream(ctx, stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			s, err = b.js.CreateStream(ctx, b.streamConfig(name, stream, subject, opts))
		}
	} else {
		s, err = b.js.CreateOrUpdateStream(ctx, b.streamConfig(name, stream, subject, opts))
	}
	if err != nil {
		return nil, fmt.Errorf("nats: queue %s: stream %s: %w", name, stream, err)
	}
	q.mu.Lock()
	q.s = s
	q.opts = opts
	q.closed = false
	q.mu.Unlock()
	if err := q.ensureGroups(ctx, opts.Groups, inspect); err != nil {
		return nil, err
	}
	b.queues[name] = q
	return q, nil
}

func isZero(o broker.Options) bool {
	return o.MaxBytes == 0 && o.MaxMessages == 0 && o.MaxAttempts == 0 && o.Backoff == (broker.Backoff{}) &&
		o.VisibilityTimeout == 0 && o.SegmentBytes == 0 && o.InlineMax == 0 && o.Groups == nil
}

func (b *Broker) streamConfig(name, stream, subject string, opts broker.Options) jetstream.StreamConfig {
	limit := func(n int64) int64 {
		if n <= 0 {
			return -1
		}
		return n
	}
	storage := jetstream.FileStorage
	if b.o.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:        stream,
		Description: "Sluice queue " + name,
		Subjects:    []string{subject},
		Retention:   jetstream.InterestPolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    limit(opts.MaxBytes),
		MaxMsgs:     limit(opts.MaxMessages),
		Storage:     storage,
		Replicas:    b.o.Replicas,
		Duplicates:  b.o.DuplicateWindow,
	}
}

// List returns the queues of this broker's prefix, sorted.
func (b *Broker) List() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	l := b.js.StreamNames(ctx, jetstream.WithStreamListSubject(b.o.SubjectPrefix+".>"))
	var names []string
	for s := range l.Name() {
		if n, ok := queueName(b.o.Prefix, s); ok {
			names = append(names, n)
		}
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("nats: list streams: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// Close closes every queue (deliveries received and not settled are handed
// back without charging an attempt) and the connection.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	qs := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, q)
	}
	b.mu.Unlock()
	var errs []error
	for _, q := range qs {
		errs = append(errs, q.Close())
	}
	_ = b.nc.FlushTimeout(2 * time.Second)
	b.nc.Close()
	return errors.Join(errs...)
}

// bucket returns the key/value bucket called name, creating it with ttl
// (0: keys never expire) when it does not exist.
func (b *Broker) bucket(ctx context.Context, name string, ttl time.Duration) (jetstream.KeyValue, error) {
	b.mu.Lock()
	kv := b.buckets[name]
	b.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	storage := jetstream.FileStorage
	if b.o.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	kv, err := b.js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, TTL: ttl, Storage: storage,
			Replicas: b.o.Replicas, Description: "Sluice " + strings.TrimPrefix(name, b.o.Prefix+"_")})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = b.js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("nats: bucket %s: %w", name, err)
	}
	b.mu.Lock()
	b.buckets[name] = kv
	b.mu.Unlock()
	return kv, nil
}

// DeleteAll deletes every stream and key/value bucket of the broker's
// prefix: every queue, checkpoint and lease. It is for tests and for tearing
// a deployment down; nothing asks for confirmation.
func (b *Broker) DeleteAll(ctx context.Context) error {
	names, err := b.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		s, _ := streamName(b.o.Prefix, n)
		if err := b.js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, err)
		}
	}
	for _, bucket := range []string{stateBucket(b.o.Prefix), leaseBucket(b.o.Prefix), releasedBucket(b.o.Prefix)} {
		if err := b.js.DeleteKeyValue(ctx, bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			errs = append(errs, err)
		}
	}
	b.mu.Lock()
	clear(b.buckets)
	b.mu.Unlock()
	return errors.Join(errs...)
}
