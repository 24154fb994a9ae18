package admin

import (
	"net/http"
	"sort"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/pipeline"
)

// pipelineInfo is a running pipeline as the API shows it. Adapter
// configurations are redacted: Secret fields are never shown.
type pipelineInfo struct {
	Name     string            `json:"name"`
	File     string            `json:"file"`
	Hash     string            `json:"config_hash"`
	Started  time.Time         `json:"started"`
	Paused   bool              `json:"paused"`
	Ready    bool              `json:"ready"`
	Status   map[string]string `json:"status"`
	Counters counters          `json:"counters"`
	Broker   string            `json:"broker,omitempty"`
	Sources  []Component       `json:"sources"`
	Sinks    []Component       `json:"sinks"`
	Queues   []string          `json:"queues"`
}

// Component is a source or sink with its redacted configuration.
type Component struct {
	Name      string         `json:"name"`
	Type      string         `json:"type"`
	From      string         `json:"from,omitempty"`
	Workers   int            `json:"workers,omitempty"`
	BatchSize int            `json:"batch_size,omitempty"`
	Config    map[string]any `json:"config"`
}

// PipelineConfig returns the redacted configuration of a pipeline's sources
// and sinks, as the API and `sluice run --print-config` show it.
func PipelineConfig(p *pipeline.Pipeline) (sources, sinks []Component) {
	sources, sinks = []Component{}, []Component{}
	for _, sc := range p.Sources {
		spec, _ := adapters.SourceSpec(sc.Type)
		sources = append(sources, Component{Name: sc.Name, Type: sc.Type, Config: redact.Config(spec, sc.Conf)})
	}
	for _, sc := range p.Sinks {
		spec, _ := adapters.SinkSpec(sc.Type)
		sinks = append(sinks, Component{Name: sc.Name, Type: sc.Type, From: sc.From, Workers: sc.Workers, BatchSize: sc.BatchSize,
			Config: redact.Config(spec, sc.Conf)})
	}
	return sources, sinks
}

// counters are pipeline.Snapshot with JSON names.
type counters struct {
	Read         int64 `json:"read"`
	Enqueued     int64 `json:"enqueued"`
	Dropped      int64 `json:"dropped"`
	Rejected     int64 `json:"rejected"`
	Written      int64 `json:"written"`
	Retried      int64 `json:"retried"`
	DeadLettered int64 `json:"dead_lettered"`
}

func describe(rt *pipeline.Runtime) pipelineInfo {
	p := rt.Pipeline()
	info := pipelineInfo{Name: p.Name, File: p.File, Hash: p.Hash, Started: rt.Started(), Paused: rt.Paused(),
		Ready: len(rt.NotReady()) == 0, Status: map[string]string{}, Counters: counters(rt.Counters()), Broker: p.Broker}
	for c, st := range rt.Status() {
		info.Status[c] = redact.String(st)
	}
	info.Sources, info.Sinks = PipelineConfig(p)
	for name := range rt.Queues() {
		info.Queues = append(info.Queues, name)
	}
	sort.Strings(info.Queues)
	return info
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) {
	out := []pipelineInfo{}
	for _, rt := range s.opts.Agent.Runtimes() {
		out = append(out, describe(rt))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) {
	if rt := s.runtime(w, r); rt != nil {
		writeJSON(w, http.StatusOK, describe(rt))
	}
}
