package spool_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"

	_ "example.com/sluice-spool/spool"
)

// The spool source passes Sluice's conformance suite.
func TestConformance(t *testing.T) {
	adaptertest.RunSource(t, adaptertest.SourceCase{
		Setup: func(t *testing.T) *adaptertest.SourcePeer {
			dir := t.TempDir()
			seq := 0
			return &adaptertest.SourcePeer{
				New: func(t *testing.T, state adapters.State) adapters.Source {
					return adaptertest.NewSource(t, "spool", map[string]any{"dir": dir, "min_age": "0s", "poll_interval": "10ms"}, state)
				},
				Produce: func(t *testing.T, n int) {
					for i := 0; i < n; i++ {
						seq++
						name := filepath.Join(dir, fmt.Sprintf("RPT%04d.spl", seq))
						body := fmt.Sprintf("DAILY REPORT %d\nline\n", seq)
						if err := os.WriteFile(name+".tmp", []byte(body), 0o644); err != nil {
							t.Fatal(err)
						}
						if err := os.Rename(name+".tmp", name); err != nil {
							t.Fatal(err)
						}
					}
				},
			}
		},
		Timeout: 10 * time.Second,
	})
}
