package pipeline

import (
	"strings"
	"testing"
	"time"
)

func TestBrokerBlockNATS(t *testing.T) {
	const body = `
    sources: [{name: src, type: test_source}]
    queues: {q: {}}
    sinks: [{name: out, type: test_sink}]
`
	load := func(broker string) (*Config, error) {
		return LoadBytes("p.yaml", []byte("pipelines:\n  p:\n    broker: "+broker+body), LoadOptions{Env: func(string) (string, bool) { return "", false }})
	}
	cfg, err := load(`{type: nats, url: "nats://a:4222,nats://b:4222", replicas: 3, lease_ttl: 5s, user: u, password: secret}`)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pipelines[0]
	if p.Broker != "nats" || p.BrokerConf.String("url") != "nats://a:4222,nats://b:4222" || p.BrokerConf.Int("replicas") != 3 ||
		p.BrokerConf.Duration("lease_ttl") != 5*time.Second || p.BrokerConf.String("storage") != "file" {
		t.Fatalf("broker block: %q %+v", p.Broker, p.BrokerConf)
	}
	for _, tc := range []struct{ broker, want string }{
		{`{type: nats, replicas: 7}`, "pipelines.p.broker.replicas: want 1 to 5, got 7"},
		{`{type: nats, storage: ssd}`, "pipelines.p.broker.storage"},
		{`{type: nats, urls: x}`, `pipelines.p.broker.urls: unknown key`},
		{`{type: nats, password: secret}`, "pipelines.p.broker.password: password needs user"},
		{`{type: nats, prefix: "A_B"}`, "pipelines.p.broker.prefix"},
		{`{type: kafka}`, `unknown broker type "kafka" (known: disk, memory, nats)`},
	} {
		_, err := load(tc.broker)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error with %q, got %v", tc.broker, tc.want, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", tc.broker, err)
		}
	}
}
