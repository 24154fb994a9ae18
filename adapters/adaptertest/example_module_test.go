package adaptertest_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// This test proves the extension API from outside the module: it builds
// examples/custom-adapter (a Go module of its own that registers a source
// and a sink and calls cli.Main), runs the example's tests (its adapters pass
// this suite), and runs a pipeline with the new types through the binary.

// buildCustom builds examples/custom-adapter into dir, against this checkout,
// without touching the example's go.mod and go.sum: a copy of go.mod with
// the replace made absolute, and a go.sum holding the example's and this
// module's checksums, are used through -modfile. It also runs the example's
// own tests (its adapters run the adaptertest conformance suite).
func buildCustom(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(root, "examples", "custom-adapter")
	mod, err := os.ReadFile(filepath.Join(example, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(mod, []byte("=> ../..")) {
		t.Fatal("examples/custom-adapter/go.mod must replace github.com/sluicehq/sluice => ../..")
	}
	mod = bytes.Replace(mod, []byte("=> ../.."), []byte("=> "+root), 1)
	var sum []byte
	for _, f := range []string{filepath.Join(example, "go.sum"), filepath.Join(root, "go.sum")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sum = append(sum, b...)
	}
	modfile := filepath.Join(dir, "go.mod")
	if err := os.WriteFile(modfile, mod, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sluice-spool")
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	for _, args := range [][]string{
		{"build", "-modfile", modfile, "-o", bin, "."},
		{"test", "-modfile", modfile, "-count=1", "./..."},
	} {
		cmd := exec.Command(goBin, args...)
		cmd.Dir = example
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in examples/custom-adapter: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bin
}

func runBin(t *testing.T, env []string, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = filepath.Join("..", "..", "examples", "custom-adapter")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestCustomAdapterBinary(t *testing.T) {
	bin := buildCustom(t, t.TempDir())

	list := runBin(t, nil, bin, "adapters")
	for _, want := range []string{"spool", "maildir", "exec", "csv", "filter"} {
		if !strings.Contains(list, want) {
			t.Errorf("`adapters` lacks %q:\n%s", want, list)
		}
	}
	if doc := runBin(t, nil, bin, "adapters", "spool"); !strings.Contains(doc, "min_age  (duration, default 2s)") {
		t.Errorf("`adapters spool`:\n%s", doc)
	}

	// The example pipeline matches the custom binary's schema.
	var schemaDoc any
	schemaOut := runBin(t, nil, bin, "schema")
	schemaDoc, err := jsonschema.UnmarshalJSON(strings.NewReader(schemaOut))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../../examples/custom-adapter/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(v)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err := schema.Validate(inst); err != nil {
		t.Fatalf("examples/custom-adapter/pipeline.yaml does not match the binary's schema: %v", err)
	}

	// Run the pipeline once over the sample spool files.
	spool, archive := t.TempDir(), t.TempDir()
	samples, _ := filepath.Glob("../../examples/custom-adapter/testdata/spool/*.SPL")
	if len(samples) == 0 {
		t.Fatal("no sample spool files")
	}
	for _, f := range samples {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(spool, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"SPOOL_DIR=" + spool, "MAILDIR=" + archive}
	runBin(t, env, bin, "validate", "-c", "pipeline.yaml")
	out := runBin(t, env, bin, "run", "--once", "-c", "pipeline.yaml", "--data-dir", t.TempDir(), "--admin-address", "off")
	if !strings.Contains(out, "read 3, written 3") {
		t.Errorf("run summary:\n%s", out)
	}
	files, _ := filepath.Glob(filepath.Join(archive, "new", "*.txt"))
	if len(files) != 3 { // SHIP0001 has two pages and a blank one, BACK0001 one page
		t.Fatalf("archive holds %d pages, want 3: %v\n%s", len(files), files, out)
	}
	var titles []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		titles = append(titles, strings.SplitN(string(b), "\n", 2)[0])
		if !strings.Contains(string(b), "ORDER") {
			t.Errorf("page %s lacks its body:\n%s", f, b)
		}
	}
	sort.Strings(titles)
	want := []string{
		"ACME WAREHOUSE - BACKORDERS               PAGE 1",
		"ACME WAREHOUSE - DAILY SHIPMENTS          PAGE 1",
		"ACME WAREHOUSE - DAILY SHIPMENTS          PAGE 2",
	}
	if strings.Join(titles, "|") != strings.Join(want, "|") {
		t.Fatalf("page titles = %q, want %q", titles, want)
	}
}
