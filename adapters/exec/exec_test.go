package exec_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	"github.com/sluicehq/sluice/adapters/exec"
	"github.com/sluicehq/sluice/pipeline"
)

func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_EXEC_HELPER") == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperConf is an exec config that runs this test binary as the program.
func helperConf(t testing.TB, config map[string]any, extra ...any) map[string]any {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{
		"command":         []any{exe},
		"env":             map[string]any{"SLUICE_EXEC_HELPER": "1", "GORACE": "atexit_sleep_ms=0"}, // a race-enabled child sleeps 1s at exit by default
		"config":          config,
		"restart_backoff": map[string]any{"initial": "10ms", "max": "100ms"},
		"stop_timeout":    "2s",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

func bg(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func killPID(t *testing.T, pidfile string) {
	t.Helper()
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

func TestConformanceSource(t *testing.T) {
	adaptertest.RunSource(t, adaptertest.SourceCase{
		Setup: func(t *testing.T) *adaptertest.SourcePeer {
			dir := t.TempDir()
			pidfile := filepath.Join(t.TempDir(), "pid")
			seq := 0
			return &adaptertest.SourcePeer{
				New: func(t *testing.T, state adapters.State) adapters.Source {
					return adaptertest.NewSource(t, "exec", helperConf(t, map[string]any{"mode": "spool", "dir": dir, "pidfile": pidfile}), state)
				},
				Produce: func(t *testing.T, n int) {
					for i := 0; i < n; i++ {
						seq++
						tmp := filepath.Join(dir, fmt.Sprintf(".%d.tmp", seq))
						if err := os.WriteFile(tmp, fmt.Appendf(nil, `{"n": %d}`, seq), 0o644); err != nil {
							t.Fatal(err)
						}
						if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("%06d.json", seq))); err != nil {
							t.Fatal(err)
						}
					}
				},
				Restart: func(t *testing.T) { killPID(t, pidfile) },
			}
		},
	})
}

func readJSONLines(t *testing.T, path string) []adapters.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []adapters.Record
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var rec map[string]any
		if err := jsonUnmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, rec)
	}
	return out
}

func TestConformanceSink(t *testing.T) {
	adaptertest.RunSink(t, adaptertest.SinkCase{
		Setup: func(t *testing.T) *adaptertest.SinkPeer {
			out := filepath.Join(t.TempDir(), "out.jsonl")
			pidfile := filepath.Join(t.TempDir(), "pid")
			return &adaptertest.SinkPeer{
				New: func(t *testing.T) adapters.Sink {
					return adaptertest.NewSink(t, "exec", helperConf(t, map[string]any{"mode": "file", "out": out, "pidfile": pidfile}))
				},
				Received: func(t *testing.T) []adapters.Record { return readJSONLines(t, out) },
				Reject: func(i int) adapters.Message {
					m := adaptertest.DefaultMessage(i)
					m.Record["bad"] = true
					return m
				},
				Restart: func(t *testing.T) { killPID(t, pidfile) },
			}
		},
	})
}

// logSink collects log records.
type logSink struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSink) WithGroup(string) slog.Handler      { return l }
func (l *logSink) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func newSource(t *testing.T, raw map[string]any, res adapters.Resources) adapters.Source {
	t.Helper()
	spec, _ := adapters.SourceSpec("exec")
	conf, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "source"})
	if err != nil {
		t.Fatal(err)
	}
	src, err := adapters.NewSource("exec", conf, res)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return src
}

