package stdout

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/filekit/filekittest"
)

func TestStdoutWritesBatches(t *testing.T) {
	var out bytes.Buffer
	s := newWriterSink(filekittest.Codec("test-array"), &out)
	ctx := context.Background()
	if err := s.Write(ctx, []adapters.Message{{Record: adapters.Record{"a": 1}}}); !errors.Is(err, adapters.ErrNotConnected) {
		t.Fatalf("Write before Connect = %v", err)
	}
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []adapters.Message{{Record: adapters.Record{"a": 1}}, {Raw: []byte("no record")}}); err == nil {
		t.Fatal("a message without a record was accepted")
	} else {
		var be *adapters.BatchError
		if !errors.As(err, &be) || len(be.Failed) != 1 || adapters.KindOf(be.Failed[1]) != adapters.Permanent {
			t.Fatalf("Write = %v, want message 1 failed permanently", err)
		}
	}
	if got := out.String(); got != "[\n{\"a\":1}" {
		t.Fatalf("after the first batch: %q (a batch must be flushed)", got)
	}
	if err := s.Write(ctx, []adapters.Message{{Record: adapters.Record{"a": 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "[\n{\"a\":1},\n{\"a\":2}\n]\n" {
		t.Fatalf("output = %q", got)
	}
	if err := s.Write(ctx, nil); !errors.Is(err, adapters.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
}

func TestStdoutRaw(t *testing.T) {
	var out bytes.Buffer
	s := newWriterSink(nil, &out)
	ctx := context.Background()
	s.Connect(ctx)
	if err := s.Write(ctx, []adapters.Message{{Raw: []byte("a")}, {Raw: []byte("b\n")}}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "a\nb\n" {
		t.Fatalf("output = %q", got)
	}
}

func TestStdoutSpec(t *testing.T) {
	filekittest.RegisterCodecs()
	conf, err := adapters.Decode(spec, map[string]any{"codec": "test-jsonl", "stderr": true}, adapters.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSink(conf, adapters.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	if s.(*sink).name() != "stderr" {
		t.Fatal("stderr: true does not write to stderr")
	}
}
