package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/transform"
)

// A pipeline unit test file (NAME.test.yaml beside NAME.yaml) feeds input
// into a pipeline's stage chain and checks what reaches each queue, what is
// dropped and what goes to the dead-letter queue. No source or sink runs and
// nothing outside the process is touched.
type testFile struct {
	Config string     `yaml:"config"`
	Tests  []testCase `yaml:"tests"`
}

type testCase struct {
	Name     string       `yaml:"name"`
	Pipeline string       `yaml:"pipeline"`
	Source   string       `yaml:"source"`
	Input    []testInput  `yaml:"input"`
	Expect   testExpected `yaml:"expect"`
}

type testInput struct {
	Record map[string]any    `yaml:"record"`
	Raw    *string           `yaml:"raw"`
	Meta   map[string]string `yaml:"meta"`
}

type testExpected struct {
	// Queues maps a queue name to the records expected there, in order.
	Queues map[string][]map[string]any `yaml:"queues"`
	// Exact compares whole records; otherwise only the fields given.
	Exact   bool              `yaml:"exact"`
	Dropped *int              `yaml:"dropped"`
	DLQ     []testExpectedDLQ `yaml:"dlq"`
}

type testExpectedDLQ struct {
	Error  string         `yaml:"error"` // substring of the error
	Record map[string]any `yaml:"record"`
}

// TestResult is the outcome of one pipeline unit test.
type TestResult struct {
	File     string
	Name     string
	Failures []string
}

// Passed reports whether the test passed.
func (r TestResult) Passed() bool { return len(r.Failures) == 0 }

// FindTestFiles returns the *.test.yaml files at path (a file, or a directory
// searched recursively), sorted.
func FindTestFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		if isTestFile(path) {
			return []string{path}, nil
		}
		t := strings.TrimSuffix(strings.TrimSuffix(path, ".yaml"), ".yml") + ".test.yaml"
		if _, err := os.Stat(t); err != nil {
			return nil, fmt.Errorf("no test file %s beside %s", t, path)
		}
		return []string{t}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != path {
			return filepath.SkipDir
		}
		if !d.IsDir() && isTestFile(p) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func isTestFile(p string) bool {
	return strings.HasSuffix(p, ".test.yaml") || strings.HasSuffix(p, ".test.yml")
}

// RunTestFile runs the unit tests of one test file. The pipeline config is
// the file named by its `config` key, or the file beside it with the same
// name without ".test".
func RunTestFile(path string, opts LoadOptions) ([]TestResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tf testFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	cfgPath := tf.Config
	if cfgPath == "" {
		base := strings.TrimSuffix(strings.TrimSuffix(path, ".test.yaml"), ".test.yml")
		for _, ext := range []string{".yaml", ".yml"} {
			if _, err := os.Stat(base + ext); err == nil {
				cfgPath = base + ext
				break
			}
		}
		if cfgPath == "" {
			return nil, fmt.Errorf("%s: no pipeline file %s.yaml beside it; set `config:`", path, base)
		}
	} else if !filepath.IsAbs(cfgPath) {
		cfgPath = filepath.Join(filepath.Dir(path), cfgPath)
	}
	if len(tf.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests", path)
	}
	cfg, err := Load(cfgPath, opts)
	if err != nil {
		return nil, err
	}
	var results []TestResult
	for i, tc := range tf.Tests {
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("test %d", i+1)
		}
		res := TestResult{File: path, Name: name}
		res.Failures = runCase(cfg, tc)
		results = append(results, res)
	}
	return results, nil
}

