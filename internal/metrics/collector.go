package metrics

import (
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
)

// stateCollector reads the running pipelines at scrape time: queue stats
// from the broker, source lag, component health, pause state.
type stateCollector struct {
	agent atomic.Pointer[Runtimes]
}

var (
	queueLabels = []string{lPipeline, lQueue}
	descs       = struct {
		queueMessages, queueBytes, queueAge, queueFull, queueQuarantined *prometheus.Desc
		groupPending, groupInFlight                                      *prometheus.Desc
		lagMessages, lagBytes, lagSeconds                                *prometheus.Desc
		up, paused, started                                              *prometheus.Desc
	}{
		queueMessages:    prometheus.NewDesc("sluice_queue_messages", "Messages the queue retains (not yet acknowledged by every consumer group).", queueLabels, nil),
		queueBytes:       prometheus.NewDesc("sluice_queue_bytes", "Bytes the queue retains.", queueLabels, nil),
		queueAge:         prometheus.NewDesc("sluice_queue_oldest_age_seconds", "Age of the oldest message the queue retains; 0 when empty.", queueLabels, nil),
		queueFull:        prometheus.NewDesc("sluice_queue_full", "1 while the queue is at its max_bytes or max_messages limit and sources wait.", queueLabels, nil),
		queueQuarantined: prometheus.NewDesc("sluice_queue_quarantined_total", "Corrupt spans of the queue's log set aside since the queue was opened.", queueLabels, nil),
		groupPending:     prometheus.NewDesc("sluice_queue_group_pending", "Messages a consumer group (sink) has not acknowledged yet.", []string{lPipeline, lQueue, "group"}, nil),
		groupInFlight:    prometheus.NewDesc("sluice_queue_group_in_flight", "Messages a consumer group (sink) received and has not settled yet.", []string{lPipeline, lQueue, "group"}, nil),
		lagMessages:      prometheus.NewDesc("sluice_source_lag_messages", "Input a source knows is waiting to be read: records, rows or files.", []string{lPipeline, lSource}, nil),
		lagBytes:         prometheus.NewDesc("sluice_source_lag_bytes", "Bytes a source knows are waiting to be read.", []string{lPipeline, lSource}, nil),
		lagSeconds:       prometheus.NewDesc("sluice_source_lag_seconds", "Age of the oldest input a source has not read yet.", []string{lPipeline, lSource}, nil),
		up:               prometheus.NewDesc("sluice_component_up", "1 when a source or sink is connected and running (or a finite source finished), 0 while it connects, fails or its target is unavailable.", []string{lPipeline, "kind", "name"}, nil),
		paused:           prometheus.NewDesc("sluice_pipeline_paused", "1 while the pipeline's sources are paused through the admin API.", []string{lPipeline}, nil),
		started:          prometheus.NewDesc("sluice_pipeline_start_time_seconds", "Unix time the pipeline was (re)started.", []string{lPipeline}, nil),
	}
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descs.queueMessages, descs.queueBytes, descs.queueAge, descs.queueFull, descs.queueQuarantined,
		descs.groupPending, descs.groupInFlight, descs.lagMessages, descs.lagBytes, descs.lagSeconds, descs.up, descs.paused, descs.started} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.agent.Load()
	if a == nil || *a == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, rt := range (*a).Runtimes() {
		p := rt.Name()
		for name, q := range rt.Queues() {
			st := q.Stats()
			gauge(descs.queueMessages, float64(st.Messages), p, name)
			gauge(descs.queueBytes, float64(st.Bytes), p, name)
			gauge(descs.queueAge, st.OldestAge.Seconds(), p, name)
			gauge(descs.queueFull, boolFloat(st.Full), p, name)
			ch <- prometheus.MustNewConstMetric(descs.queueQuarantined, prometheus.CounterValue, float64(st.Quarantined), p, name)
			for _, g := range st.Groups {
				gauge(descs.groupPending, float64(g.Pending), p, name, g.Name)
				gauge(descs.groupInFlight, float64(g.InFlight), p, name, g.Name)
			}
		}
		for name, lag := range rt.SourceLag() {
			if lag.Messages >= 0 {
				gauge(descs.lagMessages, float64(lag.Messages), p, name)
			}
			if lag.Bytes >= 0 {
				gauge(descs.lagBytes, float64(lag.Bytes), p, name)
			}
			if lag.Age >= 0 {
				gauge(descs.lagSeconds, lag.Age.Seconds(), p, name)
			}
		}
		for component, state := range rt.Status() {
			kind, name, _ := strings.Cut(component, "/")
			gauge(descs.up, boolFloat(pipeline.Healthy(state)), p, kind, name)
		}
		gauge(descs.paused, boolFloat(rt.Paused()), p)
		gauge(descs.started, float64(rt.Started().UnixNano())/1e9, p)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
