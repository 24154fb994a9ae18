package copybook

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/adapters"
)

// A relative copybook path is found beside the pipeline file, whatever the
// working directory.
func TestCopybookPathRelativeToPipelineFile(t *testing.T) {
	dir := t.TempDir()
	cpy := "       01 REC.\n          05 ID PIC 9(4).\n          05 NAME PIC X(6).\n"
	if err := os.WriteFile(filepath.Join(dir, "REC.cpy"), []byte(cpy), 0o644); err != nil {
		t.Fatal(err)
	}
	raw := map[string]any{"type": "copybook", "copybook": "REC.cpy", "encoding": "ascii"}
	if _, err := adapters.NewCodec(raw, adapters.DecodeOptions{File: filepath.Join(dir, "pipeline.yaml"), Path: "codec"}); err != nil {
		t.Fatalf("copybook beside the pipeline file not found: %v", err)
	}
	_, err := adapters.NewCodec(raw, adapters.DecodeOptions{File: filepath.Join(t.TempDir(), "pipeline.yaml"), Path: "codec"})
	if err == nil {
		t.Fatal("a copybook was found beside the wrong pipeline file")
	}
}
