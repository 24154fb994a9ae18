package adaptertest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/statestore"
)

// DefaultTimeout bounds each wait of the suite when a case sets none.
const DefaultTimeout = 10 * time.Second

// MemoryState returns an empty in-memory adapters.State.
func MemoryState() adapters.State { return statestore.Memory() }

// Logger returns a logger that writes to t.Log until the test ends, then
// discards: adapters may log from their goroutines after a test returned.
func Logger(t testing.TB) *slog.Logger {
	st := &tbState{t: t}
	t.Cleanup(func() {
		st.mu.Lock()
		st.t = nil
		st.mu.Unlock()
	})
	return slog.New(&tbHandler{st: st})
}

// tbState is shared by a handler and those derived from it.
type tbState struct {
	mu sync.Mutex
	t  testing.TB // nil once the test ended
}

type tbHandler struct {
	st    *tbState
	attrs []slog.Attr
}

func (h *tbHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *tbHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	if h.st.t != nil {
		h.st.t.Log(b.String())
	}
	return nil
}

func (h *tbHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &tbHandler{st: h.st, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *tbHandler) WithGroup(string) slog.Handler { return h }

// Resources returns the Resources the engine would pass: pipeline "test",
// the given name and state, and a Logger for t.
func Resources(t testing.TB, name string, state adapters.State) adapters.Resources {
	return adapters.Resources{Pipeline: "test", Name: name, Logger: Logger(t), State: state}
}

// NewSource decodes raw against the registered spec of source type typ and
// builds the source with Resources(t, typ, state). It fails the test on any
// error.
func NewSource(t testing.TB, typ string, raw map[string]any, state adapters.State) adapters.Source {
	t.Helper()
	spec, err := adapters.SourceSpec(typ)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "source"})
	if err != nil {
		t.Fatalf("config of source %s: %v", typ, err)
	}
	src, err := adapters.NewSource(typ, conf, Resources(t, typ, state))
	if err != nil {
		t.Fatalf("new source %s: %v", typ, err)
	}
	return src
}

// NewSink decodes raw against the registered spec of sink type typ and
// builds the sink. It fails the test on any error.
func NewSink(t testing.TB, typ string, raw map[string]any) adapters.Sink {
	t.Helper()
	spec, err := adapters.SinkSpec(typ)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "sink"})
	if err != nil {
		t.Fatalf("config of sink %s: %v", typ, err)
	}
	sink, err := adapters.NewSink(typ, conf, Resources(t, typ, MemoryState()))
	if err != nil {
		t.Fatalf("new sink %s: %v", typ, err)
	}
	return sink
}

// connect calls f until it succeeds, with a short backoff, as the engine
// does; it fails the test when timeout passes.
func connect(t testing.TB, what string, timeout time.Duration, f func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Connect kept failing for %s: %v", what, timeout, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// returnsWithin runs f and fails the test when it has not returned within
// timeout. It returns f's error.
func returnsWithin(t testing.TB, what string, timeout time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("%s did not return within %s", what, timeout)
		return nil
	}
}

func closeOK(t testing.TB, what string, timeout time.Duration, close func(context.Context) error) {
	t.Helper()
	for i := 1; i <= 2; i++ {
		err := returnsWithin(t, fmt.Sprintf("%s Close #%d", what, i), timeout, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return close(ctx)
		})
		if err != nil {
			t.Fatalf("%s Close #%d: %v (Close must be idempotent and return nil)", what, i, err)
		}
	}
}
