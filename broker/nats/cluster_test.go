package natsbroker_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestClusterNodeLossDuringLoad runs two agents on a three-node JetStream
// cluster with three replicas and kills one node while records flow: the
// flow continues and every record arrives.
func TestClusterNodeLossDuringLoad(t *testing.T) {
	c := testenv.StartNATSCluster(t, 3)
	resetCollected()
	o := testOptions(t, c.URL(), testenv.NATSPrefix(t))
	o.Replicas = 3
	const count = 8000
	cfg := loadConfig(t, sharePipeline(count, 4000, "nats_test_collect"))
	a1, b1 := inProcessAgent(t, o, cfg)
	inProcessAgent(t, o, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for d, _, _ := collectedCounts(); d < count/4; d, _, _ = collectedCounts() {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records after 30s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// kill the node the first agent is connected to: its connection fails
	// over, and the streams, consumers and buckets whose leader it was
	// elect another
	victim := 0
	for i, s := range c.Servers {
		if b1.Conn().ConnectedUrl() == s.URL() {
			victim = i
		}
	}
	before, _, _ := collectedCounts()
	if err := c.Servers[victim].Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitAll(t, count, 90*time.Second)
	distinct, dups, sinks := collectedCounts()
	t.Logf("node %d killed after %d records; all %d delivered %v later, %d duplicates, %d sinks delivered",
		victim+1, before, distinct, time.Since(killed).Round(time.Millisecond), dups, sinks)
	q := a1.Runtime("share").Queues()["q"]
	var st broker.Stats
	for deadline := time.Now().Add(30 * time.Second); ; {
		if st = q.Stats(); st.Messages == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Messages != 0 {
		t.Fatalf("queue after delivery: %+v", st)
	}
	// the killed node comes back and catches up
	if err := c.Servers[victim].Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b1.State("probe/").Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("state after the node returned: %v", err)
	}
}
