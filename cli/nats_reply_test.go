package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testkit"
)

// replyAgent is a `sluice run` process.
type replyAgent struct {
	cmd  *exec.Cmd
	out  *testkit.Buffer
	done chan error
}

func startReplyAgent(t *testing.T, args []string, env ...string) *replyAgent {
	t.Helper()
	a := &replyAgent{out: &testkit.Buffer{}, done: make(chan error, 1)}
	a.cmd = exec.Command(testenv.SluiceBinary(t), append([]string{"run", "--admin-address", "off"}, args...)...)
	a.cmd.Env = append(os.Environ(), env...)
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(30 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.done
		}
		if t.Failed() {
			t.Logf("agent %v output:\n%s", args, a.out.String())
		}
	})
	return a
}

// Two `sluice run` processes share a request/reply pipeline on NATS: the
// http source runs in the first (it took the lease), and only the second's
// sink can write (the first's target refuses connections, so its sink releases what
// it takes and backs off without charging attempts). The caller at the first agent gets the second's
// reply, routed over NATS. Once with the agent's broker (--broker nats),
// once with the pipeline's own broker block on disk agents.
func TestRunRequestReplyAcrossNATSAgents(t *testing.T) {
	testenv.NATS(t) // skips (or fails in CI) without a server
	for _, tc := range []struct {
		name     string
		agentArg bool // the agent config names the broker; else the pipeline
	}{
		{"agent broker", true},
		{"pipeline broker", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			agentCfg := natsAgentConfig(t, dir)
			// the test's server needs no password: keep the nats block without it
			text, err := os.ReadFile(agentCfg)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string // the nats block's settings
			for _, line := range strings.Split(string(text), "\n") {
				if strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "  user:") && !strings.HasPrefix(line, "  password:") {
					keys = append(keys, strings.TrimSpace(line))
				}
			}
			block := func(indent string) string { return indent + strings.Join(keys, "\n"+indent) + "\n" }
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			_ = ln.Close()
			pipe := fmt.Sprintf(`pipelines:
  rr:
    sources:
      - {name: api, type: http, address: %q, mode: request_reply, timeout: 20s}
    queues:
      q: {}
    sinks:
      - {name: answer, from: q, type: http, url: "${REPLY_TARGET}", timeout: 5s}
`, addr)
			args := []string{"-c", filepath.Join(dir, "pipeline.yaml")}
			if tc.agentArg {
				args = append(args, "--agent-config", filepath.Join(dir, "agent.yaml"))
				if err := os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte("broker: nats\nnats:\n"+block("  ")), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				pipe += "    broker:\n      type: nats\n" + block("      ")
			}
			writeConfig(t, dir, pipe)

			down := httptest.NewServer(http.NotFoundHandler())
			down.Close() // refuses connections: the first agent's sink is unavailable
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"agent": "B", "amount": 5000.5}`)
			}))
			defer up.Close()

			first := startReplyAgent(t, append(args, "--data-dir", filepath.Join(dir, "a")), "REPLY_TARGET="+down.URL)
			deadline := time.Now().Add(30 * time.Second)
			for {
				resp, err := http.Get("http://" + addr + "/") // 405 once the source listens
				if err == nil {
					resp.Body.Close()
					break
				}
				select {
				case err := <-first.done:
					t.Fatalf("first agent exited: %v\n%s", err, first.out.String())
				case <-time.After(50 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("the first agent's http source did not listen within 30s\n%s", first.out.String())
				}
			}
			startReplyAgent(t, append(args, "--data-dir", filepath.Join(dir, "b")), "REPLY_TARGET="+up.URL)

			resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"order": 1}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var ans struct {
				ID      string `json:"id"`
				Replies []struct {
					Status string `json:"status"`
					Reply  struct {
						Status int            `json:"status"`
						Body   map[string]any `json:"body"`
					} `json:"reply"`
				} `json:"replies"`
			}
			if err := json.Unmarshal(body, &ans); err != nil || resp.StatusCode != http.StatusOK || len(ans.Replies) != 1 {
				t.Fatalf("answer %d: %s (%v)", resp.StatusCode, body, err)
			}
			r := ans.Replies[0]
			if r.Status != "delivered" || r.Reply.Status != 200 || r.Reply.Body["agent"] != "B" || r.Reply.Body["amount"] != 5000.5 {
				t.Fatalf("reply: %s", body)
			}
			if agent, _, ok := strings.Cut(ans.ID, "."); !ok || agent == "" {
				t.Fatalf("correlation id %q does not name an agent", ans.ID)
			}
		})
	}
}
