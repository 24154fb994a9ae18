package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	natsbroker "github.com/sluicehq/sluice/broker/nats"
	"github.com/sluicehq/sluice/transform"
)

// Config is a loaded, validated set of pipelines.
type Config struct {
	// Files that were read, sorted.
	Files []string
	// Pipelines sorted by name.
	Pipelines []*Pipeline
}

// Pipeline is one validated pipeline.
type Pipeline struct {
	Name string
	File string
	// Broker is the broker type this pipeline asks for ("" = the agent's).
	Broker string
	// BrokerConf holds the settings of a `broker: {type: nats, ...}` block
	// (natsbroker.Spec), or nil.
	BrokerConf *adapters.Config
	Sources    []*SourceConfig
	Stages     []transform.Stage
	Chain      *transform.Chain
	// Queues in declaration order (sorted by name).
	Queues []*QueueConfig
	Sinks  []*SinkConfig
	// Lookups declares the pipeline's lookup tables, for lookup() in
	// expressions; they are loaded when the pipeline starts.
	Lookups []transform.LookupSpec
	// Hash identifies the pipeline's configuration after ${VAR} expansion:
	// a reload restarts a pipeline only when its hash changed.
	Hash string
}

// SourceConfig is one source of a pipeline.
type SourceConfig struct {
	Name string
	Type string
	Conf *adapters.Config
}

// SinkConfig is one sink of a pipeline.
type SinkConfig struct {
	Name      string
	Type      string
	From      string
	Workers   int
	BatchSize int
	Conf      *adapters.Config
}

// QueueConfig is one declared queue and its broker options.
type QueueConfig struct {
	Name    string
	Options broker.Options
}

// Queue returns the declared queue called name, or nil.
func (p *Pipeline) Queue(name string) *QueueConfig {
	for _, q := range p.Queues {
		if q.Name == name {
			return q
		}
	}
	return nil
}

// Pipeline returns the pipeline called name, or nil.
func (c *Config) Pipeline(name string) *Pipeline {
	for _, p := range c.Pipelines {
		if p.Name == name {
			return p
		}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

const nameRule = "names start with a letter or digit and hold only letters, digits, - and _"

// LoadOptions tune Load.
type LoadOptions struct {
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
}

// Load reads and validates the pipeline file or directory at path. The error,
// when not nil, is adapters.Errors holding every problem found, or a plain
// error when the files cannot be read.
func Load(path string, opts LoadOptions) (*Config, error) {
	files, err := configFiles(path)
	if err != nil {
		return nil, err
	}
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	cfg := &Config{Files: files}
	var errs adapters.Errors
	seen := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", f, err)
		}
		ps, es := loadFile(f, data, opts)
		errs = append(errs, es...)
		for _, p := range ps {
			if other, dup := seen[p.Name]; dup {
				errs = append(errs, &adapters.FieldError{File: f, Path: "pipelines." + p.Name,
					Msg: fmt.Sprintf("duplicate pipeline name %q (also in %s)", p.Name, other)})
				continue
			}
			seen[p.Name] = f
			cfg.Pipelines = append(cfg.Pipelines, p)
		}
	}
	sort.Slice(cfg.Pipelines, func(i, j int) bool { return cfg.Pipelines[i].Name < cfg.Pipelines[j].Name })
	if len(errs) > 0 {
		errs.Sort()
		return cfg, errs
	}
	return cfg, nil
}

// LoadBytes validates one pipeline file given as bytes; file names it in
// messages.
func LoadBytes(file string, data []byte, opts LoadOptions) (*Config, error) {
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	ps, errs := loadFile(file, data, opts)
	cfg := &Config{Files: []string{file}, Pipelines: ps}
	if len(errs) > 0 {
		errs.Sort()
		return cfg, errs
	}
	return cfg, nil
}

