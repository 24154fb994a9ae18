// Package natsbroker is Sluice's NATS JetStream queue backend, for several
// agents sharing the work of the same pipelines (import path
// github.com/sluicehq/sluice/broker/nats; the package is called natsbroker
// so that it does not shadow nats.go).
//
// Each queue is a stream with interest retention (a message stays until
// every consumer group acked it) and discard-new limits (a full stream
// rejects publishes; Enqueue retries until they fit: back-pressure). Each
// consumer group (sink) is a durable pull consumer: the groups of a queue
// fan out, and every worker of a group, in any agent, competes on the same
// durable. Publishes carry the Sluice message ID as Nats-Msg-Id, so a
// message read twice within the duplicate window (a source re-reading after
// a crash or a take-over) is stored once. Checkpoints (State) and source
// leases (Lease) live in key/value buckets, so another agent resumes a
// source from the shared checkpoint. docs/nats.md describes the mapping and
// its limits.
package natsbroker
