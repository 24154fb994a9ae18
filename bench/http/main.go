// Command http benchmarks the http source through a real `sluice run` on
// the disk broker, with a Go load generator in this process (on the same
// machine: the two share its cores).
//
//	go run ./bench/http [-bin bin/sluice] [-duration 10s] [-clients 64] [-records 1,100] [-rate 1000]
//
// async: closed-loop clients POST as fast as they are answered (each POST
// an array of -records records) to an http source in mode async, whose
// queue is on the disk broker and whose sink writes JSON-lines files; a
// 202 means durably enqueued. It reports requests/s, records/s and the
// latency of the 202s.
//
// request_reply: an open-loop generator sends -rate requests/s (each on its
// own schedule, so a slow answer does not slow the next request down and
// latency is measured from the scheduled time) to an http source in mode
// request_reply; the message goes through a map stage and a disk queue to
// an http sink calling a backend served by this process, whose JSON
// response is the reply. It reports p50/p90/p99/max latency.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const asyncYAML = `pipelines:
  ingest:
    sources:
      - {name: api, type: http, address: "%s", path: /in, batch_size: 2000}
    queues:
      q: {}
    sinks:
      - {name: out, type: file, base_dir: out, path: records.jsonl, max_records: 1000000, batch_size: 2000}
`

const rrYAML = `pipelines:
  rr:
    sources:
      - {name: api, type: http, address: "%s", path: /ask, mode: request_reply, timeout: 5s}
    stages:
      - map:
          asked_at: now()
    queues:
      q: {}
    sinks:
      - {name: backend, type: http, url: "%s/answer/{{ record.n }}", workers: 8, batch_size: 64}
`

func main() {
	bin := flag.String("bin", "bin/sluice", "sluice binary (build it with make build)")
	duration := flag.Duration("duration", 10*time.Second, "length of each run")
	clients := flag.Int("clients", 64, "concurrent clients of the async runs")
	records := flag.String("records", "1,100", "records per POST of the async runs, comma-separated")
	rate := flag.Int("rate", 1000, "requests/s of the request_reply run")
	modes := flag.String("modes", "async,request_reply", "runs to do")
	flag.Parse()
	log.SetFlags(0)
	for _, mode := range strings.Split(*modes, ",") {
		switch mode {
		case "async":
			for _, r := range strings.Split(*records, ",") {
				n, err := strconv.Atoi(r)
				if err != nil {
					log.Fatal(err)
				}
				runAsync(*bin, *duration, *clients, n)
			}
		case "request_reply":
			runRR(*bin, *duration, *rate)
		default:
			log.Fatalf("unknown mode %q", mode)
		}
	}
}

// agent runs `sluice run` on yaml in a temp dir until stop.
type agent struct {
	cmd *exec.Cmd
	dir string
	out bytes.Buffer
}

func startAgent(bin, yaml, probe string) *agent {
	abs, err := filepath.Abs(bin)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "sluice-bench-http")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(yaml), 0o600); err != nil {
		log.Fatal(err)
	}
	a := &agent{dir: dir}
	a.cmd = exec.Command(abs, "run", "--admin-address", "off", "--quiet", "--log-level", "warn", "-c", "p.yaml", "--data-dir", "data")
	a.cmd.Dir = dir
	a.cmd.Stdout, a.cmd.Stderr = &a.out, &a.out
	if err := a.cmd.Start(); err != nil {
		log.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(probe); err == nil {
			resp.Body.Close()
			return a
		}
		if time.Now().After(deadline) {
			log.Fatalf("the agent does not listen:\n%s", a.out.String())
		}
	}
}

func (a *agent) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	_ = a.cmd.Wait()
	os.RemoveAll(a.dir)
}

// rss returns the agent's peak resident set size (VmHWM) in MiB.
func (a *agent) rss() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return float64(kb) / 1024
		}
	}
	return -1
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns}}
}

func runAsync(bin string, d time.Duration, clients, perPost int) {
	addr := freeAddr()
	url := "http://" + addr + "/in"
	a := startAgent(bin, fmt.Sprintf(asyncYAML, addr), url)
	defer a.stop()
	var body bytes.Buffer
	body.WriteString("[")
	for i := 0; i < perPost; i++ {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"order_id": %d, "customer": "ACME-%d", "qty": %d, "price": "12.50", "status": "new"}`, i, i%97, i%50)
	}
	body.WriteString("]")
	payload := body.Bytes()
	client := newClient(clients)
	var ok, failed atomic.Int64
	lat := make([][]time.Duration, clients)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					ok.Add(1)
					lat[c] = append(lat[c], time.Since(t0))
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	fmt.Printf("async, %d records/POST, %d clients, %s: %.0f req/s, %.0f records/s accepted (202), %d failed; latency %s; agent peak RSS %.0f MiB\n",
		perPost, clients, d, float64(ok.Load())/el, float64(ok.Load())*float64(perPost)/el, failed.Load(), percentiles(all), a.rss())
}

func runRR(bin string, d time.Duration, rate int) {
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"answer": %q, "credit": 1500.5}`, r.URL.Path)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = backend.Serve(ln) }()
	defer backend.Close()
	addr := freeAddr()
	url := "http://" + addr + "/ask"
	a := startAgent(bin, fmt.Sprintf(rrYAML, addr, "http://"+ln.Addr().String()), url)
	defer a.stop()
	client := newClient(512)
	interval := time.Second / time.Duration(rate)
	n := int(d / interval)
	lat := make([]time.Duration, n)
	status := make([]int, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post(url, "application/json", strings.NewReader(fmt.Sprintf(`{"n": %d}`, i)))
			if err != nil {
				status[i] = -1
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status[i] = resp.StatusCode
			lat[i] = time.Since(at) // from the scheduled time: no coordinated omission
		}()
	}
	wg.Wait()
	sent := time.Since(start).Seconds()
	var good []time.Duration
	bad := map[int]int{}
	for i, s := range status {
		if s == http.StatusOK {
			good = append(good, lat[i])
		} else {
			bad[s]++
		}
	}
	fmt.Printf("request_reply, %d req/s offered for %s (%.0f/s sent): %d answered 200, other %v; latency %s; agent peak RSS %.0f MiB\n",
		rate, d, float64(n)/sent, len(good), bad, percentiles(good), a.rss())
}

func percentiles(l []time.Duration) string {
	if len(l) == 0 {
		return "n/a"
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	p := func(q float64) time.Duration {
		return l[min(len(l)-1, int(q*float64(len(l))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s", p(0.50), p(0.90), p(0.99), l[len(l)-1].Round(10*time.Microsecond))
}
