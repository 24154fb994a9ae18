// Package broker holds Sluice's queues: the Queue interface the engine uses
// and its backends. The disk backend (package broker/disk, the default) keeps
// every queue as an append-only log under the data dir and returns from
// Enqueue only once the messages are on disk; the memory backend (this
// package, explicit opt-in) keeps nothing across restarts.
//
// A queue has consumer groups: every sink reading a queue is a group with its
// own cursor (publish/subscribe), and the workers inside a group compete for
// its messages (point-to-point). A message a worker received but neither
// acked nor nacked within the visibility timeout is delivered again.
package broker

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// Broker opens queues. Implementations are safe for concurrent use.
type Broker interface {
	// Open returns the queue called name, creating it when it does not exist.
	// Opening a queue that is already open returns the same queue, with opts
	// updated. A queue's name may contain "/" to group queues by pipeline.
	Open(name string, opts Options) (Queue, error)
	// List returns the names of every queue the broker holds, sorted,
	// including dead-letter queues.
	List() ([]string, error)
	// Close closes every open queue; the broker is unusable afterwards.
	Close() error
}

// Queue is a durable FIFO with consumer groups.
type Queue interface {
	// Name returns the queue's name.
	Name() string
	// Enqueue appends msgs as one unit and returns once they are durable
	// (for the memory backend: stored). It blocks while the queue is full
	// (back-pressure) until room frees up or ctx is done. Many goroutines may
	// call Enqueue at once; their writes share commits. Messages keep their
	// ID; a message without one gets a random ID. Enqueue does not retain
	// msgs' slices after it returns, but it may retain records.
	Enqueue(ctx context.Context, msgs []adapters.Message) error
	// Consumer returns the consumer group called group, creating it at the
	// oldest message still retained when it is new.
	Consumer(group string) (Consumer, error)
	// DeadLetters returns the queue's dead-letter queue, or nil when this
	// queue is itself a dead-letter queue.
	DeadLetters() Queue
	// Peek returns up to n messages from the oldest retained one, without
	// consuming them: for browsing queues and dead letters.
	Peek(ctx context.Context, n int) ([]adapters.Message, error)
	// Purge deletes every message of the queue for every group and returns
	// how many messages there were.
	Purge(ctx context.Context) (int64, error)
	// Stats returns counters and gauges of the queue.
	Stats() Stats
	// Close releases the queue; Open makes it usable again.
	Close() error
}

// Consumer is one consumer group of a queue. Its methods are safe for
// concurrent use by the group's workers.
type Consumer interface {
	// Receive blocks until at least one message is deliverable, then returns
	// up to max of them; each must be settled with Ack, Nack or Release, or
	// it is delivered again after the visibility timeout.
	Receive(ctx context.Context, max int) ([]Delivery, error)
	// Ack settles deliveries as done; they are never delivered to this group
	// again. The ack is durable when Ack returns.
	Ack(ctx context.Context, ds []Delivery) error
	// Nack settles deliveries as failed with cause. A permanent cause
	// (adapters.KindOf) moves them to the dead-letter queue at once; a
	// transient one schedules a retry after the queue's backoff, or moves
	// them to the dead-letter queue after max_attempts.
	Nack(ctx context.Context, ds []Delivery, cause error) error
	// Release hands deliveries back for redelivery without charging an
	// attempt: the sink could not try them (its target is down).
	Release(ctx context.Context, ds []Delivery) error
}

// Delivery is a message handed to a consumer, with the backend's handle.
type Delivery struct {
	Message adapters.Message
	// Token identifies the delivery to the backend.
	Token uint64
}

// Options configure a queue. Zero values take the defaults of Defaults.
type Options struct {
	// MaxBytes and MaxMessages bound the retained data; Enqueue blocks at
	// either limit. Zero means unbounded.
	MaxBytes    int64
	MaxMessages int64
	// MaxAttempts is how many deliveries a message gets before it is
	// dead-lettered; zero means Defaults.MaxAttempts, negative unlimited.
	MaxAttempts int
	// Backoff schedules retries after a transient nack.
	Backoff Backoff
	// VisibilityTimeout is how long a received message stays hidden from
	// other workers before it is delivered again.
	VisibilityTimeout time.Duration
	// SegmentBytes is the size at which the disk backend starts a new
	// segment file.
	SegmentBytes int64
	// InlineMax is the payload size above which the disk backend stores the
	// payload as a blob file beside the log (claim check).
	InlineMax int64
	// Groups, when not nil, are the consumer groups expected to read the
	// queue. Groups found on disk but not listed are removed at Open, so a
	// sink that was removed from the config does not hold back retention.
	Groups []string
}

// Backoff is an exponential backoff schedule.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	// Jitter is the fraction (0 to 1) of each delay that is randomised.
	Jitter float64
}

