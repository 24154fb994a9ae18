package exec_test

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
)

// BenchmarkSource measures messages per second from a program that writes
// records as fast as it can, through Read and Ack.
func BenchmarkSource(b *testing.B) {
	src := adaptertest.NewSource(b, "exec", helperConf(b, map[string]any{"mode": "flood", "count": b.N}), nil)
	defer src.Close(bg(b))
	if err := src.Connect(bg(b)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	n := 0
	for {
		batch, err := src.Read(bg(b))
		if errors.Is(err, adapters.ErrEndOfInput) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		n += len(batch.Messages)
		if err := batch.Ack(bg(b), nil); err != nil {
			b.Fatal(err)
		}
	}
	if n != b.N {
		b.Fatalf("read %d messages, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSink measures messages per second through Write, in batches of
// 256, to a program that acks each message at once.
func BenchmarkSink(b *testing.B) {
	s := adaptertest.NewSink(b, "exec", helperConf(b, map[string]any{"mode": "ackall"}))
	defer s.Close(bg(b))
	if err := s.Connect(bg(b)); err != nil {
		b.Fatal(err)
	}
	batch := make([]adapters.Message, 256)
	for i := range batch {
		batch[i] = adaptertest.DefaultMessage(i)
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += len(batch) {
		if err := s.Write(bg(b), batch[:min(len(batch), b.N-done)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
