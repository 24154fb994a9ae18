package sftp

import (
	"testing"

	_ "github.com/sluicehq/sluice/adapters/file"
	"github.com/sluicehq/sluice/pipeline"
)

// TestExamplesValidate loads this adapter's example.yaml and the SFTP
// examples as `sluice validate` does.
func TestExamplesValidate(t *testing.T) {
	env := map[string]string{
		"PARTNER_SFTP_ADDRESS": "partner.example.com:22", "PARTNER_SFTP_USER": "batch",
		"SFTP_ADDRESS": "partner.example.com", "SFTP_USER": "batch",
		"SFTP_KEY_FILE": "/etc/sluice/id_ed25519", "SFTP_KNOWN_HOSTS": "/etc/sluice/known_hosts",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, name := range []string{"example.yaml", "../../examples/sftp-to-file/pipeline.yaml", "../../examples/file-to-sftp/pipeline.yaml"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := pipeline.Load(name, pipeline.LoadOptions{Env: lookup})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(cfg.Pipelines) == 0 {
				t.Fatalf("%s declares no pipeline", name)
			}
		})
	}
}
