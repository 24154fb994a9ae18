package exec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/sluicehq/sluice/adapters/all"
	"github.com/sluicehq/sluice/cli"
)

// syncBuffer is a buffer that the CLI's output and its loggers may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sluice runs the CLI in-process, as `sluice ARGS...`.
func sluice(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out syncBuffer
	code := cli.Execute(context.Background(), args, strings.NewReader(""), &out, &out)
	return out.String(), code
}

func runOnce(t *testing.T, pipeline string) {
	t.Helper()
	if out, code := sluice(t, "validate", "-c", pipeline); code != 0 {
		t.Fatalf("validate: exit %d\n%s", code, out)
	}
	out, code := sluice(t, "run", "--once", "-c", pipeline, "--data-dir", t.TempDir(), "--admin-address", "off")
	if code != 0 {
		t.Fatalf("run --once: exit %d\n%s", code, out)
	}
	t.Log(out)
}

func TestShellExample(t *testing.T) {
	spool := t.TempDir()
	archive := filepath.Join(t.TempDir(), "archive.jsonl")
	t.Setenv("SPOOL_DIR", spool)
	t.Setenv("ARCHIVE_FILE", archive)
	for i := 1; i <= 5; i++ {
		body := fmt.Sprintf("{\"order\": %d,\n \"amount\": \"%d.50\"}\n", i, i)
		if err := os.WriteFile(filepath.Join(spool, fmt.Sprintf("%04d.json", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runOnce(t, "sh/pipeline.yaml")

	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 5 {
		t.Fatalf("archive has %d lines, want 5:\n%s", len(lines), b)
	}
	orders := map[float64]bool{}
	for _, l := range lines {
		var m struct {
			Type   string         `json:"type"`
			Record map[string]any `json:"record"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.Type != "message" {
			t.Fatalf("archive line %q: %v", l, err)
		}
		orders[m.Record["order"].(float64)] = true
	}
	if len(orders) != 5 {
		t.Fatalf("orders archived: %v", orders)
	}
	if left, _ := filepath.Glob(filepath.Join(spool, "*")); len(left) != 0 {
		t.Fatalf("acked files were not deleted: %v", left)
	}
}

func python(t *testing.T) string {
	t.Helper()
	p, err := osexec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the Python example is not run")
	}
	return p
}

func TestPythonExample(t *testing.T) {
	py := python(t)
	db := filepath.Join(t.TempDir(), "outbox.db")
	archive := filepath.Join(t.TempDir(), "out", "orders.jsonl")
	if out, err := osexec.Command(py, "python/seed.py", db, "50").CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	t.Setenv("OUTBOX_DB", db)
	t.Setenv("ARCHIVE_FILE", archive)
	runOnce(t, "python/pipeline.yaml")

	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[float64]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("archive line %q: %v", l, err)
		}
		if rec["status"] == "cancelled" {
			t.Fatalf("a cancelled order passed the filter: %v", rec)
		}
		seen[rec["order_id"].(float64)] = true
	}
	if len(seen) != 45 { // 50 orders, every tenth cancelled
		t.Fatalf("archived %d distinct orders, want 45", len(seen))
	}
	out, err := osexec.Command(py, "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from outbox').fetchone()[0])", db).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("rows left in the outbox: %s (%v); every acked row must be deleted", out, err)
	}
}
