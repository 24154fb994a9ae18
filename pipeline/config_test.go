package pipeline

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/adapters"
)

var update = flag.Bool("update", false, "rewrite golden files")

type testCodec struct{}

func (testCodec) NewDecoder(r io.Reader) adapters.Decoder { return nil }
func (testCodec) NewEncoder(w io.Writer, o adapters.EncoderOptions) adapters.Encoder {
	return nil
}

func init() {
	adapters.RegisterCodec("test_codec", &adapters.Spec{Summary: "test"}, func(*adapters.Config) (adapters.Codec, error) { return testCodec{}, nil })
	// give the test source a codec field through a second registration
	adapters.RegisterSource("test_coded", &adapters.Spec{Fields: []adapters.Field{{Name: "codec", Type: adapters.TypeCodec, Default: "test_codec"}}},
		func(*adapters.Config, adapters.Resources) (adapters.Source, error) {
			return nil, errors.New("not runnable")
		})
}

// TestValidateGolden validates every broken config under testdata/broken and
// compares the messages with testdata/validate.golden.
func TestValidateGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	sort.Strings(files)
	if len(files) < 10 {
		t.Fatalf("only %d broken configs", len(files))
	}
	var out strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// unknown_types uses test_source with a codec: swap in the coded source
		data = []byte(strings.Replace(string(data), "name: coded\n        type: test_source", "name: coded\n        type: test_coded", 1))
		_, err = LoadBytes(filepath.Base(f), data, LoadOptions{Env: func(string) (string, bool) { return "", false }})
		var es adapters.Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Errorf("%s: no problems found (err = %v)", f, err)
			continue
		}
		for _, e := range es {
			out.WriteString(e.Error())
			out.WriteString("\n")
		}
	}
	golden := "testdata/validate.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out.String() != string(want) {
		t.Errorf("validate output differs from %s (go test ./pipeline -run Golden -update to accept):\n%s", golden, diffLines(string(want), out.String()))
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			b.WriteString("- " + a + "\n+ " + c + "\n")
		}
	}
	return b.String()
}

// Every error kind the engine issue names must be caught.
func TestValidateFindsEveryKind(t *testing.T) {
	want, err := os.ReadFile("testdata/validate.golden")
	if err != nil {
		t.Skip("golden missing; TestValidateGolden reports it")
	}
	kinds := map[string]string{
		"unknown key":         `unknown key "recrods"`,
		"wrong type":          "want an integer",
		"missing required":    "required name is missing",
		"unknown adapter":     `unknown source type "sftpp" (known:`,
		"unknown codec":       `unknown codec type "csvv" (known: test_codec)`,
		"unknown stage":       `unknown stage type "mapp"`,
		"route undeclared":    `queue "large" is not declared`,
		"sink undeclared":     `queue "larg" is not declared`,
		"queue unread":        `queue "unread" is not read by any sink`,
		"duplicate name":      `duplicate source name "src"`,
		"expression":          `record.a +* 2`,
		"unset env":           "environment variable SLUICE_TEST_UNSET_BATCH is not set",
		"env message":         "SLUICE_TEST_UNSET_FAIL: set it to the failure mode",
		"yaml syntax":         "invalid YAML",
		"route last":          "route must be the last stage",
		"reserved queue name": `queue name "dlq" is reserved`,
	}
	for kind, needle := range kinds {
		if !strings.Contains(string(want), needle) {
			t.Errorf("%s: %q not reported", kind, needle)
		}
	}
	if !strings.Contains(string(want), "unknown_keys.yaml:7: pipelines.orders.sources[0].recrods") {
		t.Error("errors do not name file, line and key path")
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "1", "EMPTY": ""}
	look := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct{ in, out, err string }{
		{"plain", "plain", ""},
		{"${A}", "1", ""},
		{"x${A}y${A}", "x1y1", ""},
		{"${B:-def}", "def", ""},
		{"${EMPTY:-def}", "def", ""},
		{"${EMPTY}", "", ""},
		{"${B}", "", "B is not set"},
		{"${B:?give B}", "", "B: give B"},
		{"${EMPTY:?}", "", "EMPTY: must be set"},
		{"$${A}", "${A}", ""},
		{"${A", "", "unterminated"},
		{"${1X}", "", "invalid variable name"},
	}
	for _, c := range cases {
		got, err := Expand(c.in, look)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Expand(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.out {
			t.Errorf("Expand(%q) = %q, %v; want %q", c.in, got, err, c.out)
		}
	}
}

func TestLoadDirectoryAndDuplicatePipelines(t *testing.T) {
	dir := t.TempDir()
	p := `
pipelines:
  same:
    sources: [{name: s, type: test_source}]
    queues: {q: {}}
    sinks: [{name: o, type: test_sink}]
`
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(p), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yml"), []byte(p), 0o644)
	os.WriteFile(filepath.Join(dir, "a.test.yaml"), []byte("not: a pipeline"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	_, err := Load(dir, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), `duplicate pipeline name "same" (also in `) {
		t.Fatalf("err = %v", err)
	}
	os.Remove(filepath.Join(dir, "b.yml"))
	cfg, err := Load(dir, LoadOptions{})
	if err != nil || len(cfg.Pipelines) != 1 {
		t.Fatalf("cfg = %v, err = %v", cfg, err)
	}
	if _, err := Load(filepath.Join(dir, "missing"), LoadOptions{}); err == nil {
		t.Fatal("missing path accepted")
	}
}

func TestHashChangesWithConfig(t *testing.T) {
	a := mustLoad(t, "pipelines: {p: {sources: [{name: s, type: test_source}], queues: {q: {}}, sinks: [{name: o, type: test_sink}]}}")
	b := mustLoad(t, "pipelines: {p: {sources: [{name: s, type: test_source}], queues: {q: {}}, sinks: [{name: o, type: test_sink, batch_size: 2}]}}")
	c := mustLoad(t, "pipelines:\n  p:\n    queues: {q: {}}\n    sources: [{type: test_source, name: s}]\n    sinks: [{name: o, type: test_sink}]\n")
	if a.Pipelines[0].Hash == b.Pipelines[0].Hash {
		t.Fatal("hash ignores a change")
	}
	if a.Pipelines[0].Hash != c.Pipelines[0].Hash {
		t.Fatal("hash depends on key order or layout")
	}
}