// Defaults are the options a queue gets for every zero field.
var Defaults = Options{
	MaxBytes:          1 << 30,
	MaxMessages:       0,
	MaxAttempts:       5,
	Backoff:           Backoff{Initial: time.Second, Max: 5 * time.Minute, Multiplier: 2, Jitter: 0.2},
	VisibilityTimeout: 30 * time.Second,
	SegmentBytes:      64 << 20,
	InlineMax:         1 << 20,
}

// WithDefaults returns o with every zero field set from Defaults.
func (o Options) WithDefaults() Options {
	d := Defaults
	if o.MaxBytes == 0 {
		o.MaxBytes = d.MaxBytes
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.Backoff.Initial == 0 {
		o.Backoff.Initial = d.Backoff.Initial
	}
	if o.Backoff.Max == 0 {
		o.Backoff.Max = d.Backoff.Max
	}
	if o.Backoff.Multiplier == 0 {
		o.Backoff.Multiplier = d.Backoff.Multiplier
	}
	if o.VisibilityTimeout == 0 {
		o.VisibilityTimeout = d.VisibilityTimeout
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = d.SegmentBytes
	}
	if o.InlineMax == 0 {
		o.InlineMax = d.InlineMax
	}
	return o
}

// Delay returns the wait before delivery attempt number attempt+1, after
// attempt failed ones (attempt >= 1).
func (b Backoff) Delay(attempt int) time.Duration {
	d := float64(b.Initial)
	for i := 1; i < attempt && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	if max := float64(b.Max); b.Max > 0 && d > max {
		d = max
	}
	if b.Jitter > 0 {
		d -= d * b.Jitter * rand.Float64()
	}
	return time.Duration(d)
}

// Stats describe a queue at one moment.
type Stats struct {
	Name string `json:"name"`
	// Messages and Bytes are what the queue retains (not yet acked by every
	// group); Full is true while Enqueue blocks on a limit.
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
	Full     bool  `json:"full"`
	// OldestAge is how long the oldest retained message has waited.
	OldestAge time.Duration `json:"oldest_age_ns"`
	// Enqueued counts messages accepted since the queue was opened.
	Enqueued int64 `json:"enqueued"`
	// DeadLettered counts messages moved to the dead-letter queue since open.
	DeadLettered int64 `json:"dead_lettered"`
	// Quarantined counts corrupt spans set aside since open.
	Quarantined int64 `json:"quarantined"`
	// Groups holds each consumer group's view.
	Groups []GroupStats `json:"groups"`
}

// GroupStats describe one consumer group.
type GroupStats struct {
	Name string `json:"name"`
	// Pending messages are retained and not yet acked by this group.
	Pending int64 `json:"pending"`
	// InFlight messages were received and not yet settled.
	InFlight int64 `json:"in_flight"`
	Acked    int64 `json:"acked"`
	Retried  int64 `json:"retried"`
}

// Dead-letter naming: the dead-letter queue of queue Q is Q + DLQSuffix.
const DLQSuffix = ".dlq"

// PipelineDLQ is the name, within a pipeline, of the pipeline's own
// dead-letter queue: messages that failed before reaching a queue (malformed
// records, expression errors, no matching route). On the broker it is
// "PIPELINE/dlq".
const PipelineDLQ = "dlq"

// IsDLQ reports whether name names a dead-letter queue: a queue's
// ("P/orders.dlq") or a pipeline's ("P/dlq"). Dead-letter queues have no
// dead-letter queue of their own, no size limits and unlimited attempts.
func IsDLQ(name string) bool {
	return strings.HasSuffix(name, DLQSuffix) || name == PipelineDLQ || strings.HasSuffix(name, "/"+PipelineDLQ)
}

// AsyncEnqueuer is an optional capability of a Queue that lets one producer
// keep several enqueues in flight while keeping their order: EnqueueAsync
// admits msgs (blocking only for back-pressure, until ctx is done) in call
// order and returns at once; wait blocks until they are durable and reports
// the outcome. Every returned wait must be called.
type AsyncEnqueuer interface {
	EnqueueAsync(ctx context.Context, msgs []adapters.Message) (wait func() error)
}

// OnlyGroupMeta marks a message replayed from a dead-letter queue as meant
// for one consumer group only (the one that failed it): the other groups of
// the queue skip it, so that replay does not duplicate it for sinks that had
// delivered it.
const OnlyGroupMeta = "sluice.only_group"

// Errors of the broker.
var (
	// ErrClosed is returned by operations on a closed queue or broker.
	ErrClosed = adapters.ErrClosed
	// ErrLocked is returned when another process holds the data dir.
	ErrLocked = errors.New("data dir is locked by another process")
	// ErrTooLarge is returned for a message larger than the queue's MaxBytes.
	ErrTooLarge = errors.New("message larger than the queue's max_bytes")
)
