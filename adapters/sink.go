package adapters

import "context"

// Sink writes messages to an outside system.
//
// With `workers: N` the engine calls Write from N goroutines concurrently, so
// implementations must be safe for concurrent use. Connect is called before
// the first Write and again after Write returned an error wrapping
// ErrNotConnected.
type Sink interface {
	// Connect opens connections to the target; it may be retried with backoff.
	Connect(ctx context.Context) error
	// Write delivers msgs to the target and returns nil only once every one
	// is safely there: the engine then acknowledges them in the queue and they
	// will not be delivered again. To fail only some messages, return a
	// *BatchError; any other error fails the whole batch. Classify errors
	// with PermanentError and UnavailableError; unclassified errors are
	// transient. Write must not modify or retain msgs after it returns.
	// ctx ends only when the agent stops waiting (the drain timeout): a
	// Write in progress during an ordinary shutdown is allowed to finish.
	Write(ctx context.Context, msgs []Message) error
	// Close flushes and releases every resource. It is idempotent: later
	// calls return nil.
	Close(ctx context.Context) error
}

// HealthChecker is an optional capability of sources and sinks: Health
// reports whether the peer is reachable right now, for /readyz.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Replier is an optional capability of sinks for request/reply pipelines:
// WriteReply is called instead of Write for a batch holding at least one
// message whose caller waits for an answer (Meta[MetaReplyTo] set). It
// writes every message as Write would, with the same error contract, and
// returns one reply record per message, in batch order (nil for a message
// without an answer, or one that failed); the engine hands the record of
// each message written to its caller as Reply.Record. Sinks reading a
// dead-letter queue are never asked for replies.
type Replier interface {
	WriteReply(ctx context.Context, msgs []Message) ([]Record, error)
}