// readAll reads until the source returns an error, acking with ackErr.
func readAll(t *testing.T, src adapters.Source, ackErr error) ([]adapters.Message, error) {
	t.Helper()
	var all []adapters.Message
	for {
		b, err := src.Read(bg(t))
		if err != nil {
			return all, err
		}
		all = append(all, b.Messages...)
		if b.Ack != nil {
			if err := b.Ack(bg(t), ackErr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestSourceEndAcksAndLogs(t *testing.T) {
	for _, acks := range []bool{true, false} {
		t.Run(fmt.Sprint("acks=", acks), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "answers")
			logs := &logSink{}
			src := newSource(t, helperConf(t, map[string]any{"mode": "end", "out": out}, "acks", acks),
				adapters.Resources{Pipeline: "p", Name: "legacy", Logger: slog.New(logs)})
			if err := src.Connect(bg(t)); err != nil {
				t.Fatal(err)
			}
			msgs, err := readAll(t, src, nil)
			if !errors.Is(err, adapters.ErrEndOfInput) {
				t.Fatalf("Read after end = %v, want ErrEndOfInput", err)
			}
			if len(msgs) != 3 {
				t.Fatalf("got %d messages, want 3", len(msgs))
			}
			m := msgs[0]
			if m.ID != adapters.NewID("exec", "legacy", "m1") || m.Meta[exec.MetaExecID] != "m1" {
				t.Fatalf("ID %q meta %v", m.ID, m.Meta)
			}
			want := fmt.Sprint(map[string]any{"n": int64(1), "big": uint64(1) << 63, "f": 1.5, "nested": map[string]any{"l": []any{int64(1), "x"}}})
			if got := fmt.Sprint(m.Record); got != want {
				t.Fatalf("record = %s, want %s", got, want)
			}
			if _, ok := m.Record["n"].(int64); !ok {
				t.Fatalf("n is %T, want int64", m.Record["n"])
			}
			if err := src.Close(bg(t)); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(out)
			wantAnswers := "ack m1 \nack m2 \nack m3 \n"
			if !acks {
				wantAnswers = ""
			}
			if string(b) != wantAnswers {
				t.Fatalf("the program got %q, want %q", b, wantAnswers)
			}
			for _, l := range []string{"DEBUG hello from the helper", "INFO helper starting in mode end"} {
				if !logs.has(l) {
					t.Errorf("log %q missing from %q", l, logs.msgs)
				}
			}
		})
	}
}

func TestSourceNackIsForwarded(t *testing.T) {
	out := filepath.Join(t.TempDir(), "answers")
	src := newSource(t, helperConf(t, map[string]any{"mode": "end", "out": out}), adaptertest.Resources(t, "s", nil))
	if err := src.Connect(bg(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, src, errors.New("queue full")); !errors.Is(err, adapters.ErrEndOfInput) {
		t.Fatal(err)
	}
	_ = src.Close(bg(t))
	b, _ := os.ReadFile(out)
	if string(b) != "nack m1 queue full\nnack m2 queue full\nnack m3 queue full\n" {
		t.Fatalf("the program got %q", b)
	}
}

func TestSourceExitZero(t *testing.T) {
	t.Run("once: a clean exit ends the source", func(t *testing.T) {
		res := adaptertest.Resources(t, "s", nil)
		res.Once = true
		src := newSource(t, helperConf(t, map[string]any{"mode": "exit0"}), res)
		if err := src.Connect(bg(t)); err != nil {
			t.Fatal(err)
		}
		msgs, err := readAll(t, src, nil)
		if !errors.Is(err, adapters.ErrEndOfInput) || len(msgs) != 3 {
			t.Fatalf("got %d messages and %v, want 3 and ErrEndOfInput", len(msgs), err)
		}
	})
	t.Run("otherwise the program is started again", func(t *testing.T) {
		src := newSource(t, helperConf(t, map[string]any{"mode": "exit0"}), adaptertest.Resources(t, "s", nil))
		if err := src.Connect(bg(t)); err != nil {
			t.Fatal(err)
		}
		msgs, err := readAll(t, src, nil)
		if !errors.Is(err, adapters.ErrNotConnected) || len(msgs) != 3 {
			t.Fatalf("got %d messages and %v, want 3 and ErrNotConnected", len(msgs), err)
		}
		if err := src.Connect(bg(t)); err != nil {
			t.Fatal(err)
		}
		again, _ := readAll(t, src, nil)
		if len(again) != 3 || again[0].ID != msgs[0].ID {
			t.Fatalf("the restarted program's messages: %d, first ID %v", len(again), again)
		}
	})
}

func TestSourceCrashIsReported(t *testing.T) {
	src := newSource(t, helperConf(t, map[string]any{"mode": "crash"}), adaptertest.Resources(t, "s", nil))
	if err := src.Connect(bg(t)); err != nil {
		t.Fatal(err)
	}
	msgs, err := readAll(t, src, nil)
	if len(msgs) != 1 || msgs[0].Meta[exec.MetaExecID] != "only" {
		t.Fatalf("messages written before the crash: %v", msgs)
	}
	if !errors.Is(err, adapters.ErrNotConnected) || !strings.Contains(err.Error(), "exited with status 3") || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("error = %v", err)
	}
}

func TestSourceMessageShapes(t *testing.T) {
	src := newSource(t, helperConf(t, map[string]any{"mode": "kinds"}), adaptertest.Resources(t, "s", nil))
	if err := src.Connect(bg(t)); err != nil {
		t.Fatal(err)
	}
	msgs, err := readAll(t, src, nil)
	if !errors.Is(err, adapters.ErrEndOfInput) {
		t.Fatal(err)
	}
	got := map[string]adapters.Message{}
	for _, m := range msgs {
		got[m.Meta[exec.MetaExecID]] = m
	}
	if len(got) != 5 {
		t.Fatalf("got %d messages, want 5 (the one without an id is dropped): %v", len(got), got)
	}
	if string(got["raw"].Raw) != "\x00\x01\x02" || got["raw"].Err != nil {
		t.Errorf("raw: %+v", got["raw"])
	}
	if string(got["text"].Raw) != "plain text" || got["text"].Err != nil {
		t.Errorf("text: %+v", got["text"])
	}
	for id, want := range map[string]string{"bad": "amount is not a number", "array": "must be a JSON object", "empty": "no record"} {
		if got[id].Err == nil || !strings.Contains(got[id].Err.Error(), want) {
			t.Errorf("%s: error %v, want %q", id, got[id].Err, want)
		}
	}
}

func TestHandshakeFailures(t *testing.T) {
	cases := []struct {
		name string
		conf map[string]any
		want []string
	}{
		{"no answer", helperConf(t, map[string]any{"mode": "no_hello"}, "hello_timeout", "200ms"), []string{"did not answer the hello within 200ms"}},
		{"wrong protocol", helperConf(t, map[string]any{"mode": "bad_protocol"}), []string{"speaks exec protocol 99", "this agent speaks 1"}},
		{"exits first", helperConf(t, map[string]any{"mode": "crash_before_hello"}), []string{"exited with status 4", "permission denied", "before answering the hello"}},
		{"no such program", map[string]any{"command": []any{"/nonexistent/prog"}}, []string{`exec source "s": start /nonexistent/prog`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := newSource(t, c.conf, adaptertest.Resources(t, "s", nil))
			err := src.Connect(bg(t))
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func newSink(t *testing.T, raw map[string]any) adapters.Sink {
	t.Helper()
	s := adaptertest.NewSink(t, "exec", raw)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Connect(bg(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSinkAnswers(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.jsonl")
	s := newSink(t, helperConf(t, map[string]any{"mode": "file", "out": out}))
	var msgs []adapters.Message
	for i, extra := range []string{"", "bad", "down", "odd", ""} {
		m := adaptertest.DefaultMessage(i)
		if extra != "" {
			m.Record[extra] = true
		}
		msgs = append(msgs, m)
	}
	msgs[4].ID = msgs[0].ID // the same message twice in a batch is answered once
	err := s.Write(bg(t), msgs)
	var be *adapters.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 3 {
		t.Fatalf("Write = %v, want a BatchError with 3 failures", err)
	}
	for i, want := range map[int]adapters.Kind{1: adapters.Permanent, 2: adapters.Unavailable, 3: adapters.Transient} {
		if k := adapters.KindOf(be.Failed[i]); k != want {
			t.Errorf("message %d: kind %v, want %v (%v)", i, k, want, be.Failed[i])
		}
	}
	if !strings.Contains(be.Failed[3].Error(), `unknown kind "sideways"`) {
		t.Errorf("unknown kind not reported: %v", be.Failed[3])
	}
	if recs := readJSONLines(t, out); len(recs) != 1 || fmt.Sprint(recs[0]["n"]) != "0" {
		t.Fatalf("written: %v", recs)
	}
}

func TestSinkTimeoutRestartsProgram(t *testing.T) {
	s := newSink(t, helperConf(t, map[string]any{"mode": "silent"}, "write_timeout", "200ms"))
	err := s.Write(bg(t), []adapters.Message{adaptertest.DefaultMessage(0), adaptertest.DefaultMessage(1)})
	var be *adapters.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 2 || adapters.KindOf(be.Failed[0]) != adapters.Transient || !strings.Contains(be.Failed[0].Error(), "write_timeout") {
		t.Fatalf("Write = %v, want two transient write_timeout failures", err)
	}
	err = s.Write(bg(t), []adapters.Message{adaptertest.DefaultMessage(0)})
	if !errors.Is(err, adapters.ErrNotConnected) {
		t.Fatalf("Write after the program was stopped = %v, want ErrNotConnected", err)
	}
	if err := s.Connect(bg(t)); err != nil {
		t.Fatalf("reconnect: %v", err)
	}
}

func TestSinkProgramDiesMidBatch(t *testing.T) {
	s := newSink(t, helperConf(t, map[string]any{"mode": "die_after_first"}))
	msgs := []adapters.Message{adaptertest.DefaultMessage(0), adaptertest.DefaultMessage(1), adaptertest.DefaultMessage(2)}
	err := s.Write(bg(t), msgs)
	var be *adapters.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a BatchError", err)
	}
	if _, failed := be.Failed[0]; failed || len(be.Failed) != 2 {
		t.Fatalf("failures = %v, want messages 1 and 2 only", be.Failed)
	}
	e := be.Failed[1]
	if adapters.KindOf(e) != adapters.Transient || !strings.Contains(e.Error(), "exited with status 1") || !strings.Contains(e.Error(), "segmentation fault") {
		t.Fatalf("failure = %v", e)
	}
}

func TestRelativeDirAndShellProgram(t *testing.T) {
	dir := t.TempDir()
	script := `read hello
echo '{"type":"hello","protocol":1}'
echo '{"type":"message","id":"1","text":"from sh"}'
echo '{"type":"end"}'
cat >/dev/null
`
	if err := os.WriteFile(filepath.Join(dir, "prog.sh"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, _ := adapters.SourceSpec("exec")
	conf, err := adapters.Decode(spec, map[string]any{"command": []any{"sh", "prog.sh"}},
		adapters.DecodeOptions{File: filepath.Join(dir, "pipeline.yaml"), Path: "pipelines.p.sources[0]", Ignore: []string{"name", "type"}})
	if err != nil {
		t.Fatal(err)
	}
	src, err := adapters.NewSource("exec", conf, adaptertest.Resources(t, "sh", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	if err := src.Connect(bg(t)); err != nil {
		t.Fatal(err)
	}
	msgs, err := readAll(t, src, nil)
	if !errors.Is(err, adapters.ErrEndOfInput) || len(msgs) != 1 || string(msgs[0].Raw) != "from sh" {
		t.Fatalf("got %v, %v", msgs, err)
	}
}

func TestSpecRejectsBadConfig(t *testing.T) {
	spec, _ := adapters.SourceSpec("exec")
	cases := []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"command": []any{}}, "source.command: must name a program"},
		{map[string]any{"command": "x", "restart_backoff": map[string]any{"initial": "2s", "max": "1s"}}, "source.restart_backoff.max: must be at least initial (2s)"},
		{map[string]any{"command": "x", "stderr_level": "loud"}, `source.stderr_level: invalid value "loud"`},
		{map[string]any{"command": "x", "batch_size": 0}, "source.batch_size: must be 1 or more"},
		{map[string]any{"command": "x", "commands": "y"}, `unknown key "commands"`},
	}
	for _, c := range cases {
		_, err := adapters.Decode(spec, c.raw, adapters.DecodeOptions{Path: "source"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%v) = %v, want %q", c.raw, err, c.want)
		}
	}
}

func TestExampleConfigLoads(t *testing.T) {
	b, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.LoadBytes("example.yaml", b, pipeline.LoadOptions{Env: func(string) (string, bool) { return "", false }}); err != nil {
		t.Fatal(err)
	}
}

// A program that never reads its stdin must not hold the engine up: after
// one bounded wait, its acks are dropped at once (it emits unacked items
// again when it restarts, so nothing is lost).
func TestSourceProgramThatDoesNotReadAcks(t *testing.T) {
	defer exec.SetAckQueueWait(20 * time.Millisecond)()
	logs := &logSink{}
	src := newSource(t, helperConf(t, map[string]any{"mode": "deaf", "count": 8000}, "batch_size", 1, "stop_timeout", "100ms"),
		adapters.Resources{Pipeline: "p", Name: "deaf", Logger: slog.New(logs)})
	if err := src.Connect(bg(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := 0
	for {
		b, err := src.Read(ctx)
		if errors.Is(err, adapters.ErrEndOfInput) {
			break
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", n, err)
		}
		n += len(b.Messages)
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n != 8000 {
		t.Fatalf("read %d messages, want 8000", n)
	}
	if !logs.has("does not read its stdin") {
		t.Fatal("no warning about the program not reading its stdin")
	}
}
