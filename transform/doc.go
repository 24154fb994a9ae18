// Package transform compiles and runs Sluice's expressions, templates and
// stages.
//
// Expressions are expr-lang (github.com/expr-lang/expr) programs compiled
// once, when a pipeline is built, with two variables in scope: record (the
// message's fields) and meta (its string metadata), plus the function library
// of this package. Templates are strings with {{ expression }} holes, a
// syntax chosen so that it cannot be confused with the ${VAR} environment
// expansion done when configs are loaded.
//
// Stages (map, filter, route, split, ...) form a Chain that turns one source
// message into zero or more messages, each routed to one or more queues or
// failed with an error bound for the dead-letter queue.
package transform
