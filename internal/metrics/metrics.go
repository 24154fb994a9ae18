// Package metrics exposes the agent's Prometheus metrics: counters and
// histograms fed by the engine's hooks as messages flow, and gauges read at
// scrape time from the running pipelines (queue depth, bytes, oldest
// message age, consumer groups, source lag, component health).
//
// Every metric is named sluice_*; docs/operations.md lists them all.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/pipeline"
)

// Runtimes lists the running pipelines; *pipeline.Agent implements it.
type Runtimes interface {
	Runtimes() []*pipeline.Runtime
}

// Options configure New.
type Options struct {
	// Agent is read at every scrape for the gauges; SetAgent sets it later
	// (the agent needs Hooks before it exists). Nil means no pipelines.
	Agent Runtimes
	// Version is reported by sluice_build_info.
	Version string
	// NoProcess leaves out the Go runtime and process collectors (tests).
	NoProcess bool
}

// Metrics holds the agent's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	reg   *prometheus.Registry
	state *stateCollector

	sourceMsgs, sourceBytes            *prometheus.CounterVec
	dropped, rejected, enqueued        *prometheus.CounterVec
	sinkMsgs, sinkErrors               *prometheus.CounterVec
	sinkRetries, sinkDead              *prometheus.CounterVec
	writeDuration, deliveryLatency     *prometheus.HistogramVec
	commitDuration                     prometheus.Histogram
	commitRecords, commitBytes         prometheus.Counter
	reloads                            *prometheus.CounterVec
	restarts                           *prometheus.CounterVec
	lastReloadOK, lastReloadSuccessful prometheus.Gauge

	vecs []interface {
		DeletePartialMatch(prometheus.Labels) int
	}
}

// Label names.
const (
	lPipeline = "pipeline"
	lSource   = "source"
	lSink     = "sink"
	lQueue    = "queue"
)

