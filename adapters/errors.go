package adapters

import (
	"errors"
	"fmt"
)

var (
	// ErrNotConnected is returned by Read or Write when the connection to the
	// peer was lost; the engine calls Connect again (with backoff) and retries.
	ErrNotConnected = errors.New("not connected")
	// ErrEndOfInput is returned by Read when a source has nothing more to
	// emit, ever (a generate source with a count) or for this run (run --once).
	ErrEndOfInput = errors.New("end of input")
	// ErrClosed is returned by calls on a closed source, sink or queue.
	ErrClosed = errors.New("closed")
)

// Kind classifies a failure to deliver or read a message.
type Kind int

const (
	// Transient failures are retried with backoff up to max_attempts, then
	// dead-lettered. An unclassified error is transient.
	Transient Kind = iota
	// Permanent failures will fail again however often they are retried (bad
	// data, a constraint violation): the message is dead-lettered at once.
	Permanent
	// Unavailable means the target as a whole is down (connection refused,
	// authentication failure, every request timing out). The sink backs off
	// as a whole and the waiting messages are charged no attempt.
	Unavailable
)

func (k Kind) String() string {
	switch k {
	case Permanent:
		return "permanent"
	case Unavailable:
		return "unavailable"
	default:
		return "transient"
	}
}

type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// WithKind marks err as being of kind k. It returns nil for a nil err.
func WithKind(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: k, err: err}
}

// PermanentError marks err as permanent: retrying cannot help.
func PermanentError(err error) error { return WithKind(Permanent, err) }

// UnavailableError marks err as an outage of the target as a whole.
func UnavailableError(err error) error { return WithKind(Unavailable, err) }

// KindOf reports how err is classified. The outermost classification wins;
// an unclassified error is Transient.
func KindOf(err error) Kind {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return Transient
}

// BatchError reports which messages of a Write failed. Messages whose index is
// absent from Failed were written successfully and are acknowledged.
type BatchError struct {
	// Failed maps the index of a message in the batch to its error.
	Failed map[int]error
}

// NewBatchError returns an empty BatchError sized for n failures.
func NewBatchError(n int) *BatchError { return &BatchError{Failed: make(map[int]error, n)} }

// Fail records the failure of message i.
func (e *BatchError) Fail(i int, err error) { e.Failed[i] = err }

// Err returns e when it records failures and nil otherwise.
func (e *BatchError) Err() error {
	if e == nil || len(e.Failed) == 0 {
		return nil
	}
	return e
}

func (e *BatchError) Error() string {
	for _, err := range e.Failed {
		if len(e.Failed) == 1 {
			return err.Error()
		}
		return fmt.Sprintf("%d messages failed, for example: %v", len(e.Failed), err)
	}
	return "batch failed"
}

// RecordError is a malformed record: the codec could not decode it. Decoders
// return it for one record and may then continue with the next.
type RecordError struct {
	Path   string // file or object the record came from, when known
	Record int64  // 1-based record number
	Line   int64  // 1-based line number, when the format has lines
	Offset int64  // byte offset of the record's start
	Err    error
}

func (e *RecordError) Error() string {
	where := e.Path
	if where != "" {
		where += ": "
	}
	if e.Line > 0 {
		return fmt.Sprintf("%srecord %d (line %d, byte offset %d): %v", where, e.Record, e.Line, e.Offset, e.Err)
	}
	return fmt.Sprintf("%srecord %d (byte offset %d): %v", where, e.Record, e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
