// Command pipeline benchmarks Sluice end to end: it writes N JSON-line order
// records to a file, then runs `sluice run --once` on a pipeline that reads
// the file (jsonl), maps three fields, filters, routes to two queues and
// writes JSON lines with two file sinks. It reports records/s, MB/s and the
// agent's peak RSS, once with the memory queue and once with the disk queue.
//
//	go run ./bench/pipeline [-n 1000000] [-bin bin/sluice] [-brokers memory,disk] [-runs 1] [-profile DIR]
//
// With -runs N, each broker runs N times (the machine may be shared: figures
// swing with other load) and the best and median runs are reported too.
//
// With -profile, the pipeline also runs in this process under the CPU
// profiler and the profile is written to DIR/cpu-BROKER.pprof, with the
// block and mutex profiles (block-BROKER.pprof, mutex-BROKER.pprof: where
// goroutines waited), the allocation profile (allocs-BROKER.pprof) and an
// execution trace (trace-BROKER.out, for go tool trace).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/adapters"
	_ "github.com/sluicehq/sluice/adapters/all"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/disk"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/pipeline"
)

const pipelineYAML = `
pipelines:
  bench:
    broker: {type: %s}
    sources:
      - name: in
        type: file
        path: in
        include: ["*.jsonl"]
        ready: immediate
        after: keep
        batch_size: 1000
        codec: jsonl
    stages:
      - map:
          total: record.qty * record.price
          customer: upper(record.customer)
          priority: record.qty > 40
      - filter: record.status != "cancelled"
      - route:
          - when: record.priority
            to: priority
          - to: normal
    queues:
      priority: {max_bytes: 256MiB}
      normal: {max_bytes: 256MiB}
    sinks:
      - {name: p, from: priority, type: file, base_dir: out, path: priority.jsonl, batch_size: 1000}
      - {name: n, from: normal, type: file, base_dir: out, path: normal.jsonl, batch_size: 1000}
`

func main() {
	n := flag.Int("n", 1_000_000, "records to generate")
	bin := flag.String("bin", "bin/sluice", "sluice binary (build it with make build)")
	brokers := flag.String("brokers", "memory,disk", "broker types to run, comma-separated")
	profile := flag.String("profile", "", "also run in-process under the CPU profiler and write profiles to this dir")
	work := flag.String("dir", "", "work directory (default: a temp dir, removed afterwards)")
	runs := flag.Int("runs", 1, "runs per broker; with more than one, the best and the median are reported too")
	flag.Parse()

	dir := *work
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "sluice-bench"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	input := filepath.Join(dir, "orders.jsonl")
	size, cancelled := generate(input, *n)
	fmt.Printf("input: %d records, %.1f MB (%d cancelled, filtered out)\n", *n, float64(size)/1e6, cancelled)
	fmt.Printf("machine: %d CPUs, %s\n\n", runtime.NumCPU(), runtime.Version())
	fmt.Printf("%-14s %12s %10s %10s %12s\n", "broker", "records/s", "MB/s", "seconds", "peak RSS MB")
	for _, b := range strings.Split(*brokers, ",") {
		type result struct {
			elapsed time.Duration
			rss     int64
		}
		var results []result
		show := func(label string, r result) {
			fmt.Printf("%-14s %12.0f %10.1f %10.2f %12.1f\n", label, float64(*n)/r.elapsed.Seconds(), float64(size)/1e6/r.elapsed.Seconds(), r.elapsed.Seconds(), float64(r.rss)/1024)
		}
		for i := 0; i < *runs; i++ {
			elapsed, rss := runBinary(*bin, dir, input, b, *n-cancelled)
			results = append(results, result{elapsed, rss})
			show(b, results[i])
		}
		if *runs > 1 {
			sort.Slice(results, func(i, j int) bool { return results[i].elapsed < results[j].elapsed })
			show(b+" best", results[0])
			show(b+" median", results[len(results)/2])
			sort.Slice(results, func(i, j int) bool { return results[i].rss < results[j].rss })
			fmt.Printf("%-14s peak RSS MB: lowest %.1f, median %.1f, highest %.1f\n", b, float64(results[0].rss)/1024, float64(results[len(results)/2].rss)/1024, float64(results[len(results)-1].rss)/1024)
		}
		if *profile != "" {
			profileInProcess(*profile, dir, input, b)
		}
	}
}

