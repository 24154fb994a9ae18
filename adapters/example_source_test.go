package adapters_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/statestore"
)

// listSource emits the lines of a list, two per batch, and remembers in its
// State how far the engine has durably taken them.
type listSource struct {
	name   string
	lines  []string
	state  adapters.State
	pos    int // next line to read (Read's goroutine only)
	closed chan struct{}
	once   sync.Once
}

func newListSource(conf *adapters.Config, res adapters.Resources) (adapters.Source, error) {
	// The factory does no I/O: it only keeps the config and the resources.
	return &listSource{name: res.Name, lines: conf.Strings("lines"), state: res.State, closed: make(chan struct{})}, nil
}

func (s *listSource) Connect(ctx context.Context) error {
	// Resume after the last committed position.
	v, ok, err := s.state.Get(ctx, "offset")
	if err != nil {
		return err
	}
	if ok {
		s.pos, _ = strconv.Atoi(string(v))
	}
	return nil
}

func (s *listSource) Read(ctx context.Context) (adapters.Batch, error) {
	if s.pos >= len(s.lines) {
		return adapters.Batch{}, adapters.ErrEndOfInput
	}
	end := min(s.pos+2, len(s.lines))
	var msgs []adapters.Message
	for i := s.pos; i < end; i++ {
		msgs = append(msgs, adapters.Message{
			ID:     adapters.NewID(s.name, strconv.Itoa(i)), // the same line always gets the same ID
			Record: adapters.Record{"line": s.lines[i]},
		})
	}
	s.pos = end
	return adapters.Batch{Messages: msgs, Ack: func(ctx context.Context, err error) error {
		if err != nil {
			return nil // not durable: do not commit; a new source reads the batch again
		}
		return s.state.Put(ctx, "offset", []byte(strconv.Itoa(end)))
	}}, nil
}

func (s *listSource) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.closed) }) // idempotent
	return nil
}

func init() {
	adapters.RegisterSource("example_list", &adapters.Spec{
		Summary: "Emit the lines of a list.",
		Fields:  []adapters.Field{{Name: "lines", Type: adapters.TypeStrings, Description: "Lines to emit."}},
	}, newListSource)
}

// A source reads batches; the engine acks each batch once it is durable, and
// only then does the source commit its position. A source re-created with
// the same State resumes after the last acked batch, so an unacked batch is
// read again with the same IDs: at least once.
func Example_source() {
	ctx := context.Background()
	spec, _ := adapters.SourceSpec("example_list")
	conf, err := adapters.Decode(spec, map[string]any{"lines": []any{"a", "b", "c", "d"}}, adapters.DecodeOptions{})
	if err != nil {
		panic(err)
	}
	state := statestore.Memory()
	res := adapters.Resources{Pipeline: "demo", Name: "list", State: state}

	src, _ := adapters.NewSource("example_list", conf, res)
	_ = src.Connect(ctx)
	b, _ := src.Read(ctx)
	fmt.Println("first batch:", b.Messages[0].Record["line"], b.Messages[1].Record["line"])
	_ = b.Ack(ctx, nil) // durable: the source commits offset 2
	b, _ = src.Read(ctx)
	second := b.Messages[0].ID
	_ = b.Ack(ctx, fmt.Errorf("queue full")) // not durable: nothing committed
	_ = src.Close(ctx)

	// After a restart, the source resumes after the acked batch.
	src, _ = adapters.NewSource("example_list", conf, res)
	_ = src.Connect(ctx)
	b, _ = src.Read(ctx)
	fmt.Println("after restart:", b.Messages[0].Record["line"], b.Messages[1].Record["line"], "same ID:", b.Messages[0].ID == second)
	_ = b.Ack(ctx, nil)
	_, err = src.Read(ctx)
	fmt.Println(err)
	_ = src.Close(ctx)
	_ = src.Close(ctx) // Close is idempotent
	// Output:
	// first batch: a b
	// after restart: c d same ID: true
	// end of input
}
