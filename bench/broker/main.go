// Command broker benchmarks Sluice's disk broker against the physical limit
// of the disk and against NATS JetStream file storage, on this machine.
//
//	go run ./bench/broker                      # everything, as in docs/benchmarks.md
//	go run ./bench/broker -sizes 128 -systems sluice -workers 1
//
// Every run enqueues -count messages from -producers producers that each
// keep up to -inflight enqueues outstanding, and -workers workers consume
// and ack them at once. It reports messages and MB per second (enqueue to
// ack of the last message), the enqueue-to-durable latency (p50, p99) and
// the peak RSS. Each run is a child process, so peak RSS is the run's own.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/disk"
)

type config struct {
	System    string `json:"system"`
	Size      int    `json:"size"`
	Count     int    `json:"count"`
	Producers int    `json:"producers"`
	Inflight  int    `json:"inflight"`
	Workers   int    `json:"workers"`
	Batch     int    `json:"batch"`
	Dir       string `json:"dir"`
	NATS      string `json:"nats_server,omitempty"`
}

type result struct {
	config
	Seconds     float64 `json:"seconds"`
	MsgsPerSec  float64 `json:"msgs_per_s"`
	MBPerSec    float64 `json:"mb_per_s"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	ClientRSSMB float64 `json:"client_rss_mb"`
	CPUUsPerMsg float64 `json:"cpu_us_per_msg"` // user+system CPU of client and server per message
	ServerRSSMB float64 `json:"server_rss_mb,omitempty"`
	Commits     int64   `json:"commits,omitempty"`
	CommitMs    float64 `json:"commit_ms,omitempty"`  // mean write+fdatasync time
	PerCommit   float64 `json:"per_commit,omitempty"` // mean records per commit
	Error       string  `json:"error,omitempty"`
}

func main() {
	one := flag.String("one", "", "run one configuration given as JSON (used by the harness itself)")
	dir := flag.String("dir", "", "directory for the data (default: a new temp dir)")
	sizes := flag.String("sizes", "128,4096,65536", "message sizes in bytes")
	count := flag.Int("count", 1_000_000, "messages per run")
	alwaysCount := flag.Int("always-count", 20_000, "messages per run for nats-always, which fsyncs every message without group commit (a full -count would take hours)")
	maxBytes := flag.Int64("max-run-bytes", 4<<30, "scale the count down so a run moves at most this many payload bytes")
	producers := flag.Int("producers", 4, "producers")
	inflight := flag.Int("inflight", 1000, "enqueues each producer keeps in flight")
	workers := flag.String("workers", "1,4", "consumer worker counts")
	batch := flag.Int("batch", 1024, "messages a worker receives (fetches) at once and then acks")
	systems := flag.String("systems", "sluice,nats,nats-always", "systems: sluice, nats (JetStream default sync), nats-always (sync_interval: always)")
	natsServer := flag.String("nats-server", "", "nats-server binary (default: nats-server from ~/go/bin or PATH)")
	probe := flag.Bool("probe", true, "measure the disk first: dd with fdatasync, and an fsync-rate probe")
	flag.Parse()
	if *one != "" {
		var c config
		if err := json.Unmarshal([]byte(*one), &c); err != nil {
			fatal(err)
		}
		r := runOne(c)
		out, _ := json.Marshal(r)
		fmt.Println(string(out))
		return
	}
	base := *dir
	if base == "" {
		d, err := os.MkdirTemp("", "sluice-bench-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		base = d
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		fatal(err)
	}
	if *probe {
		fmt.Printf("disk: dd bs=1M count=1024 conv=fdatasync: %s\n", ddProbe(base))
		fmt.Printf("disk: 1 GiB of random bytes in 16 MiB writes, fdatasync after each: %s\n", syncedWriteProbe(base))
		fmt.Printf("disk: fsync rate (4 KiB write + fdatasync, 2 s): %.0f/s\n", fsyncProbe(base))
	}
	server := *natsServer
	if server == "" {
		server = findNATS()
	}
	var results []result
	for _, sys := range strings.Split(*systems, ",") {
		for _, s := range strings.Split(*sizes, ",") {
			size, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				fatal(fmt.Errorf("-sizes: %w", err))
			}
			n := *count
			if sys == "nats-always" {
				n = min(n, *alwaysCount)
			}
			if int64(n)*int64(size) > *maxBytes {
				n = int(*maxBytes / int64(size))
			}
			for _, w := range strings.Split(*workers, ",") {
				wn, err := strconv.Atoi(strings.TrimSpace(w))
				if err != nil {
					fatal(fmt.Errorf("-workers: %w", err))
				}
				c := config{System: sys, Size: size, Count: n, Producers: *producers, Inflight: *inflight, Workers: wn, Batch: *batch,
					Dir: filepath.Join(base, fmt.Sprintf("%s-%d-%d", sys, size, wn)), NATS: server}
				r := runChild(c)
				results = append(results, r)
				printResult(r)
				os.RemoveAll(c.Dir)
			}
		}
	}
	fmt.Println()
	fmt.Println("| system | size | messages | workers | msgs/s | MB/s | p50 enqueue→durable | p99 | CPU µs/msg | peak RSS client | peak RSS server |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		if r.Error != "" {
			fmt.Printf("| %s | %s | %d | %d | error: %s ||||||| \n", r.System, sizeName(r.Size), r.Count, r.Workers, r.Error)
			continue
		}
		srv := "—"
		if r.ServerRSSMB > 0 {
			srv = fmt.Sprintf("%.0f MB", r.ServerRSSMB)
		}
		fmt.Printf("| %s | %s | %d | %d | %.0f | %.1f | %.2f ms | %.2f ms | %.2f | %.0f MB | %s |\n",
			r.System, sizeName(r.Size), r.Count, r.Workers, r.MsgsPerSec, r.MBPerSec, r.P50Ms, r.P99Ms, r.CPUUsPerMsg, r.ClientRSSMB, srv)
	}
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func printResult(r result) {
	if r.Error != "" {
		fmt.Printf("%-12s %6s workers=%d: error: %s\n", r.System, sizeName(r.Size), r.Workers, r.Error)
		return
	}
	fmt.Printf("%-12s %6s workers=%d: %9.0f msgs/s %7.1f MB/s  p50 %.2f ms  p99 %.2f ms  cpu %.2f us/msg  rss %.0f MB (server %.0f MB)  %.1f s",
		r.System, sizeName(r.Size), r.Workers, r.MsgsPerSec, r.MBPerSec, r.P50Ms, r.P99Ms, r.CPUUsPerMsg, r.ClientRSSMB, r.ServerRSSMB, r.Seconds)
	if r.Commits > 0 {
		fmt.Printf("  %d commits: %.2f ms, %.0f records each", r.Commits, r.CommitMs, r.PerCommit)
	}
	fmt.Println()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/broker:", err)
	os.Exit(1)
}

// runChild runs one configuration in a child process of this binary.
func runChild(c config) result {
	arg, _ := json.Marshal(c)
	cmd := exec.Command(os.Args[0], "-one", string(arg))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var r result
	if err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		err = json.Unmarshal([]byte(lines[len(lines)-1]), &r)
	}
	if err != nil {
		return result{config: c, Error: err.Error()}
	}
	return r
}

// producerFunc starts one asynchronous enqueue of payload and returns how
// to wait for it to be durable.
type producerFunc func(payload []byte) (wait func() error)

func runOne(c config) result {
	r := result{config: c}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		r.Error = err.Error()
		return r
	}
	var err error
	switch c.System {
	case "sluice":
		err = runSluice(c, &r)
	case "nats", "nats-always":
		err = runNATS(c, &r)
	default:
		err = fmt.Errorf("unknown system %q", c.System)
	}
	if err != nil {
		r.Error = err.Error()
	}
	r.ClientRSSMB = peakRSS("self")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil && c.Count > 0 {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.CPUUsPerMsg += float64(cpu.Microseconds()) / float64(c.Count)
	}
	return r
}

// drive runs the producers, measures enqueue-to-durable latency, and waits
// until consumed reports every message settled.
func drive(c config, r *result, newProducer func() (producerFunc, error), consumed func() int64) error {
	// Every message gets different bytes: slices of a random pool at
	// offsets that are not multiples of 4 KiB, so that no layer below
	// (compression, block deduplication of a virtual disk) can make the
	// payload cheaper than it is.
	pool := make([]byte, 64<<20+c.Size)
	_, _ = rand.Read(pool)
	var seq atomic.Int64
	payload := func() []byte {
		off := (seq.Add(1) * int64(c.Size+4093)) % (64 << 20)
		return pool[off : off+int64(c.Size)]
	}
	lat := make([][]time.Duration, c.Producers)
	errs := make(chan error, c.Producers)
	prods := make([]producerFunc, c.Producers)
	for i := range prods {
		p, err := newProducer()
		if err != nil {
			return err
		}
		prods[i] = p
	}
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < c.Producers; p++ {
		n := c.Count / c.Producers
		if p == 0 {
			n += c.Count % c.Producers
		}
		lat[p] = make([]time.Duration, 0, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			type pending struct {
				at   time.Time
				wait func() error
			}
			ch := make(chan pending, c.Inflight)
			done := make(chan struct{})
			go func() {
				defer close(done)
				failed := false
				for pd := range ch {
					if err := pd.wait(); err != nil && !failed {
						failed = true
						errs <- err
					}
					lat[p] = append(lat[p], time.Since(pd.at))
				}
			}()
			for i := 0; i < n; i++ {
				ch <- pending{time.Now(), prods[p](payload())}
			}
			close(ch)
			<-done
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	deadline := time.Now().Add(10 * time.Minute)
	for consumed() < int64(c.Count) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d messages consumed", consumed(), c.Count)
		}
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	r.Seconds = el.Seconds()
	r.MsgsPerSec = float64(c.Count) / el.Seconds()
	r.MBPerSec = float64(c.Count) * float64(c.Size) / el.Seconds() / 1e6
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		r.P50Ms = float64(all[len(all)/2]) / 1e6
		r.P99Ms = float64(all[len(all)*99/100]) / 1e6
	}
	return nil
}

func runSluice(c config, r *result) error {
	var commits, commitNs, records atomic.Int64
	b, err := disk.Open(c.Dir, disk.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnCommit: func(d time.Duration, n, _ int) {
			commits.Add(1)
			commitNs.Add(int64(d))
			records.Add(int64(n))
		},
	})
	if err != nil {
		return err
	}
	defer b.Close()
	q, err := b.Open("bench/q", broker.Options{})
	if err != nil {
		return err
	}
	cons, err := q.Consumer("sink")
	if err != nil {
		return err
	}
	aq, ok := q.(broker.AsyncEnqueuer)
	if !ok {
		return errors.New("the disk queue is not an AsyncEnqueuer")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done atomic.Int64
	var werr atomic.Pointer[error]
	for w := 0; w < c.Workers; w++ {
		go func() {
			for {
				ds, err := cons.Receive(ctx, c.Batch)
				if err != nil {
					return
				}
				if err := cons.Ack(ctx, ds); err != nil {
					werr.Store(&err)
					return
				}
				done.Add(int64(len(ds)))
			}
		}()
	}
	newProducer := func() (producerFunc, error) {
		return func(p []byte) func() error {
			return aq.EnqueueAsync(ctx, []adapters.Message{{Raw: p}})
		}, nil
	}
	err = drive(c, r, newProducer, done.Load)
	if p := werr.Load(); p != nil && err == nil {
		err = *p
	}
	r.Commits = commits.Load()
	if r.Commits > 0 {
		r.CommitMs = float64(commitNs.Load()) / float64(r.Commits) / 1e6
		r.PerCommit = float64(records.Load()) / float64(r.Commits)
	}
	return err
}

func findNATS() string {
	home, _ := os.UserHomeDir()
	for _, p := range []string{filepath.Join(home, "go", "bin", "nats-server")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	return "/usr/sbin/nats-server"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startNATS starts a private nats-server with JetStream file storage in dir.
func startNATS(c config) (*exec.Cmd, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	js := fmt.Sprintf("jetstream {\n  store_dir: %q\n", filepath.Join(c.Dir, "store"))
	if c.System == "nats-always" {
		js += "  sync_interval: always\n"
	}
	js += "}\n"
	conf := fmt.Sprintf("listen: \"127.0.0.1:%d\"\nmax_payload: 8MB\n%s", port, js)
	cf := filepath.Join(c.Dir, "nats.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(c.NATS, "-c", cf)
	logf, err := os.Create(filepath.Join(c.Dir, "nats.log"))
	if err != nil {
		return nil, "", err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = io.Discard, logf
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", c.NATS, err)
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	for i := 0; i < 100; i++ {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
			return cmd, url, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	log, _ := os.ReadFile(logf.Name())
	return nil, "", fmt.Errorf("%s on port %d did not come up (sync_interval needs nats-server 2.10 or later: go install github.com/nats-io/nats-server/v2@v2.15.2): %s",
		c.NATS, port, strings.TrimSpace(string(log)))
}

func runNATS(c config, r *result) error {
	srv, url, err := startNATS(c)
	if err != nil {
		return err
	}
	defer func() {
		r.ServerRSSMB = peakRSS(strconv.Itoa(srv.Process.Pid))
		if c.Count > 0 {
			r.CPUUsPerMsg += float64(procCPU(srv.Process.Pid).Microseconds()) / float64(c.Count)
		}
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return err
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "BENCH", Subjects: []string{"bench.q"},
		Storage: nats.FileStorage, Retention: nats.WorkQueuePolicy}); err != nil {
		return fmt.Errorf("add stream: %w", err)
	}
	if _, err := js.AddConsumer("BENCH", &nats.ConsumerConfig{Durable: "sink", AckPolicy: nats.AckExplicitPolicy,
		MaxAckPending: 1 << 20, AckWait: time.Minute}); err != nil {
		return fmt.Errorf("add consumer: %w", err)
	}
	var done atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for w := 0; w < c.Workers; w++ {
		wc, err := nats.Connect(url)
		if err != nil {
			return err
		}
		defer wc.Close()
		wjs, _ := wc.JetStream()
		sub, err := wjs.PullSubscribe("bench.q", "sink", nats.Bind("BENCH", "sink"))
		if err != nil {
			return fmt.Errorf("pull subscribe: %w", err)
		}
		go func() {
			for ctx.Err() == nil {
				msgs, err := sub.Fetch(c.Batch, nats.MaxWait(200*time.Millisecond))
				if err != nil && !errors.Is(err, nats.ErrTimeout) {
					if ctx.Err() != nil {
						return
					}
					continue
				}
				for _, m := range msgs {
					_ = m.Ack()
				}
				done.Add(int64(len(msgs)))
			}
		}()
	}
	newProducer := func() (producerFunc, error) {
		pc, err := nats.Connect(url)
		if err != nil {
			return nil, err
		}
		pjs, err := pc.JetStream(nats.PublishAsyncMaxPending(2 * c.Inflight))
		if err != nil {
			return nil, err
		}
		return func(p []byte) func() error {
			f, err := pjs.PublishAsync("bench.q", p)
			if err != nil {
				return func() error { return err }
			}
			return func() error {
				select {
				case <-f.Ok():
					return nil
				case err := <-f.Err():
					// JetStream refuses publishes while its ingest queue is
					// full ("too many requests"); a client publishes again
					for i := 0; err != nil && strings.Contains(err.Error(), "too many requests") && i < 1000; i++ {
						time.Sleep(time.Millisecond)
						_, err = pjs.Publish("bench.q", p)
					}
					return err
				}
			}
		}, nil
	}
	return drive(c, r, newProducer, done.Load)
}

// peakRSS returns the peak resident set size of a process in MB.
func peakRSS(pid string) float64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// procCPU returns the user+system CPU time a process used so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // clock ticks: USER_HZ is 100 on Linux
}

var ddRate = regexp.MustCompile(`(\d+) bytes .* copied, ([\d.]+) s`)

// ddProbe measures sequential write bandwidth with a final fdatasync.
func ddProbe(dir string) string {
	f := filepath.Join(dir, "dd.probe")
	defer os.Remove(f)
	out, err := exec.Command("dd", "if=/dev/zero", "of="+f, "bs=1M", "count=1024", "conv=fdatasync").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("failed: %v: %s", err, out)
	}
	m := ddRate.FindSubmatch(out)
	if m == nil {
		return strings.TrimSpace(string(out))
	}
	bytes, _ := strconv.ParseFloat(string(m[1]), 64)
	secs, _ := strconv.ParseFloat(string(m[2]), 64)
	return fmt.Sprintf("%.0f MB/s", bytes/secs/1e6)
}

// syncedWriteProbe measures sequential write bandwidth with an fdatasync
// per 16 MiB written, with incompressible data: the pattern of the disk
// broker's group commits at large messages. (dd writes zeros, which some
// virtual disks store faster than data.)
func syncedWriteProbe(dir string) string {
	f, err := os.Create(filepath.Join(dir, "write.probe"))
	if err != nil {
		return err.Error()
	}
	defer os.Remove(f.Name())
	defer f.Close()
	pool := make([]byte, 80<<20)
	_, _ = rand.Read(pool)
	start := time.Now()
	for i := 0; i < 64; i++ {
		off := (i * (16<<20 + 4093)) % (64 << 20)
		b := pool[off : off+16<<20]
		if _, err := f.Write(b); err != nil {
			return err.Error()
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return err.Error()
		}
	}
	return fmt.Sprintf("%.0f MB/s", float64(64<<24)/time.Since(start).Seconds()/1e6)
}

// fsyncProbe measures how many small write+fdatasync pairs the disk does per
// second.
func fsyncProbe(dir string) float64 {
	f, err := os.Create(filepath.Join(dir, "fsync.probe"))
	if err != nil {
		return 0
	}
	defer os.Remove(f.Name())
	defer f.Close()
	b := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		if _, err := f.Write(b); err != nil {
			return 0
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}
