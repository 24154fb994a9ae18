// Package pipeline is Sluice's engine: it loads and validates pipeline
// configs, builds each pipeline's graph (sources → stages → queues → sinks)
// and runs it with the at-least-once contract: a source batch is acked only
// after every message is durably enqueued, and a queue message is acked only
// after its sink wrote it.
package pipeline
