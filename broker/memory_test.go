package broker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/adapters"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
)

func TestMemoryConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, dir string) broker.Broker { return broker.NewMemory() })
}

// Acks out of order and releases in the middle of the window: the released
// messages come back first, in queue order, and the queue empties once all
// are acked.
func TestMemoryWindow(t *testing.T) {
	ctx := context.Background()
	q, err := broker.NewMemory().Open("p/q", broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := q.Consumer("g")
	if err != nil {
		t.Fatal(err)
	}
	var in []adapters.Message
	for i := 0; i < 10; i++ {
		in = append(in, adapters.Message{ID: fmt.Sprint(i)})
	}
	if err := q.Enqueue(ctx, in); err != nil {
		t.Fatal(err)
	}
	ds, err := c.Receive(ctx, 6)
	if err != nil || len(ds) != 6 {
		t.Fatalf("receive: %d, %v", len(ds), err)
	}
	var even, odd []broker.Delivery
	for i, d := range ds {
		if i%2 == 0 {
			even = append(even, d)
		} else {
			odd = append(odd, d)
		}
	}
	if err := c.Ack(ctx, even[1:]); err != nil { // 2 and 4: ahead of the floor
		t.Fatal(err)
	}
	if err := c.Release(ctx, odd); err != nil {
		t.Fatal(err)
	}
	st := q.Stats().Groups[0]
	if st.Pending != 8 || st.InFlight != 1 {
		t.Fatalf("stats: %+v", st)
	}
	again, err := c.Receive(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range again {
		got = append(got, d.Message.ID)
	}
	if want := "1 3 5 6 7"; strings.Join(got, " ") != want {
		t.Fatalf("redelivered %q, want %q", got, want)
	}
	if again[0].Message.Attempt != 1 {
		t.Fatalf("a release charged an attempt: %d", again[0].Message.Attempt)
	}
	if err := c.Ack(ctx, append(again, even[0])); err != nil {
		t.Fatal(err)
	}
	rest, err := c.Receive(ctx, 10)
	if err != nil || len(rest) != 2 {
		t.Fatalf("rest: %d, %v", len(rest), err)
	}
	if err := c.Ack(ctx, append(rest, even[0])); err != nil { // a repeated ack is ignored
		t.Fatal(err)
	}
	if s := q.Stats(); s.Messages != 0 || s.Bytes != 0 || s.Groups[0].Pending != 0 || s.Groups[0].InFlight != 0 || s.Groups[0].Acked != 10 {
		t.Fatalf("after acking everything: %+v", s)
	}
}
