package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testkit"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// sluiceBinary builds cmd/sluice once per test run.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "sluice")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/sluicehq/sluice/cmd/sluice").CombinedOutput()
		if err != nil {
			binErr = errors.New("go build ./cmd/sluice: " + err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type agentProc struct {
	cmd    *exec.Cmd
	stderr *testkit.Buffer
	done   chan struct{}
	err    error
}

func startAgent(t *testing.T, bin string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{cmd: exec.Command(bin, args...), stderr: &testkit.Buffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code, failing the test after timeout.
func (p *agentProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("the agent did not exit within %s\n%s", timeout, p.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// sinkWrote reports whether the file sink has written anything under out,
// published or not.
func sinkWrote(out string) bool {
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Size() > 0 {
			return true
		}
	}
	return false
}

// TestSignalsUnderLoad runs the real binary on the disk broker: SIGTERM
// during load drains and exits 0 within the shutdown timeout; a second run
// is killed by two signals in a row; a third run with --once finishes the
// work. Every record arrives.
func TestSignalsUnderLoad(t *testing.T) {
	const count = 200_000
	const timeout = 10 * time.Second
	bin := sluiceBinary(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := writeConfig(t, dir, strings.Replace(genToFile(count, out, ""), "batch_size: 500}", "batch_size: 500, rate: 40000}", 1))
	args := []string{"run", "-c", cfg, "--data-dir", filepath.Join(dir, "data"), "--admin-address", "off", "--quiet",
		"--shutdown-timeout", timeout.String()}

	// 1. SIGTERM under load: drain, exit 0 within the timeout.
	p := startAgent(t, bin, args...)
	eventually(t, "the sink to write", func() bool { return sinkWrote(out) })
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, timeout+5*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d\n%s", code, p.stderr.String())
	}
	took := time.Since(start)
	if took > timeout {
		t.Fatalf("SIGTERM: the drain took %s, more than shutdown_timeout %s", took, timeout)
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, "signal received; draining") || !strings.Contains(logs, "sluice stopped") {
		t.Fatalf("SIGTERM: logs:\n%s", logs)
	}
	first := len(published(t, out))
	t.Logf("SIGTERM: exit 0 after %s; %d records published", took, first)
	if first == 0 || first >= count {
		t.Fatalf("the signal did not arrive during the load: %d of %d records published", first, count)
	}

	// 2. Restart with a sink whose writes hang (a program that never answers),
	// so the drain is still waiting when the second signal comes: it exits
	// at once. The sink keeps its name, so its cursor in the queue stays.
	hang := strings.Replace(genToFile(count, out, ""), "batch_size: 500}", "batch_size: 500, rate: 40000}", 1)
	hang = hang[:strings.Index(hang, "      - {name: out, type: file")] +
		"      - {name: out, type: exec, write_timeout: 1m, command: [sh, -c, 'read hello; echo \"{\\\"type\\\":\\\"hello\\\",\\\"protocol\\\":1}\"; exec sleep 30']}\n"
	writeConfig(t, dir, hang)
	p = startAgent(t, bin, args...)
	eventually(t, "the restarted agent to run", func() bool {
		return strings.Contains(p.stderr.String(), "sluice running")
	})
	time.Sleep(500 * time.Millisecond)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	eventually(t, "the first signal to be handled", func() bool { return strings.Contains(p.stderr.String(), "signal received; draining") })
	start = time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	code := p.wait(t, 5*time.Second)
	if code != 1 || !strings.Contains(p.stderr.String(), "second signal: exiting now") {
		t.Fatalf("second signal: exit %d\n%s", code, p.stderr.String())
	}
	t.Logf("second signal: exit %d after %s", code, time.Since(start))

	// 3. --once with the file sink again finishes the work: nothing
	// acknowledged was lost.
	writeConfig(t, dir, strings.Replace(genToFile(count, out, ""), "batch_size: 500}", "batch_size: 500, rate: 40000}", 1))
	p = startAgent(t, bin, append(args, "--once")...)
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("--once: exit %d\n%s", code, p.stderr.String())
	}
	seen := published(t, out)
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	if len(seen) != count {
		t.Fatalf("%d distinct records published, want %d (missing %v)\n%s", len(seen), count, missing(seen, count), p.stderr.String())
	}
	t.Logf("all %d records published (%d duplicates from the interrupted runs)", count, dups)
}
