package sftp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	"github.com/sluicehq/sluice/internal/testenv"
)

// The adapter conformance suite (adapters/adaptertest) against a private
// OpenSSH sshd, restarted for the reconnection case.
func TestConformanceSource(t *testing.T) {
	adaptertest.RunSource(t, adaptertest.SourceCase{
		Setup: func(t *testing.T) *adaptertest.SourcePeer {
			srv := testenv.SSHD(t)
			dir := filepath.Join(srv.Root, "in")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			seq := 0
			return &adaptertest.SourcePeer{
				New: func(t *testing.T, state adapters.State) adapters.Source {
					return adaptertest.NewSource(t, "sftp", conf(srv, "path", dir, "include", "*.jsonl", "ready", "immediate",
						"codec", "jsonl", "scan_interval", "20ms"), state)
				},
				Produce: func(t *testing.T, n int) {
					var b strings.Builder
					for i := 0; i < n; i++ {
						seq++
						fmt.Fprintf(&b, "{\"n\": %d}\n", seq)
					}
					name := filepath.Join(dir, fmt.Sprintf("part-%04d.jsonl", seq))
					writeFile(t, name+".tmp", b.String())
					rename(t, name+".tmp", name)
				},
				Restart: func(t *testing.T) {
					if err := srv.Restart(); err != nil {
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
			srv := testenv.SSHD(t)
			dir := filepath.Join(srv.Root, "out")
			return &adaptertest.SinkPeer{
				New: func(t *testing.T) adapters.Sink {
					return adaptertest.NewSink(t, "sftp", conf(srv, "base_dir", dir, "path", "{{ meta.dir }}out.jsonl", "codec", "jsonl"))
				},
				Received: func(t *testing.T) []adapters.Record {
					return jsonlRecords(t, filepath.Join(dir, "*.jsonl"))
				},
				Reject: func(i int) adapters.Message {
					m := adaptertest.DefaultMessage(i)
					m.Meta = map[string]string{"dir": "../../"} // leaves base_dir: permanent
					return m
				},
				Restart: func(t *testing.T) {
					if err := srv.Restart(); err != nil {
						t.Fatal(err)
					}
				},
				VisibleAfterClose: true, // files are published when they roll or at Close
			}
		},
	})
}
