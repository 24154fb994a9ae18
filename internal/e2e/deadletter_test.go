package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A sink that cannot write fills its dead-letter queue after max_attempts;
// once the target is fixed, `sluice queues replay` puts the messages back
// and every one arrives.
func TestDeadLetterAndReplay(t *testing.T) {
	dir := t.TempDir()
	pipeline := `
pipelines:
  p:
    sources:
      - name: gen
        type: generate
        count: 50
        batch_size: 10
        record:
          n: record.seq
    queues:
      q: {max_attempts: 2, backoff: {initial: 10ms, max: 50ms}}
    sinks:
      - name: out
        type: file
        base_dir: out
        path: blocked/records.jsonl
`
	write(t, filepath.Join(dir, "pipeline.yaml"), pipeline)
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The sink's directory is a regular file: every write fails.
	write(t, filepath.Join(dir, "out", "blocked"), "not a directory")

	out, err := run(t, dir, "run", "-c", "pipeline.yaml", "--data-dir", "data", "--once")
	if err == nil {
		t.Fatalf("run --once succeeded although everything was dead-lettered:\n%s", out)
	}
	if !strings.Contains(out, "dead-lettered 50") {
		t.Fatalf("summary does not report 50 dead letters:\n%s", out)
	}
	list, err := run(t, dir, "queues", "list", "--data-dir", "data")
	if err != nil {
		t.Fatalf("queues list: %v\n%s", err, list)
	}
	if !dlqLineHas(list, "p/q.dlq", "50") {
		t.Fatalf("queues list does not show 50 dead letters:\n%s", list)
	}
	dlq, err := run(t, dir, "queues", "dlq", "p/q", "--data-dir", "data", "-n", "100")
	if err != nil || !strings.Contains(dlq, "50 dead letter(s) shown") || !strings.Contains(dlq, "blocked") {
		t.Fatalf("queues dlq: %v\n%s", err, dlq)
	}

	// Fix the target, replay, run again: every record arrives once.
	if err := os.Remove(filepath.Join(dir, "out", "blocked")); err != nil {
		t.Fatal(err)
	}
	rep, err := run(t, dir, "queues", "replay", "p/q.dlq", "--data-dir", "data")
	if err != nil || !strings.Contains(rep, "replayed 50 message(s)") {
		t.Fatalf("replay: %v\n%s", err, rep)
	}
	out, err = run(t, dir, "run", "-c", "pipeline.yaml", "--data-dir", "data", "--once")
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	lines := outputLines(t, filepath.Join(dir, "out"))
	if len(lines) != 50 {
		t.Fatalf("%d records delivered after replay, want 50:\n%s", len(lines), out)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Fatalf("duplicate record %s", l)
		}
		seen[l] = true
	}
	list, _ = run(t, dir, "queues", "list", "--data-dir", "data")
	if !dlqLineHas(list, "p/q.dlq", "0") {
		t.Fatalf("dead-letter queue not empty after replay:\n%s", list)
	}
}

func dlqLineHas(list, queue, count string) bool {
	for _, l := range strings.Split(list, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == queue && f[1] == count {
			return true
		}
	}
	return false
}

func TestSecondAgentOnDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pipeline.yaml"), `
pipelines:
  p:
    sources: [{name: gen, type: generate, rate: 10, record: {n: record.seq}}]
    queues: {q: {}}
    sinks: [{name: out, type: stdout}]
`)
	a := startAgent(t, dir, "-c", "pipeline.yaml", "--data-dir", "data")
	waitFor(t, "the first agent to lock the data dir", 20*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "data", "LOCK"))
		return err == nil && strings.Contains(a.output(), "sluice running")
	})
	out, err := run(t, dir, "run", "-c", "pipeline.yaml", "--data-dir", "data")
	if err == nil || !strings.Contains(out, "locked") {
		t.Fatalf("second agent was not refused: %v\n%s", err, out)
	}
	// read-only commands work while the agent runs
	if list, err := run(t, dir, "queues", "list", "--data-dir", "data"); err != nil || !strings.Contains(list, "p/q") {
		t.Fatalf("queues list while running: %v\n%s", err, list)
	}
	a.stop(20 * time.Second)
}
