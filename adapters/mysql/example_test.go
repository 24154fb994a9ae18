package mysql_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/sluicehq/sluice/adapters/all" // the examples use file sources and codecs
	"github.com/sluicehq/sluice/pipeline"
)

// example.yaml is valid, and README.md quotes it unchanged.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	noEnv := pipeline.LoadOptions{Env: func(string) (string, bool) { return "", false }}
	if _, err := pipeline.LoadBytes("example.yaml", b, noEnv); err != nil {
		t.Fatalf("example.yaml: %v", err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```yaml\n"+string(b)+"```") {
		t.Fatal("README.md does not quote example.yaml unchanged")
	}
	for _, ex := range []string{"csv-to-mysql", "mysql-to-mysql"} {
		if _, err := pipeline.Load(filepath.Join("../../examples", ex, "pipeline.yaml"), noEnv); err != nil {
			t.Fatalf("examples/%s: %v", ex, err)
		}
	}
}
