package natsbroker_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	_ "github.com/sluicehq/sluice/adapters/generate"
	_ "github.com/sluicehq/sluice/adapters/stdout"
	natsbroker "github.com/sluicehq/sluice/broker/nats"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	_ "github.com/sluicehq/sluice/transform/codec"
)

// collected counts the records the collect sinks of this process wrote, by
// seq, and how many each sink instance (one per agent) wrote.
var collected = struct {
	sync.Mutex
	seen   map[int64]int
	bySink map[*collectSink]int
}{seen: map[int64]int{}, bySink: map[*collectSink]int{}}

func resetCollected() {
	collected.Lock()
	defer collected.Unlock()
	collected.seen = map[int64]int{}
	collected.bySink = map[*collectSink]int{}
}

// collectedCounts returns distinct records, duplicates and how many sinks
// wrote anything.
func collectedCounts() (distinct, dups, sinks int) {
	collected.Lock()
	defer collected.Unlock()
	for _, n := range collected.seen {
		dups += n - 1
	}
	for _, n := range collected.bySink {
		if n > 0 {
			sinks++
		}
	}
	return len(collected.seen), dups, sinks
}

type collectSink struct{ _ int } // not zero-sized: each instance has its own address

func (s *collectSink) Connect(context.Context) error { return nil }
func (s *collectSink) Close(context.Context) error   { return nil }
func (s *collectSink) Write(ctx context.Context, msgs []adapters.Message) error {
	collected.Lock()
	defer collected.Unlock()
	for _, m := range msgs {
		seq, _ := m.Record["seq"].(int64)
		collected.seen[seq]++
	}
	collected.bySink[s] += len(msgs)
	return nil
}

func init() {
	adapters.RegisterSink("nats_test_collect", &adapters.Spec{Summary: "collects records for the nats tests"},
		func(*adapters.Config, adapters.Resources) (adapters.Sink, error) { return &collectSink{}, nil })
}

// sharePipeline is one generate source (count records at rate per second)
// into one queue read by a collecting sink.
func sharePipeline(count, rate int, sink string) string {
	return fmt.Sprintf(`pipelines:
  share:
    sources:
      - {name: gen, type: generate, count: %d, rate: %d, batch_size: 100}
    queues:
      q: {visibility_timeout: 2s, backoff: {initial: 50ms, max: 200ms}}
    sinks:
      - {name: out, type: %s, workers: 2, batch_size: 100}
`, count, rate, sink)
}

// inProcessAgent runs cfg on its own connection to the servers of o, the
// way `sluice run --broker nats` does.
func inProcessAgent(t *testing.T, o natsbroker.Options, cfg *pipeline.Config) (*pipeline.Agent, *natsbroker.Broker) {
	t.Helper()
	return inProcessAgentWith(t, o, cfg, nil)
}

// inProcessAgentWith is inProcessAgent with tune called on the engine's
// options before the agent starts.
func inProcessAgentWith(t *testing.T, o natsbroker.Options, cfg *pipeline.Config, tune func(*natsbroker.Broker, *pipeline.Options)) (*pipeline.Agent, *natsbroker.Broker) {
	t.Helper()
	b := connect(t, o)
	local := statestore.Memory()
	opts := pipeline.Options{Broker: b, DrainTimeout: 5 * time.Second,
		State: func(p, c string) adapters.State {
			if len(c) > 7 && c[:7] == "source/" {
				return b.State(p + "/" + c + "/")
			}
			return local
		},
		Lease: func(ctx context.Context, p, s string) (pipeline.Lease, error) { return b.Lease(ctx, p, s) },
	}
	if tune != nil {
		tune(b, &opts)
	}
	a := pipeline.NewAgent(opts)
	if _, err := a.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()); _ = b.Close() })
	return a, b
}

func loadConfig(t *testing.T, text string) *pipeline.Config {
	t.Helper()
	cfg, err := pipeline.LoadBytes("share.yaml", []byte(text), pipeline.LoadOptions{Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// waitAll waits until count distinct records were collected.
func waitAll(t *testing.T, count int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		distinct, _, _ := collectedCounts()
		if distinct == count {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records delivered after %v", distinct, count, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentsShareOnePipeline(t *testing.T) {
	url := testenv.NATS(t)
	for _, agents := range []int{2, 3} {
		t.Run(strconv.Itoa(agents)+"agents", func(t *testing.T) {
			resetCollected()
			o := testOptions(t, url, testenv.NATSPrefix(t))
			const count = 6000
			cfg := loadConfig(t, sharePipeline(count, 5000, "nats_test_collect"))
			var as []*pipeline.Agent
			for i := 0; i < agents; i++ {
				a, _ := inProcessAgent(t, o, cfg)
				as = append(as, a)
			}
			// sample the sources: one runs, the others stand by
			stopped := make([]bool, agents)
			var mu sync.Mutex
			violations := 0
			done := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					select {
					case <-done:
						return
					case <-time.After(2 * time.Millisecond):
					}
					mu.Lock()
					running := 0
					for i, a := range as {
						if !stopped[i] && a.Runtime("share").Status()["source/gen"] == "running" {
							running++
						}
					}
					if running > 1 {
						violations++
					}
					mu.Unlock()
				}
			}()
			// the holder stops (drains, releases) while the source runs: another
			// agent takes it and resumes from the shared checkpoint
			var holder int
			deadline := time.Now().Add(10 * time.Second)
			for holder = -1; holder < 0; {
				for i, a := range as {
					if a.Runtime("share").Status()["source/gen"] == "running" {
						holder = i
					}
				}
				if time.Now().After(deadline) {
					t.Fatal("no agent runs the source")
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			mu.Lock()
			stopped[holder] = true
			mu.Unlock()
			if err := as[holder].Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitAll(t, count, 30*time.Second)
			close(done)
			<-sampled
			distinct, dups, sinks := collectedCounts()
			t.Logf("%d agents: %d records, %d duplicates, %d sinks delivered", agents, distinct, dups, sinks)
			if violations > 0 {
				t.Fatalf("the source ran in two agents at once (%d samples)", violations)
			}
			if sinks < 2 {
				t.Fatalf("the work was not shared: %d sinks delivered", sinks)
			}
		})
	}
}
