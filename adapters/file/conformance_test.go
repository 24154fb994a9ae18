package file_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	_ "github.com/sluicehq/sluice/adapters/file"
	_ "github.com/sluicehq/sluice/transform/codec"
)

// The adapter conformance suite (adapters/adaptertest) against a directory.
func TestConformanceSource(t *testing.T) {
	adaptertest.RunSource(t, adaptertest.SourceCase{
		Setup: func(t *testing.T) *adaptertest.SourcePeer {
			dir := t.TempDir()
			seq := 0
			return &adaptertest.SourcePeer{
				New: func(t *testing.T, state adapters.State) adapters.Source {
					return adaptertest.NewSource(t, "file", map[string]any{
						"path": dir, "include": "*.jsonl", "ready": "immediate", "codec": "jsonl", "scan_interval": "20ms",
					}, state)
				},
				Produce: func(t *testing.T, n int) {
					var b strings.Builder
					for i := 0; i < n; i++ {
						seq++
						fmt.Fprintf(&b, "{\"n\": %d}\n", seq)
					}
					name := filepath.Join(dir, fmt.Sprintf("part-%04d.jsonl", seq))
					if err := os.WriteFile(name+".tmp", []byte(b.String()), 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(name+".tmp", name); err != nil {
						t.Fatal(err)
					}
				},
			}
		},
	})
}

func TestConformanceSink(t *testing.T) {
	adaptertest.RunSink(t, adaptertest.SinkCase{
		Setup: func(t *testing.T) *adaptertest.SinkPeer {
			dir := t.TempDir()
			return &adaptertest.SinkPeer{
				New: func(t *testing.T) adapters.Sink {
					return adaptertest.NewSink(t, "file", map[string]any{"base_dir": dir, "path": "out.jsonl", "codec": "jsonl"})
				},
				Received: func(t *testing.T) []adapters.Record {
					files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
					var out []adapters.Record
					for _, f := range files {
						fh, err := os.Open(f)
						if err != nil {
							t.Fatal(err)
						}
						sc := bufio.NewScanner(fh)
						for sc.Scan() {
							var rec map[string]any
							if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
								t.Fatalf("%s: %v", f, err)
							}
							out = append(out, rec)
						}
						fh.Close()
					}
					return out
				},
				VisibleAfterClose: true, // files are published when they roll or at Close
			}
		},
	})
}
