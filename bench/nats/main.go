// Command nats benchmarks Sluice on NATS JetStream against the disk broker:
// a file → jsonl → queue → file pipeline, run in-process by one agent on
// disk, then by 1, 2 and 3 agents (each with its own connection, sharing
// the pipeline: the source runs in the agent holding its lease, the sinks
// compete) on a private one-node server and on a private three-node cluster
// with replicas 3. It reports records/s and the p99 end-to-end latency
// (source read to sink ack; under full load it is mostly queueing).
//
//	go run ./bench/nats [-n 200000] [-setups disk,nats1,nats3] [-agents 1,2,3]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
	_ "github.com/sluicehq/sluice/adapters/all"
	"github.com/sluicehq/sluice/broker/disk"
	natsbroker "github.com/sluicehq/sluice/broker/nats"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
)

const pipelineYAML = `
pipelines:
  bench:
    sources:
      - name: in
        type: file
        path: %q
        include: ["*.jsonl"]
        ready: immediate
        after: keep
        batch_size: 1000
        codec: jsonl
    queues:
      orders: {max_bytes: 256MiB}
    sinks:
      - {name: out, type: file, base_dir: %q, path: out.jsonl, codec: jsonl, batch_size: 1000, workers: 2}
`

func main() {
	n := flag.Int("n", 200_000, "records")
	setups := flag.String("setups", "disk,nats1,nats3", "disk, nats1 (one private server), nats3 (three-node cluster, replicas 3)")
	agentsFlag := flag.String("agents", "1,2,3", "numbers of agents sharing the pipeline on nats")
	flag.Parse()
	dir, err := os.MkdirTemp("", "sluice-bench-nats")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		log.Fatal(err)
	}
	generate(filepath.Join(in, "orders.jsonl"), *n)
	fmt.Printf("machine: %d CPUs, %s; %d records\n\n", runtime.NumCPU(), runtime.Version(), *n)
	fmt.Printf("%-28s %8s %12s %12s\n", "setup", "agents", "records/s", "p99 latency")
	var counts []int
	for _, a := range strings.Split(*agentsFlag, ",") {
		k, err := strconv.Atoi(a)
		if err != nil {
			log.Fatal(err)
		}
		counts = append(counts, k)
	}
	for _, setup := range strings.Split(*setups, ",") {
		switch setup {
		case "disk":
			report("disk", 1, runDisk(dir, in, *n))
		case "nats1", "nats3":
			nodes, replicas := 1, 1
			if setup == "nats3" {
				nodes, replicas = 3, 3
			}
			c, err := testenv.NewNATSCluster(nodes)
			if err != nil {
				log.Fatal(err)
			}
			for i, k := range counts {
				o := natsbroker.Options{URL: c.URL(), Prefix: fmt.Sprintf("BENCH%d", i), SubjectPrefix: fmt.Sprintf("bench%d", i), Replicas: replicas}
				name := fmt.Sprintf("nats, %d node(s), R%d", nodes, replicas)
				report(name, k, runNATS(dir, in, *n, k, o))
			}
			c.Close()
		default:
			log.Fatalf("unknown setup %q", setup)
		}
	}
}

type result struct {
	elapsed time.Duration
	p99     time.Duration
}

func report(name string, agents int, r result) {
	fmt.Printf("%-28s %8d %12.0f %12s\n", name, agents, float64(flagN())/r.elapsed.Seconds(), r.p99.Round(time.Millisecond))
}

func flagN() int { return flag.Lookup("n").Value.(flag.Getter).Get().(int) }

func generate(path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, `{"order_id":%d,"customer":"customer-%05d","sku":"SKU-%04d","qty":%d,"price":%d.%02d}`+"\n", i, i%50000, i%9973, 1+i%50, 1+i%500, i%100)
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	f.Close()
}

// latencies collects the end-to-end latencies of every agent.
type latencies struct {
	mu      sync.Mutex
	d       []time.Duration
	written int
}

func (l *latencies) hook(p, s string, lat []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, lat...)
	l.written += len(lat)
	l.mu.Unlock()
}

func (l *latencies) wait(n int) {
	for {
		l.mu.Lock()
		w := l.written
		l.mu.Unlock()
		if w >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *latencies) p99() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.d)
	if len(l.d) == 0 {
		return 0
	}
	return l.d[len(l.d)*99/100]
}

func load(in, out string) *pipeline.Config {
	text := fmt.Sprintf(pipelineYAML, in, out)
	cfg, err := pipeline.LoadBytes("bench.yaml", []byte(text), pipeline.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	return cfg
}

func runDisk(dir, in string, n int) result {
	run, err := os.MkdirTemp(dir, "disk")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(run)
	b, err := disk.Open(filepath.Join(run, "data"), disk.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	st, err := statestore.Open(filepath.Join(run, "state"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	lat := &latencies{}
	opts := pipeline.Options{Broker: b, State: func(p, c string) adapters.State { return st.Namespace(p + "/" + c + "/") }}
	opts.Hooks.Delivered = lat.hook
	return measure([]pipeline.Options{opts}, []*pipeline.Config{load(in, filepath.Join(run, "out"))}, lat, n)
}

func runNATS(dir, in string, n, agents int, o natsbroker.Options) result {
	run, err := os.MkdirTemp(dir, "nats")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(run)
	lat := &latencies{}
	var opts []pipeline.Options
	var cfgs []*pipeline.Config
	var brokers []*natsbroker.Broker
	for i := 0; i < agents; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		b, err := natsbroker.Connect(ctx, o)
		cancel()
		if err != nil {
			log.Fatal(err)
		}
		brokers = append(brokers, b)
		local := statestore.Memory()
		po := pipeline.Options{Broker: b,
			State: func(p, c string) adapters.State {
				if strings.HasPrefix(c, "source/") {
					return b.State(p + "/" + c + "/")
				}
				return local
			},
			Lease: func(ctx context.Context, p, s string) (pipeline.Lease, error) { return b.Lease(ctx, p, s) },
		}
		po.Hooks.Delivered = lat.hook
		opts = append(opts, po)
		cfgs = append(cfgs, load(in, filepath.Join(run, "out"+strconv.Itoa(i))))
	}
	r := measure(opts, cfgs, lat, n)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := brokers[0].DeleteAll(ctx); err != nil {
		log.Print(err)
	}
	for _, b := range brokers {
		_ = b.Close()
	}
	return r
}

// measure starts every agent, waits until n records were written and
// acked, and stops them.
func measure(opts []pipeline.Options, cfgs []*pipeline.Config, lat *latencies, n int) result {
	start := time.Now()
	var agents []*pipeline.Agent
	for i, o := range opts {
		a := pipeline.NewAgent(o)
		if _, err := a.Apply(context.Background(), cfgs[i]); err != nil {
			log.Fatal(err)
		}
		agents = append(agents, a)
	}
	lat.wait(n)
	elapsed := time.Since(start)
	for _, a := range agents {
		_ = a.Stop(context.Background())
	}
	return result{elapsed: elapsed, p99: lat.p99()}
}
