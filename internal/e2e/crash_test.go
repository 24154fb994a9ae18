package e2e

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The agent is killed with SIGKILL at random moments while records flow
// from a generator through a disk queue into a file sink; after each kill it
// is restarted. At the end every record the generator produced has been
// published at least once: nothing acknowledged is lost, whatever the moment
// of the crash.
func TestKillNineUnderLoad(t *testing.T) {
	const total = 30000
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pipeline.yaml"), `
pipelines:
  crash:
    sources:
      - name: gen
        type: generate
        count: 30000
        rate: 10000
        batch_size: 200
        record:
          n: record.seq
    stages:
      - filter: record.n >= 0
    queues:
      q: {max_messages: 5000}
    sinks:
      - name: out
        type: file
        base_dir: out
        path: part.jsonl
        max_records: 2000
        batch_size: 300
`)
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	kills := 0
	for kills < 8 {
		a := startAgent(t, dir, "-c", "pipeline.yaml", "--data-dir", "data", "--log-level", "warn")
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		if err := a.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-a.done
		kills++
	}
	// Let the last run finish the rest and exit once everything is delivered.
	out, err := run(t, dir, "run", "--once", "-c", "pipeline.yaml", "--data-dir", "data", "--log-level", "warn")
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	seen := make([]int, total)
	dups := 0
	for _, l := range outputLines(t, filepath.Join(dir, "out")) {
		var rec struct{ N int }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("corrupt output line %q: %v", l, err)
		}
		if rec.N < 0 || rec.N >= total {
			t.Fatalf("unexpected record %d", rec.N)
		}
		if seen[rec.N] > 0 {
			dups++
		}
		seen[rec.N]++
	}
	var missing []int
	for n, c := range seen {
		if c == 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d records lost after %d kills, e.g. %v", len(missing), total, kills, missing[:min(10, len(missing))])
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "out", ".*"))
	t.Logf("%d kills: all %d records delivered, %d duplicates (%.2f%%), %d temp files left",
		kills, total, dups, 100*float64(dups)/total, len(leftovers))
	if s, err := os.ReadFile(filepath.Join(dir, "out", "part.jsonl")); err == nil && !strings.HasSuffix(string(s), "\n") {
		t.Fatal("a published file ends in the middle of a line")
	}
}
