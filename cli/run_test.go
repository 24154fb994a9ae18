package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/sluicehq/sluice/adapters/file"     // the sink of the end-to-end tests
	_ "github.com/sluicehq/sluice/adapters/generate" // their source
	"github.com/sluicehq/sluice/internal/testkit"
	_ "github.com/sluicehq/sluice/transform/codec" // jsonl
)

// genToFile is a pipeline from a generate source to a file sink writing
// JSON lines under out.
func genToFile(count int, out, extra string) string {
	return fmt.Sprintf(`pipelines:
  p:
    sources:
      - {name: gen, type: generate, count: %d, batch_size: 500}
%s    queues:
      q: {}
    sinks:
      - {name: out, type: file, base_dir: %q, path: out.jsonl, codec: jsonl, max_records: 20000}
`, count, extra, out)
}

func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "pipeline.yaml")
	tmp := filepath.Join(dir, ".pipeline.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// published reads every published file under dir (not the sink's hidden
// temporary files) and counts each record's seq.
func published(t *testing.T, dir string) map[int64]int {
	t.Helper()
	seen := map[int64]int{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec struct{ Seq *int64 }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Seq == nil {
				t.Fatalf("%s: bad line %q: %v", e.Name(), sc.Text(), err)
			}
			seen[*rec.Seq]++
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return seen
}

// missing returns up to 5 seqs below count that were not published.
func missing(seen map[int64]int, count int) []int64 {
	var out []int64
	for n := int64(0); n < int64(count) && len(out) < 5; n++ {
		if seen[n] == 0 {
			out = append(out, n)
		}
	}
	return out
}

func TestRunOnceDeliversEverything(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := writeConfig(t, dir, genToFile(5000, out, ""))
	stdout, stderr, code := run(t, "run", "--once", "-c", cfg, "--data-dir", filepath.Join(dir, "data"), "--admin-address", "off", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "pipeline p: read 5000, written 5000, dropped 0, rejected 0, dead-lettered 0") {
		t.Fatalf("no summary:\n%s", stderr)
	}
	seen := published(t, out)
	if len(seen) != 5000 {
		t.Fatalf("published %d distinct records, want 5000 (missing %v)", len(seen), missing(seen, 5000))
	}
	// a second run has nothing left to do; with the admin port taken (an
	// agent runs beside it) it goes on without its admin server
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, stderr, code := run(t, "run", "--once", "-c", cfg, "--data-dir", filepath.Join(dir, "data"), "--admin-address", ln.Addr().String(), "--quiet"); code != 0 ||
		!strings.Contains(stderr, "pipeline p: read 0, written 0") || !strings.Contains(stderr, "no admin server for this run") {
		t.Fatalf("second run: exit %d\n%s", code, stderr)
	}
	// a long-running agent refuses to start without its admin server
	if _, stderr, code := run(t, "run", "-c", cfg, "--data-dir", filepath.Join(dir, "data"), "--admin-address", ln.Addr().String(), "--quiet"); code != 1 ||
		!strings.Contains(stderr, "admin: listen on "+ln.Addr().String()) {
		t.Fatalf("taken admin port: exit %d\n%s", code, stderr)
	}
}

func TestRunOnceFailsOnDeadLetters(t *testing.T) {
	dir := t.TempDir()
	stages := "    stages:\n      - map: {x: 'record.seq % 10 == 0 ? int(\"bad\") : 1'}\n"
	cfg := writeConfig(t, dir, genToFile(100, filepath.Join(dir, "out"), stages))
	_, stderr, code := run(t, "run", "--once", "-c", cfg, "--data-dir", filepath.Join(dir, "data"), "--admin-address", "off", "--quiet")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{"read 100, written 90, dropped 0, rejected 10", "10 message(s) went to dead-letter queues"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestPrintConfigMasksSecrets(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SLUICE_ADMIN_TOKEN", "tok-Secret-1")
	cfg := writeConfig(t, dir, `pipelines:
  p:
    sources:
      - {name: gen, type: generate, count: 1}
    queues: {q: {}}
    sinks:
      - name: ship
        type: exec
        command: [cat]
        env: {DB_DSN: "erp:Secret-2@tcp(db)/erp"}
        config: {url: "https://u:Secret-3@example.com/x"}
`)
	stdout, stderr, code := run(t, "run", "-c", cfg, "--print-config", "--log-levels", "sink=debug")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "Secret-") {
		t.Fatalf("--print-config shows a secret:\n%s", stdout)
	}
	for _, want := range []string{"token: '[redacted]'", "address: 127.0.0.1:9650", "sink: debug", "type: generate", "env: '[redacted]'", "u:[redacted]@example.com", "max_attempts: 5"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, stdout)
		}
	}
}

func TestSettingsErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, genToFile(1, filepath.Join(dir, "out"), ""))
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agentCfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(agentCfg, []byte("admin:\n  adress: 1.2.3.4:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--admin-address", "9650"}, "", `admin.address: want HOST:PORT or "off", got "9650"`},
		{[]string{"--admin-token-file", tokenFile}, "x", "set either SLUICE_ADMIN_TOKEN (admin.token) or admin.token_file, not both"},
		{[]string{"--admin-token-file", filepath.Join(dir, "nope")}, "", "admin.token_file: stat "},
		{[]string{"--log-levels", "sink=loud"}, "", `log.levels.sink: unknown level "loud"`},
		{[]string{"--log-level", "chatty"}, "", `log.level: unknown level "chatty"`},
		{[]string{"--agent-config", agentCfg}, "", "unknown key(s) admin.adress"},
		{[]string{"--shutdown-timeout", "0s"}, "", "shutdown_timeout: must be positive"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Setenv("SLUICE_ADMIN_TOKEN", c.env)
			args := append([]string{"run", "--print-config", "-c", cfg}, c.args...)
			_, stderr, code := run(t, args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, want 2 with %q:\n%s", code, c.want, stderr)
			}
		})
	}
	t.Setenv("SLUICE_ADMIN_TOKEN", "")
	if stdout, stderr, code := run(t, "run", "--print-config", "-c", cfg, "--admin-token-file", tokenFile, "--admin-address", "off"); code != 0 ||
		!strings.Contains(stdout, "token: '[redacted]'") || !strings.Contains(stdout, "address: \"off\"") {
		t.Fatalf("token file: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunServesAdminAndReloads runs the agent in-process: the admin server
// answers, an edit of the config restarts the pipeline, and cancelling the
// run drains it and returns 0.
func TestRunServesAdminAndReloads(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := writeConfig(t, dir, genToFile(2000, out, ""))
	addr := freePort(t)
	t.Setenv("SLUICE_ADMIN_TOKEN", "t0ken")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr testkit.Buffer
	done := make(chan int, 1)
	go func() {
		var stdout strings.Builder
		done <- Execute(ctx, []string{"run", "-c", cfg, "--data-dir", filepath.Join(dir, "data"), "--admin-address", addr,
			"--log-format", "json", "--shutdown-timeout", "5s"}, strings.NewReader(""), &stdout, &stderr)
	}()
	base := "http://" + addr
	eventually(t, "ready", func() bool { code, _ := get(t, base+"/readyz"); return code == 200 })
	eventually(t, "metrics of 2000 records", func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, `sluice_sink_messages_total{pipeline="p",sink="out"} 2000`)
	})
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "sluice_broker_commit_duration_seconds_count") ||
		strings.Contains(body, "sluice_broker_commit_records_total 0\n") {
		t.Fatalf("the disk broker's commits are not measured:\n%s", body)
	}
	_, before := get(t, base+"/api/v1/pipelines/p")
	// a valid edit restarts the pipeline, which resumes its count
	writeConfig(t, dir, genToFile(3000, out, ""))
	eventually(t, "the reload", func() bool {
		_, body := get(t, base+"/api/v1/pipelines/p")
		return body != before && strings.Contains(body, `"count": 3000`)
	})
	eventually(t, "metrics of all 3000 records", func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, `sluice_sink_messages_total{pipeline="p",sink="out"} 3000`) &&
			strings.Contains(body, `sluice_pipeline_restarts_total{pipeline="p"} 1`)
	})
	// an invalid edit changes nothing
	writeConfig(t, dir, strings.Replace(genToFile(3000, out, ""), "type: file", "type: fiel", 1))
	eventually(t, "the invalid edit to be logged", func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, `sluice_config_reloads_total{result="invalid"} 1`)
	})
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatal("an invalid edit made the agent unready")
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/pipelines/p/pause", nil)
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("pause with the env token: %v %v", resp, err)
	}
	resp.Body.Close()

	start := time.Now()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the agent did not stop")
	}
	t.Logf("stopped in %s", time.Since(start))
	if seen := published(t, out); len(seen) != 3000 {
		t.Fatalf("published %d distinct records, want 3000 (missing %v)", len(seen), missing(seen, 3000))
	}
	logs := stderr.String()
	for _, want := range []string{`"msg":"config reloaded"`, `"restarted":["p"]`, `"problem":"`, `unknown sink type \"fiel\"`, `"msg":"sluice stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
}

// The shipped agent config loads and means what it says.
func TestShippedAgentConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, genToFile(1, filepath.Join(dir, "out"), ""))
	t.Setenv("SLUICE_ADMIN_TOKEN", "")
	t.Setenv("SLUICE_LOG_LEVELS", "source=warn, broker=error")
	stdout, stderr, code := run(t, "run", "--print-config", "-c", cfg, "--agent-config", filepath.Join("..", "configs", "agent.yaml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"data_dir: /var/lib/sluice", "format: json", "address: 127.0.0.1:9650", "shutdown_timeout: 30s", "watch: true", "source: warn", "broker: error"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("configs/agent.yaml: effective settings lack %q:\n%s", want, stdout)
		}
	}
}
