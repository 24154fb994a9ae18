package pipeline

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/transform"
)

// BenchmarkEnqueue groups a source batch of 1000 outputs routed to two
// queues (one in five to the first) and enqueues it into memory queues that
// a consumer drains. Figures are per output.
func BenchmarkEnqueue(b *testing.B) {
	const batch = 1000
	ctx := context.Background()
	mem := broker.NewMemory()
	r := &Runtime{p: &Pipeline{Name: "b"}, queues: map[string]broker.Queue{}}
	var cons []broker.Consumer
	for _, name := range []string{"priority", "normal"} {
		q, err := mem.Open("b/"+name, broker.Options{})
		if err != nil {
			b.Fatal(err)
		}
		c, err := q.Consumer("sink")
		if err != nil {
			b.Fatal(err)
		}
		r.queues[name] = q
		cons = append(cons, c)
	}
	outs := make([]transform.Output, batch)
	for i := range outs {
		q := []string{"normal"}
		if i%5 == 0 {
			q = []string{"priority"}
		}
		outs[i] = transform.Output{Queues: q, Msg: adapters.Message{ID: fmt.Sprint(i),
			Record: adapters.Record{"order_id": int64(i), "status": "open"}, Meta: map[string]string{adapters.MetaSource: "in"}}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		waits, err := r.enqueue(ctx, outs)
		if err != nil {
			b.Fatal(err)
		}
		for _, w := range waits {
			if err := w(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, c := range cons {
			for {
				ds, err := c.Receive(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Ack(ctx, ds); err != nil {
					b.Fatal(err)
				}
				if len(ds) < batch {
					break
				}
			}
		}
		b.StartTimer()
	}
}
