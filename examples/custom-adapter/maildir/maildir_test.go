package maildir_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"

	_ "example.com/sluice-spool/maildir"
)

// The maildir sink passes Sluice's conformance suite.
func TestConformance(t *testing.T) {
	adaptertest.RunSink(t, adaptertest.SinkCase{
		Setup: func(t *testing.T) *adaptertest.SinkPeer {
			dir := t.TempDir()
			return &adaptertest.SinkPeer{
				New: func(t *testing.T) adapters.Sink {
					return adaptertest.NewSink(t, "maildir", map[string]any{"dir": dir})
				},
				Received: func(t *testing.T) []adapters.Record {
					files, _ := filepath.Glob(filepath.Join(dir, "new", "*.json"))
					var out []adapters.Record
					for _, f := range files {
						b, err := os.ReadFile(f)
						if err != nil {
							t.Fatal(err)
						}
						var rec map[string]any
						if err := json.Unmarshal(b, &rec); err != nil {
							t.Fatal(err)
						}
						out = append(out, rec)
					}
					return out
				},
				Reject: func(i int) adapters.Message {
					m := adaptertest.DefaultMessage(i)
					m.Record = nil // the json format needs a record
					return m
				},
			}
		},
	})
}
