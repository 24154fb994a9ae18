package httpadapter_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testkit"
)

func TestMain(m *testing.M) { testenv.MariaDBMain(m) }

// sluiceBinary builds ./cmd/sluice once per test process.
func sluiceBinary(t *testing.T) string { return testenv.SluiceBinary(t) }

// agentProc is a running `sluice run`.
type agentProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *testkit.Buffer
	done chan error
}

// startAgent runs the pipeline file cfg with the data dir data and waits
// until url answers.
func startAgent(t *testing.T, cfg, data, url string, env ...string) *agentProc {
	t.Helper()
	a := &agentProc{t: t, out: &testkit.Buffer{}, done: make(chan error, 1)}
	a.cmd = exec.Command(sluiceBinary(t), "run", "--admin-address", "off", "--quiet", "-c", cfg, "--data-dir", data)
	a.cmd.Env = append(os.Environ(), env...)
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			_ = a.cmd.Process.Kill()
			<-a.done
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", a.out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url) // GET answers 405 once the source listens
		if err == nil {
			resp.Body.Close()
			return a
		}
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("agent exited: %v\n%s", err, a.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the http source did not listen within 30s\n%s", a.out.String())
		}
	}
}

func (a *agentProc) kill() {
	_ = a.cmd.Process.Kill()
	<-a.done
	a.done <- nil
}

func (a *agentProc) stop() {
	a.t.Helper()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		a.done <- err
		if err != nil {
			a.t.Fatalf("agent exited with %v after SIGTERM\n%s", err, a.out.String())
		}
	case <-time.After(60 * time.Second):
		a.t.Fatalf("agent did not stop within 60s of SIGTERM\n%s", a.out.String())
	}
}

const crashPipeline = `pipelines:
  ingest:
    sources:
      - name: api
        type: http
        address: %s
        path: /in
        enqueue_timeout: 5s
    stages:
      - map:
          received: true
    queues:
      records: {}
    sinks:
      - name: out
        type: file
        base_dir: %s
        path: records.jsonl
        max_records: 2000
        batch_size: 1000
`

// 10,000 POSTs from concurrent clients to a real `sluice run` on the disk
// broker; the agent is killed with SIGKILL in the middle and restarted.
// Every request answered 202 must be in the output; requests answered
// otherwise (or cut off) are retried by their client with the same
// Idempotency-Key, as a client should, but are not required.
func TestAsyncSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sluice binary")
	}
	const total, clients = 10000, 16
	dir := t.TempDir()
	addr := freeAddr(t)
	outDir := filepath.Join(dir, "out")
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(crashPipeline, addr, outDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + "/in"
	data := filepath.Join(dir, "data")
	a := startAgent(t, cfg, data, url)

	var accepted sync.Map // k -> true
	var nAccepted, nRefused atomic.Int64
	var next atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := next.Add(1) - 1
				if k >= total {
					return
				}
				body := fmt.Sprintf(`{"k": %d, "pad": "%s"}`, k, strings.Repeat("x", 64))
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
					req.Header.Set("Idempotency-Key", fmt.Sprint("k", k))
					resp, err := client.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusAccepted {
							accepted.Store(k, true)
							nAccepted.Add(1)
							break
						}
					}
					nRefused.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	for nAccepted.Load() < total*2/5 {
		if ctx.Err() != nil {
			t.Fatalf("only %d accepted before the kill", nAccepted.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.kill()
	killedAt := nAccepted.Load()
	time.Sleep(200 * time.Millisecond) // clients see refused connections
	a = startAgent(t, cfg, data, url)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("load did not finish: %d accepted", nAccepted.Load())
	}
	a.stop()
	// What is still queued is delivered by a run that drains and exits.
	out, err := exec.CommandContext(ctx, sluiceBinary(t), "run", "--once", "--admin-address", "off", "--quiet", "-c", cfg, "--data-dir", data).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice run --once: %v\n%s", err, out)
	}

	got := map[int64]int{}
	files, _ := filepath.Glob(filepath.Join(outDir, "records*.jsonl"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var rec struct {
				K        int64
				Received bool
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("%s: %v: %s", f, err, sc.Text())
			}
			got[rec.K]++
		}
		fh.Close()
	}
	missing := 0
	accepted.Range(func(k, _ any) bool {
		if got[k.(int64)] == 0 {
			missing++
			if missing <= 10 {
				t.Errorf("record k=%d was answered 202 but is not in the output", k)
			}
		}
		return true
	})
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	t.Logf("%d accepted (%d before the kill), %d refused or cut off and retried, %d records written, %d duplicates", nAccepted.Load(), killedAt, nRefused.Load(), len(got), dups)
	if missing > 0 {
		t.Fatalf("%d acknowledged records lost", missing)
	}
}
