package httpadapter_test

import (
	"testing"

	_ "github.com/sluicehq/sluice/adapters/mysql"
	"github.com/sluicehq/sluice/pipeline"
)

// TestExamplesValidate loads example.yaml and the http-to-mysql example as
// `sluice validate` does.
func TestExamplesValidate(t *testing.T) {
	for _, name := range []string{"example.yaml", "../../examples/http-to-mysql/pipeline.yaml"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := pipeline.Load(name, pipeline.LoadOptions{Env: func(string) (string, bool) { return "placeholder", true }})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(cfg.Pipelines) == 0 {
				t.Fatalf("%s declares no pipeline", name)
			}
		})
	}
}
