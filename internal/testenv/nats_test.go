package testenv

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestNATS(t *testing.T) {
	url := NATS(t)
	if !strings.HasPrefix(url, "nats://") {
		t.Fatalf("url %q", url)
	}
	if a, b := NATSPrefix(t), NATSPrefix(t); a == b || len(a) < 5 {
		t.Fatalf("prefixes %q %q", a, b)
	}
}

func TestPrivateNATSRestarts(t *testing.T) {
	s, err := StartNATS(NATSOptions{})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer s.Close()
	addr := strings.TrimPrefix(s.URL(), "nats://")
	if err := probeJetStream(addr); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if probeJetStream(addr) == nil {
		t.Fatal("killed server still answers")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := probeJetStream(addr); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
