package adapters

import (
	"context"
	"log/slog"
	"time"
)

// Source reads messages from an outside system.
//
// The engine calls Connect, then Read in a loop from a single goroutine; Read
// and Connect are never called concurrently with each other. Close may be
// called at any time after the factory returned, more than once, and also
// concurrently with a blocked Read, which it must unblock.
type Source interface {
	// Connect opens connections to the peer. It is called before the first
	// Read and again whenever Read returned ErrNotConnected; the engine retries
	// failures with backoff. It must not block longer than ctx allows.
	Connect(ctx context.Context) error
	// Read blocks until at least one message is available, ctx is done, or the
	// source is closed, and returns a batch. It returns ErrEndOfInput when
	// there is nothing more to read (a finite source, or Resources.Once).
	Read(ctx context.Context) (Batch, error)
	// Close releases every resource. It is idempotent: later calls return
	// nil. It must return promptly and unblock a Read in progress, which
	// then returns an error (ErrClosed or ctx's).
	Close(ctx context.Context) error
}

// Batch is what a source's Read returns: messages and the function that
// settles them.
type Batch struct {
	// Messages of the batch, in source order. The engine takes ownership.
	Messages []Message
	// Ack is called at most once for the batch, from an engine goroutine
	// other than Read's, so it may run concurrently with the next Read:
	// with a nil error after every message has been durably enqueued (the
	// source may now commit the position of the batch), or with the reason
	// the batch was not enqueued (shutdown, a full queue when ctx ended).
	// Acks arrive in the order the batches were read; an empty batch is
	// acked at once. Ack may be nil when the source keeps no position. An
	// error returned by Ack is logged and stops the source, which is
	// restarted; the batches read after it are not acked. A batch that was
	// never acked with nil (the pipeline stopped first, or an earlier Ack
	// failed) was not committed: a source re-created with the same State
	// must read it again, with the same message IDs.
	Ack func(ctx context.Context, err error) error
}

// SourceFactory builds a source from its decoded configuration. It must do no
// I/O: Connect does that. It is called once per pipeline start.
type SourceFactory func(conf *Config, res Resources) (Source, error)

// SinkFactory builds a sink from its decoded configuration. It must do no I/O.
type SinkFactory func(conf *Config, res Resources) (Sink, error)

// Resources are what the engine hands to every adapter it builds.
type Resources struct {
	// Pipeline and Name identify the adapter instance ("orders", "partner-drop").
	Pipeline string
	Name     string
	// Logger already carries the pipeline and component attributes.
	Logger *slog.Logger
	// State is a durable key/value store private to this adapter instance,
	// for checkpoints: file offsets, processed-file lists, SQL watermarks.
	// It survives restarts and config reloads. It is nil when validating.
	State State
	// Once is true under `sluice run --once`: sources read what is available
	// now, then return ErrEndOfInput.
	Once bool
	// Replies routes the answers of request/reply pipelines (see
	// MetaReplyTo). The engine always sets it; it is nil when validating.
	Replies Replies
	// Backpressure reports whether a queue the pipeline's sources feed is
	// full right now, so that the next batch's enqueue would block. A
	// source that can refuse work cheaply (an HTTP server answering 503)
	// checks it before accepting more. It is cheap to call (the engine
	// caches the answer for a few milliseconds) and nil when validating.
	Backpressure func() bool
}

// State is a durable key/value store. Put and Delete return only after the
// change is durable. Implementations are safe for concurrent use.
type State interface {
	// Get returns the value stored under key and whether it exists.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Put stores value under key, durably.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key, durably. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns every key starting with prefix, with its value.
	List(ctx context.Context, prefix string) (map[string][]byte, error)
}

// LagReporter is an optional capability of sources that know how much input
// waits to be read (bytes left in a file, files waiting in a folder, rows
// past the watermark): Lag reports it for the sluice_source_lag_* metrics.
// It is called from metrics scrapes, concurrently with Read, and must be
// cheap: no network I/O, at most a stat.
type LagReporter interface {
	Lag() Lag
}

// Lag is how far a source is behind its input. A negative field is unknown.
type Lag struct {
	Messages int64         // records, rows or files waiting
	Bytes    int64         // bytes waiting
	Age      time.Duration // age of the oldest input not read yet
}