// generate writes n order records and returns the file size and how many
// records the filter will drop.
func generate(path string, n int) (int64, int) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	statuses := []string{"open", "shipped", "paid", "cancelled", "open", "paid", "shipped", "open"}
	cancelled := 0
	for i := 0; i < n; i++ {
		st := statuses[i%len(statuses)]
		if st == "cancelled" {
			cancelled++
		}
		fmt.Fprintf(w, `{"order_id":%d,"customer":"customer-%05d","sku":"SKU-%04d","qty":%d,"price":%d.%02d,"status":"%s","created":"2026-11-%02dT10:%02d:00Z"}`+"\n",
			i, i%50000, i%9973, 1+i%50, 1+i%500, i%100, st, 1+i%28, i%60)
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	return st.Size(), cancelled
}

func prepare(dir, input, broker, suffix string) string {
	run := filepath.Join(dir, "run-"+broker+suffix)
	os.RemoveAll(run)
	if err := os.MkdirAll(filepath.Join(run, "in"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.Link(input, filepath.Join(run, "in", "orders.jsonl")); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "pipeline.yaml"), []byte(fmt.Sprintf(pipelineYAML, broker)), 0o644); err != nil {
		log.Fatal(err)
	}
	return run
}

func runBinary(bin, dir, input, broker string, want int) (time.Duration, int64) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		log.Fatal(err)
	}
	run := prepare(dir, input, broker, "")
	cmd := exec.Command(abs, "run", "--once", "-c", "pipeline.yaml", "--data-dir", "data", "--log-level", "warn", "--broker", broker)
	cmd.Dir = run
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s: %v", broker, err)
	}
	elapsed := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	rss := ru.Maxrss
	fmt.Fprintf(os.Stderr, "%s: cpu user %.2fs sys %.2fs, wall %.2fs\n", broker, time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds(), elapsed.Seconds())
	if got := countLines(filepath.Join(run, "out")); got != want {
		log.Fatalf("%s: %d records written, want %d", broker, got, want)
	}
	return elapsed, rss
}

func countLines(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			n++
		}
		return nil
	})
	return n
}

func profileInProcess(profDir, dir, input, brokerType string) {
	run := prepare(dir, input, brokerType, "-prof")
	cfg, err := pipeline.Load(filepath.Join(run, "pipeline.yaml"), pipeline.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(run); err != nil {
		log.Fatal(err)
	}
	defer os.Chdir(wd)
	var b broker.Broker = broker.NewMemory()
	if brokerType == "disk" {
		if b, err = disk.Open("data", disk.Options{}); err != nil {
			log.Fatal(err)
		}
	}
	defer b.Close()
	store, err := statestore.Open("data/state")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := os.MkdirAll(profDir, 0o755); err != nil {
		log.Fatal(err)
	}
	f, err := os.Create(filepath.Join(profDir, "cpu-"+brokerType+".pprof"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	agent := pipeline.NewAgent(pipeline.Options{Broker: b, Memory: b, Once: true,
		State: func(p, c string) adapters.State { return store.Namespace(p + "/" + c + "/") }})
	tf, err := os.Create(filepath.Join(profDir, "trace-"+brokerType+".out"))
	if err != nil {
		log.Fatal(err)
	}
	defer tf.Close()
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(10)
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	if err := trace.Start(tf); err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	if _, err := agent.Apply(context.Background(), cfg); err != nil {
		log.Fatal(err)
	}
	_ = agent.Wait(context.Background())
	_ = agent.Stop(context.Background())
	elapsed := time.Since(start)
	trace.Stop()
	pprof.StopCPUProfile()
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
	for _, name := range []string{"block", "mutex", "allocs"} {
		pf, err := os.Create(filepath.Join(profDir, name+"-"+brokerType+".pprof"))
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.Lookup(name).WriteTo(pf, 0); err != nil {
			log.Fatal(err)
		}
		pf.Close()
	}
	fmt.Printf("         in-process (profiled) run: %.2fs; profiles written to %s\n", elapsed.Seconds(), profDir)
}
