package sftp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	"github.com/sluicehq/sluice/adapters/filekit/filekittest"
	"github.com/sluicehq/sluice/internal/testenv"
	_ "github.com/sluicehq/sluice/transform/codec"
)

func init() { filekittest.RegisterCodecs() }

// conf returns the connection settings for srv plus kv.
func conf(srv *testenv.SSHDServer, kv ...any) map[string]any {
	raw := map[string]any{
		"address": srv.Addr, "user": srv.User, "key_file": srv.KeyFile, "known_hosts": srv.KnownHosts,
		"connect_timeout": "5s", "keepalive": "2s",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		raw[kv[i].(string)] = kv[i+1]
	}
	return raw
}

// srcConf is conf for a source reading dir with test-lines, immediately.
func srcConf(srv *testenv.SSHDServer, dir string, kv ...any) map[string]any {
	return conf(srv, append([]any{"path", dir, "codec", "test-lines", "ready", "immediate", "scan_interval", "20ms"}, kv...)...)
}

func decodeConf(t testing.TB, spec *adapters.Spec, raw map[string]any) *adapters.Config {
	t.Helper()
	c, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "test"})
	if err != nil {
		t.Fatalf("decode config: %v", err)
	}
	return c
}

// newSrc builds (without connecting) an sftp source on raw.
func newSrc(t testing.TB, raw map[string]any, st adapters.State, once bool) adapters.Source {
	t.Helper()
	res := adaptertest.Resources(t, "remote", st)
	res.Once = once
	s, err := newSource(decodeConf(t, sourceSpec(), raw), res)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// openSrc builds and connects an sftp source.
func openSrc(t testing.TB, raw map[string]any, st adapters.State, once bool) adapters.Source {
	t.Helper()
	s := newSrc(t, raw, st, once)
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// openSink builds and connects an sftp sink.
func openSink(t testing.TB, raw map[string]any, st adapters.State) adapters.Sink {
	t.Helper()
	s, err := newSink(decodeConf(t, sinkSpec(), raw), adaptertest.Resources(t, "remote", st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// readAll reads a Once source to its end, acking every batch.
func readAll(t testing.TB, src adapters.Source) []adapters.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

// readN reads until n messages arrived, acking them.
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
		out[i], _ = m.Record["line"].(string)
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
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// jsonlRecords decodes the published (not hidden) files matching glob.
func jsonlRecords(t testing.TB, glob string) []adapters.Record {
	t.Helper()
	files, _ := filepath.Glob(glob)
	var out []adapters.Record
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, rec)
		}
		fh.Close()
	}
	return out
}

func numbered(prefix string, lo, hi int) string {
	var b strings.Builder
	for i := lo; i < hi; i++ {
		fmt.Fprintf(&b, "%s%d\n", prefix, i)
	}
	return b.String()
}

func rename(t testing.TB, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// serverDir starts a private sshd and names a directory sub below its
// root (not created).
func serverDir(t testing.TB, sub string) (*testenv.SSHDServer, string) {
	t.Helper()
	srv := testenv.SSHD(t)
	return srv, filepath.Join(srv.Root, sub)
}
