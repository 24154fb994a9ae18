package broker

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/adapters"
)

// The size estimate must be of the order of what a decoded record really
// holds (1.2 kB on the heap for the order records of bench/pipeline,
// measured with runtime.MemStats), or max_bytes would not bound memory.
func TestBatchSizes(t *testing.T) {
	order := func(i int) adapters.Message {
		return adapters.Message{ID: fmt.Sprintf("%032x", i),
			Record: adapters.Record{"order_id": int64(i), "customer": "CUSTOMER-00042", "sku": "SKU-0042", "qty": int64(3),
				"price": 9.5, "status": "open", "created": "2026-11-12T10:17:00Z", "total": 28.5, "priority": false,
				"address": adapters.Record{"city": "Lyon", "zip": "69001"}},
			Meta: map[string]string{adapters.MetaSource: "in", adapters.MetaPath: "orders.jsonl", adapters.MetaLine: fmt.Sprint(i), adapters.MetaOffset: fmt.Sprint(i * 170)}}
	}
	tests := []struct {
		name string
		msgs []adapters.Message
	}{
		{"one", []adapters.Message{order(1)}},
		{"same shape", func() (ms []adapters.Message) {
			for i := 0; i < 100; i++ {
				ms = append(ms, order(i))
			}
			return
		}()},
		{"raw", []adapters.Message{{ID: "x", Raw: make([]byte, 5000)}, {ID: "y", Raw: make([]byte, 10)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sizes := make([]int64, len(tt.msgs))
			total := batchSizes(tt.msgs, sizes)
			var sum, exact int64
			for i := range tt.msgs {
				sum += sizes[i]
				m := &tt.msgs[i]
				exact += int64(msgOverhead + len(m.ID) + len(m.Raw))
				if m.Record != nil {
					exact += recordSize(m.Record, 0)
				}
				if m.Meta != nil {
					exact += metaSize(m.Meta)
				}
			}
			if sum != total {
				t.Fatalf("sizes add up to %d, total %d", sum, total)
			}
			// the sampled estimate stays within 5% of measuring every message
			if d := float64(total-exact) / float64(exact); d > 0.05 || d < -0.05 {
				t.Fatalf("estimate %d, exact %d", total, exact)
			}
			if tt.msgs[0].Record != nil {
				if per := total / int64(len(tt.msgs)); per < 1000 || per > 2500 {
					t.Fatalf("%d bytes per order record, want 1000-2500", per)
				}
			}
			if tt.name == "raw" && sizes[0] < 5000 {
				t.Fatalf("raw payload not counted: %d", sizes[0])
			}
		})
	}
}