// New creates the metrics and registers them in a registry of their own.
func New(opts Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), state: &stateCollector{}}
	m.SetAgent(opts.Agent)
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		m.vecs = append(m.vecs, v)
		return v
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(v)
		m.vecs = append(m.vecs, v)
		return v
	}
	m.sourceMsgs = counter("sluice_source_messages_total", "Messages read by a source.", lPipeline, lSource)
	m.sourceBytes = counter("sluice_source_bytes_total", "Raw payload bytes read by a source (structured records are not measured).", lPipeline, lSource)
	m.dropped = counter("sluice_stage_dropped_total", "Messages dropped by filter stages.", lPipeline)
	m.rejected = counter("sluice_stage_rejected_total", "Messages sent to the pipeline's dead-letter queue before reaching a queue, by reason: decode, stage, route.", lPipeline, "reason")
	m.enqueued = counter("sluice_queue_enqueued_total", "Messages durably enqueued into a queue.", lPipeline, lQueue)
	m.sinkMsgs = counter("sluice_sink_messages_total", "Messages a sink wrote and acknowledged.", lPipeline, lSink)
	m.sinkErrors = counter("sluice_sink_errors_total", "Messages a sink failed to write, by error kind: permanent, transient, unavailable.", lPipeline, lSink, "kind")
	m.sinkRetries = counter("sluice_sink_retries_total", "Failed messages scheduled for another attempt.", lPipeline, lSink)
	m.sinkDead = counter("sluice_sink_dead_lettered_total", "Failed messages moved to the queue's dead-letter queue.", lPipeline, lSink)
	m.writeDuration = histogram("sluice_sink_write_duration_seconds", "Duration of one sink Write call (one batch).",
		prometheus.ExponentialBucketsRange(0.0005, 60, 16), lPipeline, lSink)
	m.deliveryLatency = histogram("sluice_delivery_latency_seconds", "End-to-end latency of delivered messages: from the source reading them to the sink's acknowledgement.",
		prometheus.ExponentialBucketsRange(0.001, 3600, 20), lPipeline, lSink)
	m.restarts = counter("sluice_pipeline_restarts_total", "Pipeline restarts caused by a configuration change.", lPipeline)
	m.reloads = counter("sluice_config_reloads_total", "Configuration reloads by result: success, invalid (the config did not validate; nothing changed), error (a pipeline failed to start).", "result")

	m.commitDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_broker_commit_duration_seconds",
		Help: "Latency of the disk broker's group commits (write and fsync).", Buckets: prometheus.ExponentialBucketsRange(0.00005, 2, 16)})
	m.commitRecords = prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_broker_commit_records_total", Help: "Records made durable by the disk broker's commits."})
	m.commitBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_broker_commit_bytes_total", Help: "Bytes made durable by the disk broker's commits."})
	m.lastReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_config_last_reload_successful", Help: "1 when the last configuration reload succeeded, 0 when the config was invalid or a pipeline failed to start."})
	m.lastReloadSuccessful = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_config_last_reload_success_timestamp_seconds", Help: "Unix time of the last successful configuration load."})
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_build_info", Help: "Always 1; the version label says which Sluice runs.",
		ConstLabels: prometheus.Labels{"version": opts.Version}})
	build.Set(1)
	m.lastReloadOK.Set(1)
	m.lastReloadSuccessful.SetToCurrentTime()
	m.reg.MustRegister(m.commitDuration, m.commitRecords, m.commitBytes, m.lastReloadOK, m.lastReloadSuccessful, build, m.state)
	if !opts.NoProcess {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// SetAgent sets the pipelines the scrape-time gauges read.
func (m *Metrics) SetAgent(a Runtimes) {
	m.state.agent.Store(&a)
}

// Registry returns the registry holding every metric, to add more or gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Hooks returns the engine hooks that feed the flow metrics; pass them in
// pipeline.Options.Hooks.
func (m *Metrics) Hooks() pipeline.Hooks {
	return pipeline.Hooks{
		SourceRead: func(p, s string, n int) { m.sourceMsgs.WithLabelValues(p, s).Add(float64(n)) },
		SourceBytes: func(p, s string, n int64) {
			m.sourceBytes.WithLabelValues(p, s).Add(float64(n))
		},
		Dropped:  func(p string, n int) { m.dropped.WithLabelValues(p).Add(float64(n)) },
		Rejected: func(p, reason string, n int) { m.rejected.WithLabelValues(p, reason).Add(float64(n)) },
		Enqueued: func(p, q string, n int) { m.enqueued.WithLabelValues(p, q).Add(float64(n)) },
		SinkWrite: func(p, s string, ok int, failed map[adapters.Kind]int, d time.Duration) {
			if ok > 0 {
				m.sinkMsgs.WithLabelValues(p, s).Add(float64(ok))
			}
			for k, n := range failed {
				m.sinkErrors.WithLabelValues(p, s, k.String()).Add(float64(n))
			}
			m.writeDuration.WithLabelValues(p, s).Observe(d.Seconds())
		},
		Nacked: func(p, s string, retried, dead int) {
			if retried > 0 {
				m.sinkRetries.WithLabelValues(p, s).Add(float64(retried))
			}
			if dead > 0 {
				m.sinkDead.WithLabelValues(p, s).Add(float64(dead))
			}
		},
		Delivered: func(p, s string, lat []time.Duration) {
			h := m.deliveryLatency.WithLabelValues(p, s)
			for _, d := range lat {
				h.Observe(d.Seconds())
			}
		},
	}
}

// ObserveCommit records one group commit of the disk broker: how long the
// write and fsync took and what it made durable. Its signature matches the
// disk broker's OnCommit option, so the agent passes m.ObserveCommit there.
func (m *Metrics) ObserveCommit(latency time.Duration, records, bytes int) {
	m.commitDuration.Observe(latency.Seconds())
	m.commitRecords.Add(float64(records))
	m.commitBytes.Add(float64(bytes))
}

// Reload results for ObserveReload.
const (
	ReloadSuccess = "success"
	ReloadInvalid = "invalid"
	ReloadError   = "error"
)

// ObserveReload records a configuration reload: its result and which
// pipelines it restarted. Series of stopped pipelines are removed.
func (m *Metrics) ObserveReload(result string, ch pipeline.Change) {
	m.reloads.WithLabelValues(result).Inc()
	if result == ReloadSuccess {
		m.lastReloadOK.Set(1)
		m.lastReloadSuccessful.SetToCurrentTime()
	} else {
		m.lastReloadOK.Set(0)
	}
	for _, p := range ch.Restarted {
		m.restarts.WithLabelValues(p).Inc()
	}
	for _, p := range ch.Stopped {
		m.Forget(p)
	}
}

// Forget removes every series of a pipeline that no longer runs.
func (m *Metrics) Forget(pipeline string) {
	for _, v := range m.vecs {
		v.DeletePartialMatch(prometheus.Labels{lPipeline: pipeline})
	}
}
