package transform

import (
	"fmt"
	"sort"
	"sync"

	"github.com/sluicehq/sluice/adapters"
)

// Stage transforms messages between sources and queues.
//
// A stage is built once per pipeline and called from one goroutine per
// source; Apply must not keep state between calls except through the Runner
// it is given, so one Stage can serve every source.
type Stage interface {
	// Apply processes m and appends what it produces to out: nothing (a
	// filter dropped it), m itself (possibly modified: Apply owns m's record),
	// or several messages (split). An error fails m only: the engine sends it
	// to the dead-letter queue with the error and goes on.
	Apply(r *Runner, m adapters.Message, out []adapters.Message) ([]adapters.Message, error)
}

// Router decides which queues a message goes to. A route stage is a Router
// and must be the last stage of a chain.
type Router interface {
	// Route returns the queues m goes to. An empty result with a nil error
	// means no route matched.
	Route(r *Runner, m *adapters.Message) ([]string, error)
	// Queues returns every queue the router can send to.
	Queues() []string
}

// BuildContext tells a stage factory where its config sits, for errors, and
// what the pipeline declares.
type BuildContext struct {
	File string
	// Path is the key path of the stage's value, e.g. pipelines.p.stages[2].map.
	Path string
	// Line returns the line of a key path, or 0.
	Line func(path string) int
	// Queues declared by the pipeline.
	Queues map[string]bool
}

// Errorf returns a *adapters.FieldError at path (the stage's own path when
// path is empty).
func (c *BuildContext) Errorf(path, format string, args ...any) *adapters.FieldError {
	if path == "" {
		path = c.Path
	}
	line := 0
	if c.Line != nil {
		line = c.Line(path)
	}
	return &adapters.FieldError{File: c.File, Path: path, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// StageFactory builds a stage from its raw YAML value. It reports every
// problem it finds, as adapters.Errors.
type StageFactory func(raw any, ctx *BuildContext) (Stage, error)

// StageDoc documents a stage type for `sluice adapters` and the schema.
type StageDoc struct {
	Summary     string
	Description string
	Example     string
	// Schema is the JSON Schema of the stage's value.
	Schema map[string]any
}

type stageEntry struct {
	doc     StageDoc
	factory StageFactory
}

var (
	stagesMu sync.RWMutex
	stages   = map[string]stageEntry{}
)

// RegisterStage adds a stage type. It panics on an empty name, a nil factory
// or a duplicate. Call it from init.
func RegisterStage(name string, doc StageDoc, f StageFactory) {
	if name == "" || f == nil {
		panic("transform: RegisterStage needs a name and a factory")
	}
	stagesMu.Lock()
	defer stagesMu.Unlock()
	if _, dup := stages[name]; dup {
		panic(fmt.Sprintf("transform: RegisterStage called twice for %q", name))
	}
	stages[name] = stageEntry{doc: doc, factory: f}
}

// Stages returns the registered stage types, sorted.
func Stages() []string {
	stagesMu.RLock()
	defer stagesMu.RUnlock()
	names := make([]string, 0, len(stages))
	for n := range stages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// StageDocOf returns the documentation of a stage type.
func StageDocOf(name string) (StageDoc, bool) {
	stagesMu.RLock()
	defer stagesMu.RUnlock()
	e, ok := stages[name]
	return e.doc, ok
}

// NewStage builds a stage of a registered type.
func NewStage(name string, raw any, ctx *BuildContext) (Stage, error) {
	stagesMu.RLock()
	e, ok := stages[name]
	stagesMu.RUnlock()
	if !ok {
		return nil, ctx.Errorf(ctx.Path, "unknown stage type %q (known: %s)", name, joinNames(Stages()))
	}
	return e.factory(raw, ctx)
}

// Output is a message leaving the stage chain: bound for Queues, or failed
// with Err (bound for the dead-letter queue).
type Output struct {
	Msg    adapters.Message
	Queues []string
	Err    error
}

// Chain is a pipeline's stages and its routing.
type Chain struct {
	stages []Stage
	router Router
	// fallback is the queue used when there is no route stage, as the
	// Queues of every Output (shared: Queues are read-only).
	fallback []string
}

// NewChain builds a chain. router may be nil, then every message goes to
// fallback.
func NewChain(stages []Stage, router Router, fallback string) *Chain {
	return &Chain{stages: stages, router: router, fallback: []string{fallback}}
}

// ErrNoRoute is the error of a message that matched no route and had no
// default queue; it goes to the dead-letter queue rather than being lost.
var ErrNoRoute = fmt.Errorf("no route matched and no default queue")

// Process runs m through the chain and appends the results to out. Dropped
// messages produce nothing. It reports how many messages filters dropped.
func (c *Chain) Process(r *Runner, m adapters.Message, out []Output) ([]Output, int) {
	// The message buffers live in the Runner, so a call allocates none;
	// the part used (hi) is cleared on return so as not to keep records
	// alive, and buffers grown large by a split are let go.
	cur := append(r.cur[:0], m)
	next := r.next[:0]
	hi := 1
	defer func() {
		clear(cur[:min(hi, cap(cur))])
		clear(next[:min(hi, cap(next))])
		if cap(cur)+cap(next) > 1024 {
			cur, next = nil, nil
		}
		r.cur, r.next = cur[:0], next[:0]
	}()
	dropped := 0
	for _, s := range c.stages {
		next = next[:0]
		for _, msg := range cur {
			before := len(next)
			var err error
			next, err = s.Apply(r, msg, next)
			if err != nil {
				next = next[:before]
				out = append(out, Output{Msg: msg, Err: err})
				continue
			}
			if len(next) == before {
				dropped++
			}
		}
		hi = max(hi, len(next))
		cur, next = next, cur
		if len(cur) == 0 {
			return out, dropped
		}
	}
	for i := range cur {
		msg := &cur[i] // not a copy whose address escapes: no allocation
		if c.router == nil {
			out = append(out, Output{Msg: *msg, Queues: c.fallback})
			continue
		}
		qs, err := c.router.Route(r, msg)
		switch {
		case err != nil:
			out = append(out, Output{Msg: *msg, Err: err})
		case len(qs) == 0:
			out = append(out, Output{Msg: *msg, Err: ErrNoRoute})
		default:
			out = append(out, Output{Msg: *msg, Queues: qs})
		}
	}
	return out, dropped
}

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}