func runCase(cfg *Config, tc testCase) []string {
	var p *Pipeline
	switch {
	case tc.Pipeline != "":
		p = cfg.Pipeline(tc.Pipeline)
		if p == nil {
			return []string{fmt.Sprintf("pipeline %q is not in the config", tc.Pipeline)}
		}
	case len(cfg.Pipelines) == 1:
		p = cfg.Pipelines[0]
	default:
		return []string{"the config has several pipelines: set `pipeline:`"}
	}
	var src *SourceConfig
	if tc.Source != "" {
		for _, s := range p.Sources {
			if s.Name == tc.Source {
				src = s
			}
		}
		if src == nil {
			return []string{fmt.Sprintf("source %q is not in pipeline %s", tc.Source, p.Name)}
		}
	} else if len(p.Sources) > 0 {
		src = p.Sources[0]
	}
	var fails []string
	var msgs []adapters.Message
	for i, in := range tc.Input {
		meta := map[string]string{}
		for k, v := range in.Meta {
			meta[k] = v
		}
		if src != nil {
			meta[adapters.MetaSource] = src.Name
		}
		switch {
		case in.Raw != nil:
			codec, err := sourceCodec(src)
			if err != nil {
				return []string{fmt.Sprintf("input %d: %v", i+1, err)}
			}
			if codec == nil {
				msgs = append(msgs, adapters.Message{ID: fmt.Sprint(i), Raw: []byte(*in.Raw), Meta: meta})
				continue
			}
			d := codec.NewDecoder(strings.NewReader(*in.Raw))
			for {
				rec, err := d.Decode()
				if errors.Is(err, io.EOF) {
					break
				}
				m := adapters.Message{ID: fmt.Sprint(i, "-", len(msgs)), Meta: meta, Record: rec}
				var re *adapters.RecordError
				if err != nil && !errors.As(err, &re) {
					fails = append(fails, fmt.Sprintf("input %d: decode: %v", i+1, err))
					break
				}
				m.Err = err
				msgs = append(msgs, m)
			}
		default:
			rec := adapters.Record{}
			for k, v := range in.Record {
				rec[k] = normalizeYAML(v)
			}
			msgs = append(msgs, adapters.Message{ID: fmt.Sprint(i), Record: rec, Meta: meta})
		}
	}
	got := map[string][]adapters.Message{}
	var dlq []transform.Output
	dropped := 0
	runner := &transform.Runner{}
	if len(p.Lookups) > 0 {
		l, err := transform.LoadLookups(p.Lookups, transform.LookupOptions{Poll: -1})
		if err != nil {
			return append(fails, fmt.Sprintf("lookups: %v", err))
		}
		defer l.Close()
		runner.SetLookups(l)
	}
	for _, m := range msgs {
		if m.Err != nil {
			dlq = append(dlq, transform.Output{Msg: m, Err: m.Err})
			continue
		}
		outs, d := p.Chain.Process(runner, m, nil)
		dropped += d
		for _, o := range outs {
			if o.Err != nil {
				dlq = append(dlq, o)
				continue
			}
			for _, q := range o.Queues {
				got[q] = append(got[q], o.Msg)
			}
		}
	}
	for _, q := range sortedExpectKeys(tc.Expect.Queues) {
		if p.Queue(q) == nil && q != broker.PipelineDLQ {
			fails = append(fails, fmt.Sprintf("expect.queues.%s: the pipeline has no such queue", q))
			continue
		}
		want := tc.Expect.Queues[q]
		have := got[q]
		if len(want) != len(have) {
			fails = append(fails, fmt.Sprintf("queue %s: got %d record(s), want %d%s", q, len(have), len(want), listRecords(have)))
			continue
		}
		for i := range want {
			if diff := compareRecord(want[i], have[i].Record, tc.Expect.Exact); diff != "" {
				fails = append(fails, fmt.Sprintf("queue %s, record %d:\n%s", q, i+1, diff))
			}
		}
	}
	for q, have := range got {
		if _, ok := tc.Expect.Queues[q]; !ok && tc.Expect.Queues != nil {
			fails = append(fails, fmt.Sprintf("queue %s: got %d unexpected record(s)%s", q, len(have), listRecords(have)))
		}
	}
	if tc.Expect.Dropped != nil && *tc.Expect.Dropped != dropped {
		fails = append(fails, fmt.Sprintf("dropped: got %d, want %d", dropped, *tc.Expect.Dropped))
	}
	if tc.Expect.DLQ != nil || len(dlq) > 0 {
		if len(tc.Expect.DLQ) != len(dlq) {
			var errs []string
			for _, o := range dlq {
				errs = append(errs, "  "+o.Err.Error())
			}
			fails = append(fails, fmt.Sprintf("dead-letter queue: got %d message(s), want %d\n%s", len(dlq), len(tc.Expect.DLQ), strings.Join(errs, "\n")))
		} else {
			for i, w := range tc.Expect.DLQ {
				if !strings.Contains(dlq[i].Err.Error(), w.Error) {
					fails = append(fails, fmt.Sprintf("dead-letter message %d: error %q does not contain %q", i+1, dlq[i].Err.Error(), w.Error))
				}
				if w.Record != nil {
					if diff := compareRecord(w.Record, dlq[i].Msg.Record, tc.Expect.Exact); diff != "" {
						fails = append(fails, fmt.Sprintf("dead-letter message %d:\n%s", i+1, diff))
					}
				}
			}
		}
	}
	return fails
}

