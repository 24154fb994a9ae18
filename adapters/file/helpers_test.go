package file

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/filekit/filekittest"
	"github.com/sluicehq/sluice/internal/statestore"
)

func init() { filekittest.RegisterCodecs() }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func res(t testing.TB, st adapters.State, once bool) adapters.Resources {
	return adapters.Resources{Pipeline: "p", Name: "files", Logger: testLogger(t), State: st, Once: once}
}

func decode(t testing.TB, spec *adapters.Spec, raw map[string]any) *adapters.Config {
	t.Helper()
	conf, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "test"})
	if err != nil {
		t.Fatalf("decode config: %v", err)
	}
	return conf
}

// newTestSink builds and connects a file sink.
func newTestSink(t testing.TB, raw map[string]any, st adapters.State) adapters.Sink {
	t.Helper()
	s, err := newSink(decode(t, sinkSpec(), raw), res(t, st, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// newTestSource builds and connects a file source.
func newTestSource(t testing.TB, raw map[string]any, st adapters.State, once bool) adapters.Source {
	t.Helper()
	s, err := newSource(decode(t, sourceSpec(), raw), res(t, st, once))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func newState() adapters.State { return statestore.Memory() }

// readAll reads until end of input (Once sources), acking every batch.
func readAll(t testing.TB, src adapters.Source) []adapters.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []adapters.Message
	for {
		b, err := src.Read(ctx)
		if errors.Is(err, adapters.ErrEndOfInput) {
			return out
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, b.Messages...)
		if b.Ack != nil {
			if err := b.Ack(ctx, nil); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
}

// readN reads batches until n messages arrived, acking them.
func readN(t testing.TB, src adapters.Source, n int, timeout time.Duration) []adapters.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []adapters.Message
	for len(out) < n {
		b, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d of %d messages: %v", len(out), n, err)
		}
		out = append(out, b.Messages...)
		if b.Ack != nil {
			if err := b.Ack(ctx, nil); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
	return out
}

func lines(msgs []adapters.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		s, _ := m.Record["line"].(string)
		out[i] = s
	}
	return out
}

func writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, name, content string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tree lists the files under dir (relative, sorted), hidden ones included.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(r))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func recs(n int, f func(i int) adapters.Record) []adapters.Message {
	out := make([]adapters.Message, n)
	for i := range out {
		out[i] = adapters.Message{ID: adapters.NewID("m", string(rune('a'+i%26)), strings.Repeat("x", i/26)), Record: f(i)}
	}
	return out
}
