package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	_ "github.com/sluicehq/sluice/adapters/exec" // a source and a sink both called exec
)

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestAdaptersCommand(t *testing.T) {
	cases := []struct {
		args     []string
		code     int
		want     []string
		wantNot  []string
		inStderr bool
	}{
		{args: []string{"adapters"}, want: []string{"Sources:", "Sinks:", "Codecs:", "Stages:", "  exec", "JSON-lines protocol", "none", "filter"}},
		{args: []string{"adapters", "sinks"}, want: []string{"Sinks:", "exec"}, wantNot: []string{"Sources:"}},
		{args: []string{"adapters", "exec"}, want: []string{"source exec:", "sink exec:", "command  ([]string, required)", "write_timeout", "batch_size", "Example:"}},
		{args: []string{"adapters", "source", "exec"}, want: []string{"source exec:", "restart_backoff.initial  (duration, default 1s)", "Allowed: debug, info, warn, error", "Example: [python3, source.py]"}, wantNot: []string{"sink exec:", "write_timeout"}},
		{args: []string{"adapters", "sink", "exec"}, want: []string{"sink exec:", "from  (string, optional)", "workers  (int, default 1)"}, wantNot: []string{"source exec:"}},
		{args: []string{"adapters", "exec"}, want: []string{"env  (map[string]string, optional, secret)"}, wantNot: []string{"QUEUE_DSN"}},
		{args: []string{"adapters", "queue"}, want: []string{"queue options:", "max_attempts  (int, default 5)", "backoff.initial"}},
		{args: []string{"adapters", "filter"}, want: []string{"stage filter:", "JSON Schema"}},
		{args: []string{"adapters", "nosuch"}, code: 1, want: []string{`unknown adapter, codec or stage "nosuch" (known:`, "exec"}, inStderr: true},
		{args: []string{"adapters", "codec", "exec"}, code: 1, want: []string{`unknown codec "exec"`}, inStderr: true},
		{args: []string{"adapters", "gizmo", "exec"}, code: 2, want: []string{`unknown kind "gizmo"`}, inStderr: true},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, errOut, code := run(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out, errOut)
			}
			text := out
			if c.inStderr {
				text = errOut
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			for _, w := range c.wantNot {
				if strings.Contains(text, w) {
					t.Errorf("output has %q:\n%s", w, text)
				}
			}
		})
	}
}

func TestSchemaCommand(t *testing.T) {
	out, errOut, code := run(t, "schema")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("$schema = %v", s["$schema"])
	}
	defs, _ := s["$defs"].(map[string]any)
	for _, d := range []string{"source.exec", "sink.exec", "queue", "codec", "stage", "pipeline"} {
		if _, ok := defs[d]; !ok {
			t.Errorf("$defs.%s missing", d)
		}
	}
	if strings.Contains(out, `\u003c`) || strings.Contains(out, `\u0026`) {
		t.Error("HTML-escaped output")
	}
}
