package generate

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/statestore"
)

func newTest(t testing.TB, raw map[string]any, st adapters.State, once bool) adapters.Source {
	t.Helper()
	conf, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSource(conf, adapters.Resources{Pipeline: "p", Name: "gen", State: st, Once: once})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func drain(t testing.TB, s adapters.Source) []adapters.Message {
	t.Helper()
	var out []adapters.Message
	for {
		b, err := s.Read(context.Background())
		if errors.Is(err, adapters.ErrEndOfInput) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Ack(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Messages...)
	}
}

func TestGenerateRecords(t *testing.T) {
	s := newTest(t, map[string]any{"count": 5, "batch_size": 2, "record": map[string]any{
		"id": "record.seq", "even": "record.seq % 2 == 0", "label": `"n" + meta.seq`,
	}}, statestore.Memory(), false)
	msgs := drain(t, s)
	if len(msgs) != 5 {
		t.Fatalf("got %d messages, want 5", len(msgs))
	}
	for i, m := range msgs {
		want := adapters.Record{"id": int64(i), "even": i%2 == 0, "label": "n" + strconv.Itoa(i)}
		for k, v := range want {
			if m.Record[k] != v {
				t.Errorf("message %d: %s = %#v, want %#v", i, k, m.Record[k], v)
			}
		}
		if m.ID != adapters.NewID("p", "gen", strconv.Itoa(i)) || m.Meta["seq"] != strconv.Itoa(i) {
			t.Errorf("message %d: ID %s, meta %v", i, m.ID, m.Meta)
		}
	}
}

func TestGenerateDefaultAndTemplate(t *testing.T) {
	msgs := drain(t, newTest(t, map[string]any{"count": 2}, nil, false))
	if len(msgs) != 2 || msgs[1].Record["seq"] != int64(1) {
		t.Fatalf("default records = %+v", msgs)
	}
	msgs = drain(t, newTest(t, map[string]any{"count": 2, "template": "order {{ record.seq * 10 }}"}, nil, false))
	if len(msgs) != 2 || string(msgs[1].Raw) != "order 10" || msgs[1].Record != nil {
		t.Fatalf("template messages = %+v", msgs)
	}
}

func TestGenerateRestartContinuesSequence(t *testing.T) {
	st := statestore.Memory()
	raw := map[string]any{"count": 10, "batch_size": 4}
	s := newTest(t, raw, st, false)
	ctx := context.Background()
	b1, _ := s.Read(ctx)
	b2, _ := s.Read(ctx)
	if err := b1.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	s.Close(ctx)
	if err := b2.Ack(ctx, errors.New("not enqueued")); err != nil {
		t.Fatal(err)
	}
	msgs := drain(t, newTest(t, raw, st, false))
	if len(msgs) != 6 || msgs[0].Record["seq"] != int64(4) || msgs[0].ID != b2.Messages[0].ID {
		t.Fatalf("after restart got %d messages starting at %v", len(msgs), msgs[0].Record)
	}
	if got := drain(t, newTest(t, raw, st, false)); len(got) != 0 {
		t.Fatalf("a finished generator emitted %d more", len(got))
	}
}

func TestGenerateRewindsFailedBatch(t *testing.T) {
	s := newTest(t, map[string]any{"count": 4, "batch_size": 2}, statestore.Memory(), false)
	ctx := context.Background()
	b1, _ := s.Read(ctx)
	if err := b1.Ack(ctx, context.Canceled); err != nil {
		t.Fatal(err)
	}
	msgs := drain(t, s)
	if len(msgs) != 4 || msgs[0].ID != b1.Messages[0].ID {
		t.Fatalf("after a failed batch got %d messages", len(msgs))
	}
}

func TestGenerateRateAndClose(t *testing.T) {
	start := time.Now()
	msgs := drain(t, newTest(t, map[string]any{"count": 20, "rate": 100, "batch_size": 5}, nil, false))
	// 20 records at 100/s: the last is due 190ms after the first.
	if el := time.Since(start); len(msgs) != 20 || el < 150*time.Millisecond {
		t.Fatalf("%d messages in %s: not paced", len(msgs), el)
	}
	s := newTest(t, map[string]any{"rate": 0.001}, nil, false)
	drainOne := func() error { _, err := s.Read(context.Background()); return err }
	if err := drainOne(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- drainOne() }()
	time.Sleep(20 * time.Millisecond)
	s.Close(context.Background())
	select {
	case err := <-errc:
		if !errors.Is(err, adapters.ErrClosed) {
			t.Fatalf("Read = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a pacing Read")
	}
}

func TestGenerateOnceUnlimited(t *testing.T) {
	msgs := drain(t, newTest(t, map[string]any{"batch_size": 3}, nil, true))
	if len(msgs) != 3 {
		t.Fatalf("--once with no count emitted %d, want one batch of 3", len(msgs))
	}
}

func TestGenerateConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"record": map[string]any{"a": "record.("}}, `field "a"`},
		{map[string]any{"record": map[string]any{"a": "1"}, "template": "x"}, "not both"},
		{map[string]any{"count": -1}, "zero or more"},
		{map[string]any{"template": "{{ x"}, "test.template"},
	} {
		_, err := adapters.Decode(spec, tc.raw, adapters.DecodeOptions{Path: "test"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%v) = %v, want %q", tc.raw, err, tc.want)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	s := newTest(b, map[string]any{"batch_size": 1000, "record": map[string]any{"id": "record.seq", "region": `["eu","us"][record.seq % 2]`}}, nil, false)
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		batch, err := s.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n += len(batch.Messages)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

func TestGenerateRecordValuedFieldIsNotShared(t *testing.T) {
	msgs := drain(t, newTest(t, map[string]any{"count": 3, "record": map[string]any{"input": "record"}}, nil, false))
	for i, m := range msgs {
		in, _ := m.Record["input"].(adapters.Record)
		if in["seq"] != int64(i) {
			t.Fatalf("message %d: input = %v", i, in)
		}
	}
}
