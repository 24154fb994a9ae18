package docgen_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/adapters"
	_ "github.com/sluicehq/sluice/adapters/all" // what cmd/sluice registers
	"github.com/sluicehq/sluice/internal/docgen"
)

const repoRoot = "../.."

func TestReferenceIsUpToDate(t *testing.T) {
	dir := filepath.Join(repoRoot, "docs", "reference")
	want := docgen.Reference()
	have, err := docgen.ListPages(dir)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, p := range have {
		if _, ok := want[p]; !ok {
			problems = append(problems, p+": no longer generated")
		}
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		switch {
		case os.IsNotExist(err):
			problems = append(problems, p+": missing")
		case err != nil:
			t.Fatal(err)
		case !bytes.Equal(b, want[p]):
			problems = append(problems, p+": out of date")
		}
	}
	if len(problems) > 0 {
		t.Fatalf("docs/reference does not match the specs; run `go generate ./internal/docgen`:\n  %s", strings.Join(problems, "\n  "))
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := json.Marshal(docgen.Schema())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(docgen.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(docgen.SchemaID)
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v", err)
	}
	return s
}

// yamlInstance converts a YAML document into the JSON value a schema
// validator (or an editor) sees.
func yamlInstance(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("YAML to JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// examplePipelines finds every example pipeline in the repository:
// examples/**/*.yaml and adapters/*/example.yaml, without pipeline unit
// tests (*.test.yaml) and without examples/custom-adapter, whose types only
// its own binary knows (internal/e2e checks it against that binary's schema).
func examplePipelines(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(repoRoot, "examples"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "custom-adapter" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		n := d.Name()
		if !d.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) &&
			!strings.HasSuffix(n, ".test.yaml") && !strings.HasSuffix(n, ".test.yml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	more, err := filepath.Glob(filepath.Join(repoRoot, "adapters", "*", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return append(files, more...)
}

func TestExamplePipelinesMatchTheSchema(t *testing.T) {
	schema := compileSchema(t)
	files := examplePipelines(t)
	if len(files) == 0 {
		t.Fatal("no example pipelines found")
	}
	for _, f := range files {
		rel, _ := filepath.Rel(repoRoot, f)
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(yamlInstance(t, data)); err != nil {
				t.Fatalf("%s does not match `sluice schema`:\n%v", rel, err)
			}
		})
	}
}

func TestSchemaAcceptsAndRejects(t *testing.T) {
	schema := compileSchema(t)
	const base = `
pipelines:
  p:
    sources:
      - name: in
        type: exec
        command: [python3, src.py]%s
    queues:
      q: %s
    sinks:
      - name: out
        type: exec
        command: sink.sh%s
`
	cases := []struct {
		name             string
		src, queue, sink string
		ok               bool
	}{
		{"minimal", "", "{}", "", true},
		{"every scalar form", "\n        batch_size: ${BATCH:-10}\n        acks: \"false\"\n        hello_timeout: 1m30s\n        max_message_size: 64KiB\n        config: {any: [thing]}",
			"{max_bytes: 10MB, max_attempts: -1, backoff: {initial: 500ms, multiplier: 1.5}}", "\n        workers: 4\n        env: {TOKEN: \"${TOKEN}\", N: 3}", true},
		{"null queue", "", "", "", true},
		{"unknown source key", "\n        commands: [x]", "{}", "", false},
		{"unknown source type", "\n        type: exce", "{}", "", false},
		{"int field given a word", "\n        batch_size: lots", "{}", "", false},
		{"bad duration", "\n        hello_timeout: 10 seconds", "{}", "", false},
		{"bad size", "\n        max_message_size: 1 gallon", "{}", "", false},
		{"bad enum", "\n        stderr_level: loud", "{}", "", false},
		{"bad queue option", "", "{max_attempts: many}", "", false},
		{"unknown queue option", "", "{size: 1}", "", false},
		{"workers from env", "", "{}", "\n        workers: ${WORKERS}", false},
		{"workers out of range", "", "{}", "\n        workers: 0", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(base, "        type: exec\n        command: [python3, src.py]%s", "        type: exec\n        command: [python3, src.py]"+c.src, 1)
			if strings.Contains(c.src, "type: exce") {
				doc = strings.Replace(doc, "type: exec\n        command: [python3, src.py]\n        type: exce", "type: exce\n        command: [python3, src.py]", 1)
			}
			doc = strings.Replace(doc, "q: %s", "q: "+c.queue, 1)
			doc = strings.Replace(doc, "command: sink.sh%s", "command: sink.sh"+c.sink, 1)
			err := schema.Validate(yamlInstance(t, []byte(doc)))
			if c.ok && err != nil {
				t.Fatalf("valid config rejected:\n%s\n%v", doc, err)
			}
			if !c.ok && err == nil {
				t.Fatalf("invalid config accepted:\n%s", doc)
			}
		})
	}
}

func TestSchemaRejectsBrokenStructure(t *testing.T) {
	schema := compileSchema(t)
	cases := map[string]string{
		"no pipelines":             "pipeline: {}\n",
		"no sources":               "pipelines:\n  p:\n    queues: {q: {}}\n    sinks: [{name: o, type: stdout}]\n",
		"bad pipeline name":        "pipelines:\n  \"bad name\":\n    sources: [{name: i, type: generate}]\n    queues: {q: {}}\n    sinks: [{name: o, type: stdout}]\n",
		"queue named dlq":          "pipelines:\n  p:\n    sources: [{name: i, type: exec, command: x}]\n    queues: {dlq: {}}\n    sinks: [{name: o, type: exec, command: y}]\n",
		"two stages in one item":   "pipelines:\n  p:\n    sources: [{name: i, type: exec, command: x}]\n    stages: [{filter: \"true\", map: {a: \"1\"}}]\n    queues: {q: {}}\n    sinks: [{name: o, type: exec, command: y}]\n",
		"unknown stage":            "pipelines:\n  p:\n    sources: [{name: i, type: exec, command: x}]\n    stages: [{frobnicate: x}]\n    queues: {q: {}}\n    sinks: [{name: o, type: exec, command: y}]\n",
		"unknown pipeline key":     "pipelines:\n  p:\n    sources: [{name: i, type: exec, command: x}]\n    queues: {q: {}}\n    sinks: [{name: o, type: exec, command: y}]\n    sinkz: []\n",
		"source without a name":    "pipelines:\n  p:\n    sources: [{type: exec, command: x}]\n    queues: {q: {}}\n    sinks: [{name: o, type: exec, command: y}]\n",
		"required field missing":   "pipelines:\n  p:\n    sources: [{name: i, type: exec}]\n    queues: {q: {}}\n    sinks: [{name: o, type: exec, command: y}]\n",
		"codec of an unknown type": "pipelines:\n  p:\n    sources: [{name: i, type: file, path: /in, codec: {type: csvv}}]\n    queues: {q: {}}\n    sinks: [{name: o, type: exec, command: y}]\n",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := schema.Validate(yamlInstance(t, []byte(doc))); err == nil {
				t.Fatalf("accepted:\n%s", doc)
			}
		})
	}
}

