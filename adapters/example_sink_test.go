package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/sluicehq/sluice/adapters"
)

// mapSink stores records by their "key" field. It is safe for concurrent
// use, as sinks with workers > 1 must be.
type mapSink struct {
	mu   sync.Mutex
	rows map[string]adapters.Record
	down bool
}

func (s *mapSink) Connect(ctx context.Context) error { return nil }

func (s *mapSink) Write(ctx context.Context, msgs []adapters.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		// The target as a whole is down: back off, charge no attempt.
		return adapters.UnavailableError(errors.New("connection refused"))
	}
	be := adapters.NewBatchError(0)
	for i, m := range msgs {
		key, ok := m.Record["key"].(string)
		if !ok {
			// Retrying cannot help: dead-letter this message only.
			be.Fail(i, adapters.PermanentError(fmt.Errorf("message %s: no key", m.ID)))
			continue
		}
		s.rows[key] = m.Record // an upsert: a redelivered message changes nothing
	}
	return be.Err() // nil when every message was written
}

func (s *mapSink) Close(ctx context.Context) error { return nil }

// A sink returns nil only once every message is safely written. It fails
// single messages with a *BatchError and classifies errors: permanent
// (dead-letter now), unavailable (back off, charge no attempt) or transient
// (anything else: retry).
func Example_sink() {
	ctx := context.Background()
	s := &mapSink{rows: map[string]adapters.Record{}}
	msgs := []adapters.Message{
		{ID: "m1", Record: adapters.Record{"key": "a", "n": int64(1)}},
		{ID: "m2", Record: adapters.Record{"n": int64(2)}},
		{ID: "m3", Record: adapters.Record{"key": "c", "n": int64(3)}},
	}
	err := s.Write(ctx, msgs)
	var be *adapters.BatchError
	if errors.As(err, &be) {
		for i, e := range be.Failed {
			fmt.Printf("message %d failed (%s): %v\n", i, adapters.KindOf(e), e)
		}
	}
	keys := make([]string, 0, len(s.rows))
	for k := range s.rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println("written:", keys)

	s.down = true
	err = s.Write(ctx, msgs[:1])
	fmt.Printf("%s: %v\n", adapters.KindOf(err), err)
	fmt.Println(adapters.KindOf(errors.New("timeout")))
	// Output:
	// message 1 failed (permanent): message m2: no key
	// written: [a c]
	// unavailable: connection refused
	// transient
}
