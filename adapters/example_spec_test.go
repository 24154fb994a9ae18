package adapters_test

import (
	"fmt"

	"github.com/sluicehq/sluice/adapters"
)

var uploadSpec = &adapters.Spec{
	Summary: "Upload files to a partner.",
	Fields: []adapters.Field{
		{Name: "host", Type: adapters.TypeString, Description: "Partner host."},
		{Name: "port", Type: adapters.TypeInt, Default: 22, Description: "TCP port."},
		{Name: "password", Type: adapters.TypeString, Optional: true, Secret: true, Description: "Never printed."},
		{Name: "mode", Type: adapters.TypeString, Default: "atomic", Enum: []string{"atomic", "direct"}, Description: "How files are published."},
		{Name: "timeout", Type: adapters.TypeDuration, Default: "30s", Description: "Per operation."},
		{Name: "retry", Type: adapters.TypeObject, Default: map[string]any{}, Description: "Retries.", Fields: []adapters.Field{
			{Name: "max", Type: adapters.TypeInt, Default: 3, Description: "Attempts."},
		}},
	},
	Check: func(c *adapters.Config) error {
		if c.Int("port") < 1 || c.Int("port") > 65535 {
			return c.Errorf("port", "must be 1 to 65535, got %d", c.Int("port"))
		}
		return nil
	},
}

// Decode checks a config block against a spec, fills defaults and returns
// typed accessors. Every problem is reported at once, with its key path.
func ExampleDecode() {
	conf, err := adapters.Decode(uploadSpec, map[string]any{
		"host": "partner.example", "port": "2222", "timeout": "1m", "retry": map[string]any{"max": int64(5)},
	}, adapters.DecodeOptions{Path: "pipelines.p.sinks[0]"})
	if err != nil {
		panic(err)
	}
	fmt.Println(conf.String("host"), conf.Int("port"), conf.String("mode"), conf.Duration("timeout"), conf.Object("retry").Int("max"))
	fmt.Println("port given:", conf.IsSet("port"), "mode given:", conf.IsSet("mode"))

	_, err = adapters.Decode(uploadSpec, map[string]any{
		"hots": "x", "port": "ssh", "mode": "fast", "timeout": "soon", "password": []any{"p"},
	}, adapters.DecodeOptions{File: "pipeline.yaml", Path: "pipelines.p.sinks[0]", Ignore: []string{"name", "type"}})
	for _, e := range adapters.AsErrors(err, "", 0) {
		fmt.Println(e)
	}
	// Output:
	// partner.example 2222 atomic 1m0s 5
	// port given: true mode given: false
	// pipeline.yaml: pipelines.p.sinks[0].hots: unknown key "hots" (known: host, mode, password, port, retry, timeout)
	// pipeline.yaml: pipelines.p.sinks[0].host: required string is missing
	// pipeline.yaml: pipelines.p.sinks[0].port: want an integer, got string "ssh"
	// pipeline.yaml: pipelines.p.sinks[0].password: want a string, got a list
	// pipeline.yaml: pipelines.p.sinks[0].mode: invalid value "fast" (allowed: atomic, direct)
	// pipeline.yaml: pipelines.p.sinks[0].timeout: want a duration like 500ms, 2s or 1h30m, got string "soon"
}

// Message IDs are deterministic: the same position always gives the same ID,
// so a message read again after a crash is recognised downstream.
func ExampleNewID() {
	a := adapters.NewID("partner-drop", "/outbound/ORD0001.csv", "4096")
	b := adapters.NewID("partner-drop", "/outbound/ORD0001.csv", "4096")
	c := adapters.NewID("partner-drop", "/outbound/ORD0001.csv", "8192")
	fmt.Println(len(a), a == b, a == c)
	// Output:
	// 32 true false
}
