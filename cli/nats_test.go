package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsbroker "github.com/sluicehq/sluice/broker/nats"
	"github.com/sluicehq/sluice/internal/testenv"
)

// natsAgentConfig writes an agent config whose nats block uses names of
// the test's own, and removes them when the test ends.
func natsAgentConfig(t *testing.T, dir string) string {
	t.Helper()
	url := testenv.NATS(t)
	prefix := testenv.NATSPrefix(t)
	o := natsbroker.Options{URL: url, Prefix: prefix, SubjectPrefix: strings.ToLower(prefix)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b, err := natsbroker.Connect(ctx, o)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer b.Close()
		if err := b.DeleteAll(ctx); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	file := filepath.Join(dir, "agent.yaml")
	text := fmt.Sprintf("broker: nats\nnats:\n  url: %q\n  prefix: %s\n  subject_prefix: %s\n  lease_ttl: 1s\n  user: u\n  password: NatsSecret-1\n",
		url, prefix, strings.ToLower(prefix))
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestRunOnNATSAndQueuesCommands(t *testing.T) {
	dir := t.TempDir()
	agent := natsAgentConfig(t, dir)
	// the system server needs no password: drop it for the run
	b, _ := os.ReadFile(agent)
	noAuth := filepath.Join(dir, "agent-noauth.yaml")
	if err := os.WriteFile(noAuth, []byte(strings.Replace(strings.Replace(string(b), "  user: u\n", "", 1), "  password: NatsSecret-1\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cfg := writeConfig(t, dir, genToFile(3000, out, ""))
	stdout, stderr, code := run(t, "run", "--once", "-c", cfg, "--agent-config", noAuth, "--data-dir", filepath.Join(dir, "data"), "--admin-address", "off", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "pipeline p: read 3000, written 3000") {
		t.Fatalf("no summary:\n%s", stderr)
	}
	if seen := published(t, out); len(seen) != 3000 {
		t.Fatalf("published %d distinct records, want 3000", len(seen))
	}
	// a second run resumes from the checkpoint in the bucket: nothing to do
	if _, stderr, code := run(t, "run", "--once", "-c", cfg, "--agent-config", noAuth, "--data-dir", filepath.Join(dir, "data2"), "--admin-address", "off", "--quiet"); code != 0 ||
		!strings.Contains(stderr, "pipeline p: read 0, written 0") {
		t.Fatalf("second run from another data dir: exit %d\n%s", code, stderr)
	}

	stdout, stderr, code = run(t, "queues", "list", "--broker", "nats", "--agent-config", noAuth)
	if code != 0 || !strings.Contains(stdout, "p/q ") || !strings.Contains(stdout, "p/q.dlq") || !strings.Contains(stdout, "out (0)") {
		t.Fatalf("queues list: exit %d\n%s\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, "queues", "stats", "p/q", "--broker", "nats", "--agent-config", noAuth)
	if code != 0 || !strings.Contains(stdout, `"name": "p/q"`) {
		t.Fatalf("queues stats: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, stderr, code := run(t, "queues", "purge", "p/dlq", "--yes", "--broker", "nats", "--agent-config", noAuth); code != 0 {
		t.Fatalf("queues purge: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := run(t, "queues", "list", "--broker", "kafka"); code == 0 || !strings.Contains(stderr, "want disk or nats") {
		t.Fatalf("unknown broker: exit %d\n%s", code, stderr)
	}

	// --print-config shows the nats block with the password masked
	stdout, stderr, code = run(t, "run", "-c", cfg, "--agent-config", agent, "--print-config")
	if code != 0 || strings.Contains(stdout, "NatsSecret") || !strings.Contains(stdout, "password: '[redacted]'") || !strings.Contains(stdout, "broker: nats") {
		t.Fatalf("--print-config: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// a bad nats setting names its key
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("broker: nats\nnats:\n  replicas: 9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run(t, "run", "-c", cfg, "--agent-config", bad, "--print-config"); code == 0 || !strings.Contains(stderr, "nats.replicas") {
		t.Fatalf("bad replicas: exit %d\n%s", code, stderr)
	}
}
