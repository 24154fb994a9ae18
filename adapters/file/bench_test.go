package file_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/statestore"
	_ "github.com/sluicehq/sluice/transform/codec"
)

func build(b *testing.B, kind string, raw map[string]any) any {
	b.Helper()
	var spec *adapters.Spec
	var err error
	if kind == "source" {
		spec, err = adapters.SourceSpec("file")
	} else {
		spec, err = adapters.SinkSpec("file")
	}
	if err != nil {
		b.Fatal(err)
	}
	conf, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	res := adapters.Resources{Pipeline: "bench", Name: "file", State: statestore.Memory(), Once: true}
	if kind == "source" {
		s, err := adapters.NewSource("file", conf, res)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	s, err := adapters.NewSink("file", conf, res)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSourceJSONL measures the batch source decoding a JSON-lines file
// through the production codec, acknowledging every batch (one State
// checkpoint per batch).
func BenchmarkSourceJSONL(b *testing.B) {
	dir := b.TempDir()
	const n = 200_000
	f, err := os.Create(filepath.Join(dir, "orders.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, `{"order_id":%d,"customer":"C%05d","region":"eu","amount":%d.25,"status":"open"}`+"\n", i, i%50000, i%9999)
	}
	w.Flush()
	f.Close()
	fi, _ := os.Stat(f.Name())
	ctx := context.Background()
	b.ReportAllocs()
	records := 0
	for b.Loop() {
		src := build(b, "source", map[string]any{"path": dir, "codec": "jsonl", "ready": "immediate", "watch": false}).(adapters.Source)
		if err := src.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		for {
			batch, err := src.Read(ctx)
			if errors.Is(err, adapters.ErrEndOfInput) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			records += len(batch.Messages)
			if err := batch.Ack(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
		src.Close(ctx)
	}
	if records != n*b.N {
		b.Fatalf("read %d records, want %d", records, n*b.N)
	}
	b.SetBytes(fi.Size())
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSinkJSONL measures the sink writing batches of 1000 records with
// the production jsonl codec: one fsync and one State record per Write.
func BenchmarkSinkJSONL(b *testing.B) {
	ctx := context.Background()
	sink := build(b, "sink", map[string]any{"base_dir": b.TempDir(), "path": "out/orders.jsonl", "codec": "jsonl", "max_records": 1_000_000}).(adapters.Sink)
	if err := sink.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer sink.Close(ctx)
	msgs := make([]adapters.Message, 1000)
	for i := range msgs {
		msgs[i].Record = adapters.Record{"order_id": int64(i), "customer": fmt.Sprintf("C%05d", i), "region": "eu", "amount": float64(i) + 0.25, "status": "open"}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := sink.Write(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(msgs))/b.Elapsed().Seconds(), "records/s")
}
