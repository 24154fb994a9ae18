package adapters

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Record is a structured message body: field name to value. Values are one of
// nil, bool, int64, uint64, float64, string, []byte, time.Time,
// decimal.Decimal (github.com/shopspring/decimal), []any or Record
// (map[string]any), nested freely. Codecs produce only these types and the
// broker stores exactly these types; anything else is converted by the
// producer (int to int64, for example).
type Record = map[string]any

// Well-known metadata keys set by the engine and the built-in sources.
const (
	MetaSource   = "source"   // name of the source that read the message
	MetaPipeline = "pipeline" // name of the pipeline
	MetaPath     = "path"     // file path, for file-like sources
	MetaLine     = "line"     // 1-based line or record number within the file
	MetaOffset   = "offset"   // byte offset of the record within the file
	MetaError    = "error"    // why a message was dead-lettered
	MetaAttempts = "attempts" // delivery attempts made before dead-lettering
	MetaQueue    = "queue"    // queue a dead-lettered message came from
	MetaGroup    = "group"    // consumer group (sink) that failed it
	MetaFirstErr = "first_failure"
	MetaLastErr  = "last_failure"
)

// Message is one unit of data flowing through a pipeline.
//
// A message carries either a structured Record (decoded by a codec) or Raw
// bytes (codec "none": a whole file, an opaque payload), or both. Once a
// message has been handed to the engine, nobody may modify it: several sinks
// may read the same message concurrently.
type Message struct {
	// ID identifies the message. Sources set it deterministically where they
	// can (see NewID), so that a message re-read after a crash keeps its ID
	// and idempotent sinks can recognise it.
	ID string
	// Record is the structured body, or nil.
	Record Record
	// Raw is the unstructured body, or nil.
	Raw []byte
	// Meta holds string metadata: where the message came from and, in a
	// dead-letter queue, why it is there.
	Meta map[string]string
	// Time is when the source read the message; it measures end-to-end latency.
	Time time.Time
	// Attempt is the 1-based delivery attempt, set by the broker when it hands
	// the message to a sink.
	Attempt int
	// Err is set by a source for a record that could not be decoded. The
	// engine sends such a message straight to the pipeline's dead-letter
	// queue with the error text, and the rest of the batch goes on.
	Err error
}

// NewID returns a deterministic message ID built from the parts that identify
// a position in a source, for example the source name, a file path and a byte
// offset. The same parts always give the same ID.
func NewID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// SetMeta sets a metadata key, allocating the map when needed.
func (m *Message) SetMeta(key, value string) {
	if m.Meta == nil {
		m.Meta = make(map[string]string, 4)
	}
	m.Meta[key] = value
}

// CloneMeta returns a copy of the metadata map, for producers that derive a
// new message from an existing one.
func (m *Message) CloneMeta() map[string]string {
	out := make(map[string]string, len(m.Meta)+2)
	for k, v := range m.Meta {
		out[k] = v
	}
	return out
}
