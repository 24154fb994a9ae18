package generate_test

import (
	"testing"

	_ "github.com/sluicehq/sluice/adapters/file"
	_ "github.com/sluicehq/sluice/adapters/generate"
	_ "github.com/sluicehq/sluice/adapters/stdout"
	"github.com/sluicehq/sluice/pipeline"
	_ "github.com/sluicehq/sluice/transform/codec"
)

// TestExampleValidates loads example.yaml as the engine does.
func TestExampleValidates(t *testing.T) {
	cfg, err := pipeline.Load("example.yaml", pipeline.LoadOptions{Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("example.yaml: %v", err)
	}
	if len(cfg.Pipelines) == 0 {
		t.Fatal("example.yaml declares no pipeline")
	}
}
