package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicehq/sluice/internal/testkit"
	"github.com/sluicehq/sluice/pipeline"
)

// scrape GETs /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// value returns the value of the series of family name whose labels include
// every pair of labels ("k=v"); -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestMetricsMatchWhatWasProcessed(t *testing.T) {
	const count = 1000
	cfg := testkit.Load(t, `
pipelines:
  m:
    sources:
      - {name: gen, type: kit_gen, count: 1000, batch: 64, raw_bytes: 10, lag: true, bad_every: 100}
    stages:
      - filter: record.n % 7 != 0
    queues:
      q: {}
    sinks:
      - {name: out, type: kit_sink, fail_mod: 50, batch_size: 100}
`)
	m := New(Options{Version: "test", NoProcess: true})
	agent, _ := testkit.Agent(t, nil, func(o *pipeline.Options) { o.Hooks = m.Hooks() })
	m.SetAgent(agent)
	if _, err := agent.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}

	// expected figures
	rejected, dropped, failed := 0, 0, 0
	for n := 0; n < count; n++ {
		switch {
		case n%100 == 0:
			rejected++
		case n%7 == 0:
			dropped++
		case n%50 == 0:
			failed++
		}
	}
	enqueued := count - rejected - dropped
	written := enqueued - failed
	testkit.Eventually(t, "all delivered", func() bool {
		c := agent.Runtime("m").Counters()
		return c.Written == int64(written) && c.DeadLettered == int64(failed)
	})
	m.ObserveCommit(3*time.Millisecond, 10, 1000)
	m.ObserveCommit(5*time.Millisecond, 20, 2000)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	fams := scrape(t, srv.URL)
	p := "pipeline=m"
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sluice_source_messages_total", []string{p, "source=gen"}, count},
		{"sluice_source_bytes_total", []string{p, "source=gen"}, count * 10},
		{"sluice_stage_rejected_total", []string{p, "reason=decode"}, float64(rejected)},
		{"sluice_stage_dropped_total", []string{p}, float64(dropped)},
		{"sluice_queue_enqueued_total", []string{p, "queue=q"}, float64(enqueued)},
		{"sluice_sink_messages_total", []string{p, "sink=out"}, float64(written)},
		{"sluice_sink_errors_total", []string{p, "sink=out", "kind=permanent"}, float64(failed)},
		{"sluice_sink_dead_lettered_total", []string{p, "sink=out"}, float64(failed)},
		{"sluice_delivery_latency_seconds", []string{p, "sink=out"}, float64(written)},
		{"sluice_queue_messages", []string{p, "queue=q"}, 0},
		{"sluice_queue_messages", []string{p, "queue=q.dlq"}, float64(failed)},
		{"sluice_queue_messages", []string{p, "queue=dlq"}, float64(rejected)},
		{"sluice_queue_group_pending", []string{p, "queue=q", "group=out"}, 0},
		{"sluice_queue_group_pending", []string{p, "queue=q.dlq", "group=_replay"}, float64(failed)},
		{"sluice_queue_full", []string{p, "queue=q"}, 0},
		{"sluice_source_lag_messages", []string{p, "source=gen"}, 0},
		{"sluice_source_lag_bytes", []string{p, "source=gen"}, 0},
		{"sluice_component_up", []string{p, "kind=sink", "name=out"}, 1},
		{"sluice_component_up", []string{p, "kind=source", "name=gen"}, 1},
		{"sluice_pipeline_paused", []string{p}, 0},
		{"sluice_broker_commit_duration_seconds", nil, 2},
		{"sluice_broker_commit_records_total", nil, 30},
		{"sluice_broker_commit_bytes_total", nil, 3000},
		{"sluice_build_info", []string{"version=test"}, 1},
		{"sluice_config_last_reload_successful", nil, 1},
	}
	for _, c := range checks {
		if got := value(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if value(fams, "sluice_queue_oldest_age_seconds", p, "queue=q.dlq") <= 0 {
		t.Error("the dead-letter queue's oldest message has no age")
	}
	if _, ok := fams["sluice_source_lag_seconds"]; ok {
		t.Error("lag age reported although the source does not know it")
	}
	if got := value(fams, "sluice_pipeline_start_time_seconds", p); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("start time = %v", got)
	}

	// a reload that stops the pipeline removes its series
	m.ObserveReload(ReloadInvalid, pipeline.Change{})
	m.ObserveReload(ReloadSuccess, pipeline.Change{Stopped: []string{"m"}, Restarted: []string{"x"}})
	if _, err := agent.Apply(context.Background(), &pipeline.Config{}); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, srv.URL)
	var left []string
	for name, f := range fams {
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if l.GetName() == "pipeline" && l.GetValue() == "m" {
					left = append(left, name)
				}
			}
		}
	}
	sort.Strings(left)
	if len(left) > 0 {
		t.Errorf("series of the stopped pipeline remain: %v", left)
	}
	if got := value(fams, "sluice_config_reloads_total", "result=invalid"); got != 1 {
		t.Errorf("invalid reloads = %v", got)
	}
	if got := value(fams, "sluice_pipeline_restarts_total", "pipeline=x"); got != 1 {
		t.Errorf("restarts = %v", got)
	}
}

// A scrape while a reload drains a pipeline answers at once: Agent.Runtimes
// does not wait for Apply.
func TestScrapeDuringDrain(t *testing.T) {
	cfg := testkit.Load(t, `
pipelines:
  slow:
    sources: [{name: gen, type: kit_gen, count: 5}]
    queues: {q: {}}
    sinks: [{name: out, type: kit_sink, block: true}]
  other:
    sources: [{name: gen, type: kit_gen, count: 5}]
    queues: {q: {}}
    sinks: [{name: out, type: kit_sink}]
`)
	m := New(Options{NoProcess: true})
	agent, _ := testkit.Agent(t, cfg, func(o *pipeline.Options) { o.Hooks = m.Hooks() })
	m.SetAgent(agent)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	testkit.Eventually(t, "a write in progress", func() bool {
		return value(scrape(t, srv.URL), "sluice_queue_group_in_flight", "pipeline=slow", "queue=q", "group=out") > 0
	})
	applied := make(chan error, 1)
	go func() {
		_, err := agent.Apply(context.Background(), &pipeline.Config{Pipelines: []*pipeline.Pipeline{cfg.Pipeline("other")}})
		applied <- err
	}()
	testkit.Eventually(t, "the drain to start", func() bool { return testkit.Closes("slow/gen") == 1 })
	start := time.Now()
	fams := scrape(t, srv.URL)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("scrape took %s while a pipeline drained", d)
	}
	if value(fams, "sluice_queue_messages", "pipeline=other", "queue=q") < 0 {
		t.Fatal("the scrape during the drain lacks the other pipeline")
	}
	select {
	case err := <-applied:
		t.Fatalf("Apply finished before the blocked write was released: %v", err)
	default:
	}
	testkit.Unblock()
	select {
	case err := <-applied:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply did not finish after the write was released")
	}
}
