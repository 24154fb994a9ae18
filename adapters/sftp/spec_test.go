package sftp

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/adapters"
)

// TestSpecChecks feeds invalid connection settings and checks that each
// fails naming the field at fault, and that field examples pass checks.
func TestSpecChecks(t *testing.T) {
	base := func(kv ...any) map[string]any {
		raw := map[string]any{"address": "host:22", "user": "u", "key_file": "/k", "path": "/in"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(raw, kv[i].(string))
				continue
			}
			raw[kv[i].(string)] = kv[i+1]
		}
		return raw
	}
	cases := []struct {
		name string
		raw  map[string]any
		want string
	}{
		{"no auth", base("key_file", nil), "no way to log in"},
		{"password twice", base("password", "x", "password_file", "/p"), "set password or password_file, not both"},
		{"passphrase without key", base("key_file", nil, "password", "x", "key_passphrase", "y"), "key_passphrase needs key_file"},
		{"known_hosts and fingerprint", base("known_hosts", "/kh", "host_key_fingerprint", "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"), "not both"},
		{"insecure and known_hosts", base("known_hosts", "/kh", "insecure_ignore_host_key", true), "contradict"},
		{"bad fingerprint", base("host_key_fingerprint", "MD5:aa:bb"), "want a SHA256 fingerprint"},
		{"short fingerprint", base("host_key_fingerprint", "SHA256:abc"), "43 characters"},
		{"bad address", base("address", "host:99999"), "port must be 1 to 65535"},
		{"min above max", base("min_size", "2KiB", "max_size", "1KiB"), "min_size"},
		{"concurrency", base("concurrency", 0), "must be 1 to 64"},
		{"max_inflight", base("max_inflight", "1KiB"), "must be 32KiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapters.Decode(sourceSpec(), tc.raw, adapters.DecodeOptions{Path: "src"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := adapters.Decode(sinkSpec(), map[string]any{"address": "h", "user": "u", "password": "p", "base_dir": "/o", "path": "x", "file_mode": "0999"}, adapters.DecodeOptions{}); err == nil || !strings.Contains(err.Error(), "octal") {
		t.Fatalf("file_mode 0999: %v", err)
	}
	for _, spec := range []*adapters.Spec{sourceSpec(), sinkSpec()} {
		for _, f := range spec.Fields {
			if f.Check != nil && f.Example != nil {
				if err := f.Check(f.Example); err != nil {
					t.Errorf("example of %s fails its check: %v", f.Name, err)
				}
			}
		}
	}
	if a, _ := splitAddress("legacy-host"); a != "legacy-host:22" {
		t.Fatalf("address without port: %q", a)
	}
}