func sourceCodec(src *SourceConfig) (adapters.Codec, error) {
	if src == nil {
		return nil, errors.New("raw input needs a source with a codec")
	}
	spec, err := adapters.SourceSpec(src.Type)
	if err != nil {
		return nil, err
	}
	if _, ok := spec.Field("codec"); !ok {
		return nil, fmt.Errorf("source %s (%s) has no codec; give records instead of raw input", src.Name, src.Type)
	}
	return src.Conf.Codec("codec"), nil
}

func sortedExpectKeys(m map[string][]map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func normalizeYAML(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case map[string]any:
		out := make(adapters.Record, len(x))
		for k, e := range x {
			out[k] = normalizeYAML(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeYAML(e)
		}
		return out
	}
	return v
}

// canonical renders a value as JSON text so that 42, int64(42) and 42.0
// compare equal, and decimals compare by their digits.
func canonical(v any) string {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
	case fmt.Stringer:
		return fmt.Sprintf("%q", x.String())
	}
	b, err := json.Marshal(canonicalTree(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func canonicalTree(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = json.RawMessage(canonical(e))
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = json.RawMessage(canonical(e))
		}
		return out
	}
	return v
}

func compareRecord(want map[string]any, got adapters.Record, exact bool) string {
	var b strings.Builder
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := canonical(normalizeYAML(want[k]))
		g, ok := got[k]
		if !ok {
			fmt.Fprintf(&b, "  %s: missing, want %s\n", k, w)
			continue
		}
		if gs := canonical(g); gs != w && !looseEqual(want[k], g) {
			fmt.Fprintf(&b, "  %s:\n    - want %s\n    + got  %s\n", k, w, gs)
		}
	}
	if exact {
		var extra []string
		for k := range got {
			if _, ok := want[k]; !ok {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		for _, k := range extra {
			fmt.Fprintf(&b, "  %s: unexpected field, got %s\n", k, canonical(got[k]))
		}
	}
	return b.String()
}

// looseEqual lets a YAML string match a decimal or number with the same text.
func looseEqual(want, got any) bool {
	ws, ok := want.(string)
	if !ok {
		return reflect.DeepEqual(normalizeYAML(want), got)
	}
	return ws == transform.ToString(got)
}

func listRecords(ms []adapters.Message) string {
	if len(ms) == 0 {
		return ""
	}
	var b strings.Builder
	for i, m := range ms {
		if i == 5 {
			fmt.Fprintf(&b, "\n    ... and %d more", len(ms)-5)
			break
		}
		b.WriteString("\n    ")
		b.WriteString(canonical(map[string]any(m.Record)))
	}
	return b.String()
}
