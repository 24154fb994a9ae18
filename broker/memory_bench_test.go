package broker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// BenchmarkMemoryFlow is the engine's hot path through the memory queue: a
// source batch of 1000 messages enqueued, then received by one sink in
// batches of 250 and acked. Figures are per message.
func BenchmarkMemoryFlow(b *testing.B) {
	const batch = 1000
	ctx := context.Background()
	q, err := broker.NewMemory().Open("p/q", broker.Options{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := q.Consumer("sink")
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]adapters.Message, batch)
	for i := range msgs {
		msgs[i] = adapters.Message{ID: fmt.Sprintf("%032d", i),
			Record: adapters.Record{"order_id": int64(i), "customer": "customer-00042", "qty": int64(3), "price": 9.5, "status": "open"},
			Meta:   map[string]string{adapters.MetaSource: "in", adapters.MetaPath: "orders.jsonl", adapters.MetaLine: "42", adapters.MetaOffset: "4242"}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		if err := q.Enqueue(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < batch; {
			ds, err := c.Receive(ctx, 250)
			if err != nil {
				b.Fatal(err)
			}
			got += len(ds)
			if err := c.Ack(ctx, ds); err != nil {
				b.Fatal(err)
			}
		}
	}
}
