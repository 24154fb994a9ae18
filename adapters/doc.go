// Package adapters is Sluice's public extension API.
//
// A source reads from an outside system and emits batches of messages; a sink
// writes messages to an outside system; a codec turns bytes into records and
// back. Each is registered under a type name together with a Spec, the single
// source of truth for its configuration: the Spec decodes a config block
// (rejecting unknown keys), fills defaults, validates, and documents itself for
// `sluice adapters NAME` and the JSON schema.
//
// The lifecycle follows database/sql and Caddy: a factory builds a value from
// its decoded Config and does no I/O; Connect may be called again after a
// failure (the engine retries it with backoff); Read and Write take the
// context of each call; Close is idempotent and safe after a failed Connect.
//
// Delivery contract (at least once): the engine enqueues every message of a
// source batch durably, then calls the batch's Ack with a nil error, and only
// then may the source commit its position. A sink's Write returns nil only
// once every message is safely in the target; the engine then acknowledges
// them in the queue. Errors are classified where the knowledge is, in the
// adapter: Permanent (the message is bad: dead-letter it at once), Unavailable
// (the target is down: back off as a whole, charge no attempt) and transient
// (everything else: retry with backoff up to max_attempts).
package adapters
