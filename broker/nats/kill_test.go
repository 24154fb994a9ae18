package natsbroker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	natsbroker "github.com/sluicehq/sluice/broker/nats"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
)

// Environment of the helper agent process (the test binary run again).
const (
	helperEnv       = "SLUICE_NATS_TEST_AGENT" // the pipeline file
	helperURLEnv    = "SLUICE_NATS_TEST_URL"
	helperPrefixEnv = "SLUICE_NATS_TEST_PREFIX"
)

// helperAgent runs the pipeline file of SLUICE_NATS_TEST_AGENT on the
// broker of SLUICE_NATS_TEST_URL and _PREFIX, like `sluice run --broker
// nats`, until SIGTERM. Its stdout sink writes the records it delivers.
func helperAgent() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	cfg, err := pipeline.Load(os.Getenv(helperEnv), pipeline.LoadOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	prefix := os.Getenv(helperPrefixEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := natsbroker.Connect(ctx, natsbroker.Options{URL: os.Getenv(helperURLEnv), Prefix: prefix,
		SubjectPrefix: strings.ToLower(prefix), LeaseTTL: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	local := statestore.Memory()
	a := pipeline.NewAgent(pipeline.Options{Broker: b, DrainTimeout: 5 * time.Second,
		State: func(p, c string) adapters.State {
			if strings.HasPrefix(c, "source/") {
				return b.State(p + "/" + c + "/")
			}
			return local
		},
		Lease: func(ctx context.Context, p, s string) (pipeline.Lease, error) { return b.Lease(ctx, p, s) },
	})
	if _, err := a.Apply(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-sigs
	_ = a.Stop(context.Background())
	_ = b.Close()
	return 0
}

// child is a helper agent process whose stdout the test reads.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// seen counts the records every child wrote, by seq.
type seen struct {
	mu sync.Mutex
	n  map[int64]int
}

func (s *seen) counts() (distinct, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.n {
		dups += c - 1
	}
	return len(s.n), dups
}

func startChild(t *testing.T, file, url, prefix string, out *seen) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+file, helperURLEnv+"="+url, helperPrefixEnv+"="+prefix)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		readRecords(stdout, out)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

// readRecords counts the JSON lines {"seq": N} of r; what a killed child
// wrote before it died is still in the pipe.
func readRecords(r io.Reader, out *seen) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec struct {
			Seq int64 `json:"seq"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		out.mu.Lock()
		out.n[rec.Seq]++
		out.mu.Unlock()
	}
}

// leaseHolder returns the pid holding the lease of source gen, or 0.
func leaseHolder(t *testing.T, b *natsbroker.Broker, prefix string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, err := b.JetStream().KeyValue(ctx, prefix+"_leases")
	if err != nil {
		return 0
	}
	e, err := kv.Get(ctx, "share.gen")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(e.Value())) // "HOST pid N (SERVER)"
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "pid" {
			pid, _ := strconv.Atoi(f[i+1])
			return pid
		}
	}
	return 0
}

func TestKillLeaseHolderDuringLoad(t *testing.T) {
	url := testenv.NATS(t)
	o := testOptions(t, url, testenv.NATSPrefix(t))
	watch := connect(t, o)
	defer watch.Close()
	const count = 12000
	file := filepath.Join(t.TempDir(), "share.yaml")
	if err := os.WriteFile(file, []byte(sharePipeline(count, 4000, "stdout")), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &seen{n: map[int64]int{}}
	children := map[int]*child{}
	for i := 0; i < 2; i++ {
		c := startChild(t, file, url, o.Prefix, out)
		children[c.cmd.Process.Pid] = c
	}
	var holder int
	deadline := time.Now().Add(20 * time.Second)
	for holder = 0; holder == 0 || children[holder] == nil; holder = leaseHolder(t, watch, o.Prefix) {
		if time.Now().After(deadline) {
			t.Fatal("no child took the source lease")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// let it run under load, then kill -9 the holder
	for d, _ := out.counts(); d < count/4; d, _ = out.counts() {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records after 20s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := children[holder].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-children[holder].done
	before, _ := out.counts()
	var next int
	for next = leaseHolder(t, watch, o.Prefix); next == holder || next == 0; next = leaseHolder(t, watch, o.Prefix) {
		if time.Since(killed) > 3*o.LeaseTTL {
			t.Fatalf("nobody took the lease over within %v", 3*o.LeaseTTL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(killed)
	// the bound is about 0.9 TTL (2/3 TTL since the last renewal, plus a
	// candidate's poll); twice the TTL leaves room for a loaded machine
	if took > 2*o.LeaseTTL {
		t.Errorf("take-over after %v; lease TTL %v", took, o.LeaseTTL)
	}
	deadline = time.Now().Add(60 * time.Second)
	for d, _ := out.counts(); d < count; d, _ = out.counts() {
		if time.Now().After(deadline) {
			var missing []int64
			out.mu.Lock()
			for i := int64(0); i < count && len(missing) < 10; i++ {
				if out.n[i] == 0 {
					missing = append(missing, i)
				}
			}
			out.mu.Unlock()
			t.Fatalf("%d of %d records delivered after the kill; first missing: %v", d, count, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	distinct, dups := out.counts()
	t.Logf("holder killed after %d records; lease taken over in %v; %d records delivered, %d duplicates (delivered by the killed agent but not acked, or re-read after the kill)",
		before, took.Round(time.Millisecond), distinct, dups)
	if err := children[next].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-children[next].done:
		if code := children[next].cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("surviving agent exited %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("surviving agent did not stop on SIGTERM")
	}
}
