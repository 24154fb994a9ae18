package progress

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testkit"
)

func TestStatusLines(t *testing.T) {
	cfg := testkit.Load(t, `
pipelines:
  orders:
    sources: [{name: gen, type: kit_gen, count: 100, batch: 10, bad_every: 50}]
    queues: {q: {}}
    sinks: [{name: out, type: kit_sink, block: true, fail_mod: 10}]
`)
	agent, _ := testkit.Agent(t, cfg, nil)
	rt := agent.Runtime("orders")
	testkit.Eventually(t, "everything read", func() bool { return rt.Counters().Read == 100 })
	var out bytes.Buffer
	p := New(&out, time.Second)
	t0 := time.Now()
	p.Update(agent, t0)
	first := "orders               in       0/s  out       0/s  queued      98  dlq 2\n"
	if out.String() != first {
		t.Fatalf("first draw\n got %q\nwant %q", out.String(), first)
	}

	testkit.Unblock()
	testkit.Eventually(t, "everything settled", func() bool {
		c := rt.Counters()
		return c.Written == 90 && c.DeadLettered == 8
	})
	rt.Pause()
	out.Reset()
	p.Update(agent, t0.Add(2*time.Second))
	second := "\x1b[1A\r\x1b[J" + "orders               in       0/s  out      45/s  queued       0  dlq 10  [paused]\n"
	if out.String() != second {
		t.Fatalf("redraw\n got %q\nwant %q", out.String(), second)
	}

	// a log line goes above the status line
	out.Reset()
	if _, err := p.Writer().Write([]byte("level=INFO msg=hello")); err != nil {
		t.Fatal(err)
	}
	want := "\x1b[1A\r\x1b[J" + "level=INFO msg=hello\n" + strings.TrimPrefix(second, "\x1b[1A\r\x1b[J")
	if out.String() != want {
		t.Fatalf("log line\n got %q\nwant %q", out.String(), want)
	}
	out.Reset()
	p.Clear()
	if out.String() != "\x1b[1A\r\x1b[J" {
		t.Fatalf("clear = %q", out.String())
	}
	out.Reset()
	if _, err := p.Writer().Write([]byte("after\n")); err != nil || out.String() != "after\n" {
		t.Fatalf("log line without status lines = %q, %v", out.String(), err)
	}
}

func TestHuman(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1234: "1.2k", 12345: "12k", 999_999: "1000k", 1_234_567: "1.2M", 45_000_000: "45M"} {
		if got := human(v); got != want {
			t.Errorf("human(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestRunRedrawsAndClears(t *testing.T) {
	agent, _ := testkit.Agent(t, testkit.Load(t, `
pipelines:
  a: {sources: [{name: gen, type: kit_gen}], queues: {q: {}}, sinks: [{name: out, type: kit_sink}]}
  b: {sources: [{name: gen, type: kit_gen}], queues: {q: {}}, sinks: [{name: out, type: kit_sink}]}
`), nil)
	var out testkit.Buffer
	p := New(&out, 5*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, agent); close(done) }()
	testkit.Eventually(t, "a few redraws", func() bool { return strings.Count(out.String(), "\x1b[2A") >= 3 })
	cancel()
	<-done
	s := out.String()
	if !strings.HasPrefix(s, "a    ") || !strings.Contains(s, "\nb    ") || !strings.HasSuffix(s, "\x1b[2A\r\x1b[J") {
		t.Fatalf("output = %q", s)
	}
}
