// Package exec provides the exec source and sink: a program written in any
// language runs as a child process of the agent and speaks Sluice's
// JSON-lines protocol over its stdin and stdout (docs/exec-protocol.md).
// Its stderr and its log messages go to the adapter's logger.
//
// One program runs per source or sink. The adapter restarts it, with a
// growing delay, when it exits; nothing is lost when it does: a source
// program is told which messages were durably enqueued (ack) and which were
// not (nack), and must emit again anything it was not acked for; a sink's
// unanswered messages fail the Write and the engine delivers them again.
package exec