func TestSecretsAreNeverPrinted(t *testing.T) {
	e := docgen.Entry{Kind: docgen.Sink, Name: "vault", Summary: "test",
		Fields: []adapters.Field{
			{Name: "dsn", Type: adapters.TypeString, Secret: true, Default: "root:hunter2@tcp(db)/x", Example: "app:s3cret@tcp(db)/x"},
			{Name: "auth", Type: adapters.TypeObject, Optional: true, Fields: []adapters.Field{
				{Name: "token", Type: adapters.TypeString, Secret: true, Optional: true, Example: "tok-123"},
			}},
			{Name: "table", Type: adapters.TypeString, Default: "orders"},
		},
		Example: "type: vault\ndsn: app:s3cret@tcp(db)/x\nauth: {token: tok-123}\ntable: orders\n",
	}
	var text bytes.Buffer
	if err := docgen.WriteText(&text, e); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), string(docgen.MarkdownPage(e))} {
		for _, secret := range []string{"hunter2", "s3cret", "tok-123"} {
			if strings.Contains(out, secret) {
				t.Fatalf("secret %q printed:\n%s", secret, out)
			}
		}
		for _, want := range []string{"orders", "secret", docgen.Redacted} {
			if !strings.Contains(strings.ToLower(out), strings.ToLower(want)) {
				t.Fatalf("%q missing from:\n%s", want, out)
			}
		}
	}
	s := docgen.FieldSchema(e.Fields[0])
	if _, ok := s["default"]; ok {
		t.Fatalf("schema shows a secret default: %v", s)
	}
	if _, ok := s["examples"]; ok {
		t.Fatalf("schema shows a secret example: %v", s)
	}
	// ${VAR} references are not secrets and stay.
	e.Example = "dsn: ${ERP_DSN}\n"
	text.Reset()
	_ = docgen.WriteText(&text, e)
	if !strings.Contains(text.String(), "${ERP_DSN}") {
		t.Fatalf("env reference redacted:\n%s", text.String())
	}
}
