package disk

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

const killChildEnv = "SLUICE_DISK_KILL_CHILD"

var killOpts = broker.Options{SegmentBytes: 64 << 10, InlineMax: 4 << 10, VisibilityTimeout: time.Minute}

// TestKill9 runs a producer and a consumer in a child process (this test
// binary again), SIGKILLs it at random moments, restarts it, and checks at
// the end that every enqueue the child saw acknowledged was delivered.
func TestKill9(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(42, 42))
	acked := map[int]bool{}
	delivered := map[int]int{}
	rounds := 24
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, "SLUICE_KILL_START="+strconv.Itoa(round*10_000_000))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		var lines []string
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
		}()
		time.Sleep(time.Duration(30+r.IntN(250)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		wg.Wait()
		_ = cmd.Wait()
		for _, l := range lines {
			kind, n, ok := strings.Cut(l, " ")
			seq, err := strconv.Atoi(n)
			if !ok || err != nil {
				continue // a line cut by the kill
			}
			switch kind {
			case "E":
				acked[seq] = true
			case "D":
				delivered[seq]++
			case "C":
				t.Errorf("round %d: message %d delivered corrupt", round, seq)
			}
		}
	}
	// drain what is left
	b, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, err := b.Open("kill/q", killOpts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := q.Consumer("g")
	if err != nil {
		t.Fatal(err)
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		ds, err := c.Receive(ctx, 1024)
		cancel()
		if err != nil {
			break
		}
		for _, d := range ds {
			seq, _ := strconv.Atoi(d.Message.ID)
			delivered[seq]++
			if err := checkBody(d.Message); err != nil {
				t.Error(err)
			}
		}
		if err := c.Ack(context.Background(), ds); err != nil {
			t.Fatal(err)
		}
	}
	lost, dups := 0, 0
	for seq := range acked {
		if delivered[seq] == 0 {
			lost++
			if lost < 10 {
				t.Errorf("acknowledged enqueue %d was never delivered", seq)
			}
		}
	}
	for _, n := range delivered {
		dups += n - 1
	}
	if len(acked) < 1000 {
		t.Fatalf("only %d acknowledged enqueues in %d rounds", len(acked), rounds)
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged enqueues lost", lost, len(acked))
	}
	t.Logf("%d rounds killed with SIGKILL: %d acknowledged enqueues, all delivered; %d duplicate deliveries", rounds, len(acked), dups)
}

// killChild enqueues numbered messages and consumes them until it is
// killed, reporting each acknowledged enqueue (E) and each delivery (D) on
// stdout.
func killChild(dir string) {
	start, _ := strconv.Atoi(os.Getenv("SLUICE_KILL_START"))
	go func() { // never outlive a parent that died
		time.Sleep(20 * time.Second)
		os.Exit(3)
	}()
	b, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	q, err := b.Open("kill/q", killOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	c, err := q.Consumer("g")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	report := func(kind string, seqs []string) {
		var sb strings.Builder
		for _, s := range seqs {
			sb.WriteString(kind + " " + s + "\n")
		}
		mu.Lock()
		os.Stdout.WriteString(sb.String())
		mu.Unlock()
	}
	go func() {
		ctx := context.Background()
		for {
			ds, err := c.Receive(ctx, 256)
			if err != nil {
				os.Exit(2)
			}
			seqs := make([]string, len(ds))
			for i, d := range ds {
				seqs[i] = d.Message.ID
				if checkBody(d.Message) != nil {
					report("C", seqs[i:i+1])
				}
			}
			report("D", seqs)
			if err := c.Ack(ctx, ds); err != nil {
				os.Exit(2)
			}
		}
	}()
	aq := q.(broker.AsyncEnqueuer)
	type pending struct {
		id   string
		wait func() error
	}
	waits := make(chan pending, 64)
	go func() {
		for p := range waits {
			if err := p.wait(); err != nil {
				os.Exit(2)
			}
			report("E", []string{p.id})
		}
	}()
	r := rand.New(rand.NewPCG(uint64(start), 1))
	for i := start; ; i++ {
		id := strconv.Itoa(i)
		size := 10 + r.IntN(200)
		if r.IntN(200) == 0 {
			size = 8 << 10 // a blob now and then
		}
		m := adapters.Message{ID: id, Raw: payloadFor(id, size), Meta: map[string]string{"size": strconv.Itoa(size)}}
		waits <- pending{id, aq.EnqueueAsync(context.Background(), []adapters.Message{m})}
	}
}
