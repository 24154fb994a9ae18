package file_test

import (
	"testing"

	_ "github.com/sluicehq/sluice/adapters/file"
	_ "github.com/sluicehq/sluice/adapters/generate"
	_ "github.com/sluicehq/sluice/adapters/stdout"
	"github.com/sluicehq/sluice/pipeline"
	_ "github.com/sluicehq/sluice/transform/codec"
)

// TestExamplesValidate loads the example.yaml of this adapter and of its
// siblings (generate, stdout) as `sluice validate` does.
func TestExamplesValidate(t *testing.T) {
	for _, name := range []string{"example.yaml", "../generate/example.yaml", "../stdout/example.yaml"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := pipeline.Load(name, pipeline.LoadOptions{Env: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(cfg.Pipelines) == 0 {
				t.Fatalf("%s declares no pipeline", name)
			}
		})
	}
}