func loadFile(file string, data []byte, opts LoadOptions) ([]*Pipeline, adapters.Errors) {
	doc, errs := parseDocument(file, data, opts.Env)
	if doc == nil {
		return nil, errs
	}
	for k := range doc.root {
		if k != "pipelines" {
			errs = append(errs, doc.errorf(k, "unknown key %q (known: pipelines)", k))
		}
	}
	raw, ok := doc.root["pipelines"]
	if !ok {
		errs = append(errs, &adapters.FieldError{File: file, Msg: "no pipelines key: a pipeline file holds `pipelines: {NAME: {...}}`"})
		return nil, errs
	}
	pm, ok := raw.(map[string]any)
	if !ok || len(pm) == 0 {
		errs = append(errs, doc.errorf("pipelines", "want a mapping of pipeline names to pipelines"))
		return nil, errs
	}
	names := sortedKeys(pm)
	var out []*Pipeline
	for _, name := range names {
		p, es := buildPipeline(doc, name, pm[name])
		for _, e := range es {
			// a failed ${VAR} was reported once; its empty value would only
			// produce a second, confusing error at the same key
			if doc.envFailed[e.Path] {
				continue
			}
			errs = append(errs, e)
		}
		if p != nil {
			out = append(out, p)
		}
	}
	return out, errs
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var pipelineKeys = []string{"broker", "lookups", "queues", "sinks", "sources", "stages"}

// queueSpec documents and decodes the options of a queue.
var queueSpec = &adapters.Spec{
	Summary: "A durable queue between the stages and the sinks.",
	Fields: []adapters.Field{
		{Name: "max_bytes", Type: adapters.TypeSize, Default: "1GiB", Description: "Bytes the queue may hold; producers (sources) block at the limit. 0 = unbounded."},
		{Name: "max_messages", Type: adapters.TypeInt, Default: 0, Description: "Messages the queue may hold; producers block at the limit. 0 = unbounded."},
		{Name: "max_attempts", Type: adapters.TypeInt, Default: 5, Description: "Deliveries a message gets before it moves to the dead-letter queue QUEUE.dlq. -1 = unlimited."},
		{Name: "backoff", Type: adapters.TypeObject, Default: map[string]any{}, Description: "Delay before a transient failure is retried.", Fields: []adapters.Field{
			{Name: "initial", Type: adapters.TypeDuration, Default: "1s", Description: "Delay after the first failure."},
			{Name: "max", Type: adapters.TypeDuration, Default: "5m", Description: "Upper bound of the delay."},
			{Name: "multiplier", Type: adapters.TypeFloat, Default: 2.0, Description: "Factor applied to the delay after each failure."},
			{Name: "jitter", Type: adapters.TypeFloat, Default: 0.2, Description: "Fraction (0 to 1) of each delay that is randomised."},
		}},
		{Name: "visibility_timeout", Type: adapters.TypeDuration, Default: "30s", Description: "A message a sink received but did not settle within this time is delivered again."},
		{Name: "segment_bytes", Type: adapters.TypeSize, Default: "64MiB", Description: "Size of the disk log's segment files."},
		{Name: "inline_max", Type: adapters.TypeSize, Default: "1MiB", Description: "Payloads above this size are stored as blob files beside the log (claim check)."},
	},
	Check: func(c *adapters.Config) error {
		b := c.Object("backoff")
		if b.Float("multiplier") < 1 {
			return b.Errorf("multiplier", "must be 1 or more, got %v", b.Float("multiplier"))
		}
		if j := b.Float("jitter"); j < 0 || j > 1 {
			return b.Errorf("jitter", "must be between 0 and 1, got %v", j)
		}
		if c.Int("max_attempts") == 0 {
			return c.Errorf("max_attempts", "must be at least 1, or -1 for unlimited")
		}
		return nil
	},
}

// QueueSpec returns the spec of a queue's options, for documentation.
func QueueSpec() *adapters.Spec { return queueSpec }

func buildPipeline(doc *document, name string, raw any) (*Pipeline, adapters.Errors) {
	base := "pipelines." + name
	var errs adapters.Errors
	if !nameRE.MatchString(name) {
		errs = append(errs, doc.errorf(base, "invalid pipeline name %q: %s", name, nameRule))
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, append(errs, doc.errorf(base, "want a mapping with sources, stages, queues and sinks"))
	}
	for _, k := range sortedKeys(m) {
		if !contains(pipelineKeys, k) {
			errs = append(errs, doc.errorf(base+"."+k, "unknown key %q (known: %s)", k, strings.Join(pipelineKeys, ", ")))
		}
	}
	p := &Pipeline{Name: name, File: doc.file}
	if raw, ok := m["lookups"]; ok {
		lp := base + ".lookups"
		specs, err := transform.DecodeLookups(raw, filepath.Dir(doc.file), adapters.DecodeOptions{File: doc.file, Path: lp, Line: doc.nearestLine})
		if err != nil {
			errs = append(errs, adapters.AsErrors(err, lp, doc.nearestLine(lp))...)
		}
		for _, s := range specs {
			if _, err := os.Stat(s.Path); err != nil {
				errs = append(errs, doc.errorf(lp+"."+s.Name, "lookup table file %s: %v", s.Path, errors.Unwrap(err)))
			}
		}
		p.Lookups = specs
	}
	if b, ok := m["broker"]; ok {
		bm, ok := b.(map[string]any)
		t, _ := bm["type"].(string)
		switch {
		case !ok:
			errs = append(errs, doc.errorf(base+".broker", "want a mapping like {type: disk}"))
		case t != "disk" && t != "memory" && t != "nats":
			errs = append(errs, doc.errorf(base+".broker.type", "unknown broker type %q (known: disk, memory, nats)", t))
		case t == "nats":
			bp := base + ".broker"
			conf, err := adapters.Decode(natsbroker.Spec, bm, adapters.DecodeOptions{File: doc.file, Path: bp, Line: doc.line, Ignore: []string{"type"}})
			if err != nil {
				errs = append(errs, adapters.AsErrors(err, bp, doc.line(bp))...)
				break
			}
			p.Broker, p.BrokerConf = t, conf
		default:
			for k := range bm {
				if k != "type" {
					errs = append(errs, doc.errorf(base+".broker."+k, "unknown key %q (known: type)", k))
				}
			}
			p.Broker = t
		}
	}

	// Queues first: stages and sinks refer to them.
	declared := map[string]bool{}
	if qraw, ok := m["queues"]; ok {
		qm, ok := qraw.(map[string]any)
		if !ok || len(qm) == 0 {
			errs = append(errs, doc.errorf(base+".queues", "want a mapping of queue names to options ({} for defaults)"))
		} else {
			for _, qn := range sortedKeys(qm) {
				qp := base + ".queues." + qn
				switch {
				case !nameRE.MatchString(qn):
					errs = append(errs, doc.errorf(qp, "invalid queue name %q: %s", qn, nameRule))
					continue
				case qn == broker.PipelineDLQ || strings.HasSuffix(qn, broker.DLQSuffix):
					errs = append(errs, doc.errorf(qp, "queue name %q is reserved for dead-letter queues", qn))
					continue
				}
				body := qm[qn]
				if body == nil {
					body = map[string]any{}
				}
				bm, ok := body.(map[string]any)
				if !ok {
					errs = append(errs, doc.errorf(qp, "want a mapping of queue options ({} for defaults)"))
					continue
				}
				declared[qn] = true
				conf, err := adapters.Decode(queueSpec, bm, adapters.DecodeOptions{File: doc.file, Path: qp, Line: doc.line})
				if err != nil {
					// keep the queue declared so references to it do not
					// report a second, misleading problem
					errs = append(errs, adapters.AsErrors(err, qp, doc.line(qp))...)
					p.Queues = append(p.Queues, &QueueConfig{Name: qn})
					continue
				}
				p.Queues = append(p.Queues, &QueueConfig{Name: qn, Options: queueOptions(conf)})
			}
		}
	} else {
		errs = append(errs, doc.errorf(base, "required queues are missing: declare at least one queue"))
	}

	// Sources.
	srcNames := map[string]bool{}
	for i, sm := range listOfMaps(doc, base+".sources", m["sources"], true, &errs) {
		sp := fmt.Sprintf("%s.sources[%d]", base, i)
		nm, typ, ok := nameAndType(doc, sp, sm, &errs)
		if nm != "" {
			if srcNames[nm] {
				errs = append(errs, doc.errorf(sp+".name", "duplicate source name %q", nm))
			}
			srcNames[nm] = true
		}
		if !ok {
			continue
		}
		spec, err := adapters.SourceSpec(typ)
		if err != nil {
			errs = append(errs, doc.errorf(sp+".type", "%v", err))
			continue
		}
		conf, err := adapters.Decode(spec, sm, adapters.DecodeOptions{File: doc.file, Path: sp, Line: doc.line, Ignore: []string{"name", "type"}})
		if err != nil {
			errs = append(errs, adapters.AsErrors(err, sp, doc.line(sp))...)
			continue
		}
		p.Sources = append(p.Sources, &SourceConfig{Name: nm, Type: typ, Conf: conf})
	}

	// Stages.
	var router transform.Router
	stagesRaw, _ := m["stages"].([]any)
	if s, ok := m["stages"]; ok && s != nil && stagesRaw == nil {
		errs = append(errs, doc.errorf(base+".stages", "want a list of stages like `- filter: EXPR`"))
	}
	for i, s := range stagesRaw {
		sp := fmt.Sprintf("%s.stages[%d]", base, i)
		sm, ok := s.(map[string]any)
		if !ok || len(sm) != 1 {
			errs = append(errs, doc.errorf(sp, "want one stage per list item, like `- filter: EXPR` (known: %s)", strings.Join(transform.Stages(), ", ")))
			continue
		}
		for typ, body := range sm {
			ctx := &transform.BuildContext{File: doc.file, Path: sp + "." + typ, Line: doc.line, Queues: declared}
			st, err := transform.NewStage(typ, body, ctx)
			if err != nil {
				errs = append(errs, adapters.AsErrors(err, ctx.Path, doc.line(ctx.Path))...)
				continue
			}
			if r, ok := st.(transform.Router); ok {
				if i != len(stagesRaw)-1 {
					errs = append(errs, doc.errorf(sp, "route must be the last stage"))
				}
				router = r
				continue
			}
			p.Stages = append(p.Stages, st)
		}
	}
	fallback := ""
	if router == nil && len(p.Queues) > 1 {
		errs = append(errs, doc.errorf(base+".stages", "%d queues are declared but no route stage says which messages go where; add a route stage", len(p.Queues)))
	} else if router == nil && len(p.Queues) == 1 {
		fallback = p.Queues[0].Name
	}
	p.Chain = transform.NewChain(p.Stages, router, fallback)

	// Sinks.
	readers := map[string]bool{}
	sinkNames := map[string]bool{}
	for i, sm := range listOfMaps(doc, base+".sinks", m["sinks"], true, &errs) {
		sp := fmt.Sprintf("%s.sinks[%d]", base, i)
		nm, typ, ok := nameAndType(doc, sp, sm, &errs)
		if nm != "" {
			if sinkNames[nm] {
				errs = append(errs, doc.errorf(sp+".name", "duplicate sink name %q", nm))
			}
			sinkNames[nm] = true
		}
		sc := &SinkConfig{Name: nm, Type: typ, Workers: 1, BatchSize: 256}
		from, hasFrom := sm["from"]
		switch {
		case !hasFrom && len(p.Queues) == 1:
			sc.From = p.Queues[0].Name
		case !hasFrom:
			errs = append(errs, doc.errorf(sp, "required from is missing: which queue does this sink read? (declared: %s)", queueNames(p.Queues)))
		default:
			f, isStr := from.(string)
			if !isStr {
				errs = append(errs, doc.errorf(sp+".from", "want a queue name"))
				break
			}
			if !readable(f, declared) {
				errs = append(errs, doc.errorf(sp+".from", "queue %q is not declared (declared: %s; dead-letter queues: dlq, QUEUE.dlq)", f, queueNames(p.Queues)))
				break
			}
			sc.From = f
		}
		readers[sc.From] = true
		if w, ok := sm["workers"]; ok {
			n, isInt := w.(int64)
			if !isInt || n < 1 || n > 1024 {
				errs = append(errs, doc.errorf(sp+".workers", "want a number of workers from 1 to 1024, got %v", w))
			} else {
				sc.Workers = int(n)
			}
		}
		if b, ok := sm["batch_size"]; ok {
			n, isInt := b.(int64)
			if !isInt || n < 1 || n > 100000 {
				errs = append(errs, doc.errorf(sp+".batch_size", "want a batch size from 1 to 100000, got %v", b))
			} else {
				sc.BatchSize = int(n)
			}
		}
		if !ok {
			continue
		}
		spec, err := adapters.SinkSpec(typ)
		if err != nil {
			errs = append(errs, doc.errorf(sp+".type", "%v", err))
			continue
		}
		conf, err := adapters.Decode(spec, sm, adapters.DecodeOptions{File: doc.file, Path: sp, Line: doc.line, Ignore: []string{"name", "type", "from", "workers", "batch_size"}})
		if err != nil {
			errs = append(errs, adapters.AsErrors(err, sp, doc.line(sp))...)
			continue
		}
		sc.Conf = conf
		p.Sinks = append(p.Sinks, sc)
	}
	for _, q := range p.Queues {
		if !readers[q.Name] {
			errs = append(errs, doc.errorf(base+".queues."+q.Name, "queue %q is not read by any sink: add a sink with `from: %s` or remove the queue", q.Name, q.Name))
		}
	}
	for qn := range declared {
		groups := []string{}
		for _, s := range p.Sinks {
			if s.From == qn {
				groups = append(groups, s.Name)
			}
		}
		p.Queue(qn).Options.Groups = groups
	}
	p.Hash = hashOf(raw)
	return p, errs
}

func readable(name string, declared map[string]bool) bool {
	if declared[name] || name == broker.PipelineDLQ {
		return true
	}
	return strings.HasSuffix(name, broker.DLQSuffix) && declared[strings.TrimSuffix(name, broker.DLQSuffix)]
}

func queueNames(qs []*QueueConfig) string {
	if len(qs) == 0 {
		return "none"
	}
	names := make([]string, len(qs))
	for i, q := range qs {
		names[i] = q.Name
	}
	return strings.Join(names, ", ")
}

func queueOptions(c *adapters.Config) broker.Options {
	b := c.Object("backoff")
	return broker.Options{
		MaxBytes:          c.Size("max_bytes"),
		MaxMessages:       c.Int64("max_messages"),
		MaxAttempts:       c.Int("max_attempts"),
		Backoff:           broker.Backoff{Initial: b.Duration("initial"), Max: b.Duration("max"), Multiplier: b.Float("multiplier"), Jitter: b.Float("jitter")},
		VisibilityTimeout: c.Duration("visibility_timeout"),
		SegmentBytes:      c.Size("segment_bytes"),
		InlineMax:         c.Size("inline_max"),
	}
}

func listOfMaps(doc *document, path string, raw any, required bool, errs *adapters.Errors) []map[string]any {
	if raw == nil {
		if required {
			*errs = append(*errs, doc.errorf(path, "required list is missing: want at least one entry with name and type"))
		}
		return nil
	}
	l, ok := raw.([]any)
	if !ok || len(l) == 0 {
		*errs = append(*errs, doc.errorf(path, "want a list with at least one entry"))
		return nil
	}
	out := make([]map[string]any, len(l))
	for i, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			*errs = append(*errs, doc.errorf(fmt.Sprintf("%s[%d]", path, i), "want a mapping with name and type"))
			m = nil
		}
		out[i] = m
	}
	return out
}

func nameAndType(doc *document, path string, m map[string]any, errs *adapters.Errors) (string, string, bool) {
	if m == nil {
		return "", "", false
	}
	ok := true
	name, isStr := m["name"].(string)
	switch {
	case m["name"] == nil:
		*errs = append(*errs, doc.errorf(path, "required name is missing"))
		ok = false
	case !isStr || !nameRE.MatchString(name):
		*errs = append(*errs, doc.errorf(path+".name", "invalid name %v: %s", m["name"], nameRule))
		ok, name = false, ""
	}
	typ, isStr := m["type"].(string)
	switch {
	case m["type"] == nil:
		*errs = append(*errs, doc.errorf(path, "required type is missing"))
		ok = false
	case !isStr:
		*errs = append(*errs, doc.errorf(path+".type", "want a type name"))
		ok = false
	}
	return name, typ, ok
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

func hashOf(v any) string {
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
