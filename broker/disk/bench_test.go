package disk

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// BenchmarkPipeline measures enqueue + consume + ack through a disk queue
// with fsync before every acknowledgement: 4 producers each keep up to
// 1,000 single-message enqueues in flight (EnqueueAsync), workers receive
// in batches and ack. One op is one message.
func BenchmarkPipeline(b *testing.B) {
	for _, size := range []int{128, 4096} {
		for _, workers := range []int{1, 4} {
			b.Run(fmt.Sprintf("size=%d/workers=%d", size, workers), func(b *testing.B) {
				benchPipeline(b, size, workers)
			})
		}
	}
}

func benchPipeline(b *testing.B, size, workers int) {
	br, err := Open(b.TempDir(), Options{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	q, err := br.Open("bench/q", broker.Options{MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	c, err := q.Consumer("sink")
	if err != nil {
		b.Fatal(err)
	}
	n := b.N
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	var consumed atomic.Int64
	var wg sync.WaitGroup
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := c.Receive(rctx, 1024)
				if err != nil {
					return
				}
				if err := c.Ack(ctx, ds); err != nil {
					b.Error(err)
					return
				}
				if consumed.Add(int64(len(ds))) >= int64(n) {
					cancel()
				}
			}
		}()
	}
	produce(b, q.(broker.AsyncEnqueuer), n, 4, 1000, payload)
	wg.Wait()
}

// produce enqueues n messages from producers goroutines, each with up to
// inflight enqueues outstanding.
func produce(b *testing.B, q broker.AsyncEnqueuer, n, producers, inflight int, payload []byte) {
	ctx := context.Background()
	var pwg sync.WaitGroup
	for p := 0; p < producers; p++ {
		count := n / producers
		if p == 0 {
			count += n % producers
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			waits := make(chan func() error, inflight)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for w := range waits {
					if err := w(); err != nil {
						b.Error(err)
					}
				}
			}()
			msg := []adapters.Message{{Raw: payload}}
			for i := 0; i < count; i++ {
				waits <- q.EnqueueAsync(ctx, msg)
			}
			close(waits)
			<-done
		}()
	}
	pwg.Wait()
}
