// Package all registers every built-in adapter, codec and stage: import it
// for its side effects, as cmd/sluice does, to build a binary with the
// standard set.
package all
