package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sluicehq/sluice/adapters"
)

// Test adapters: a source that emits the records of its config, and a sink
// that collects what it is given and fails on command.

type testSource struct {
	recs  []any
	batch int
	end   bool
	pos   int
	mu    sync.Mutex
	acked int
	errs  []error
	done  chan struct{}
	once  sync.Once
	// failAck makes the first Ack fail, as a checkpoint store that cannot
	// write would.
	failAck bool
}

var (
	testMu      sync.Mutex
	testSources = map[string]*testSource{}
	testSinks   = map[string]*testSink{}
	testBuilds  = map[string]int{}
)

func init() {
	adapters.RegisterSource("test_source", &adapters.Spec{
		Summary: "test source",
		Fields: []adapters.Field{
			{Name: "records", Type: adapters.TypeAny, Default: []any{}},
			{Name: "batch", Type: adapters.TypeInt, Default: 2},
			{Name: "end", Type: adapters.TypeBool, Default: false},
			{Name: "bad_every", Type: adapters.TypeInt, Default: 0},
			{Name: "fail_first_ack", Type: adapters.TypeBool, Default: false},
		},
	}, func(conf *adapters.Config, res adapters.Resources) (adapters.Source, error) {
		recs, _ := conf.Any("records").([]any)
		s := &testSource{recs: recs, batch: conf.Int("batch"), end: conf.Bool("end") || res.Once, done: make(chan struct{})}
		testMu.Lock()
		key := res.Pipeline + "/" + res.Name
		testBuilds[key]++
		s.failAck = conf.Bool("fail_first_ack") && testBuilds[key] == 1
		testSources[key] = s
		testMu.Unlock()
		return s, nil
	})
	adapters.RegisterSink("test_sink", &adapters.Spec{
		Summary: "test sink",
		Fields: []adapters.Field{
			{Name: "fail", Type: adapters.TypeString, Default: "", Enum: []string{"", "permanent", "transient", "unavailable", "odd_permanent"}},
			{Name: "fail_times", Type: adapters.TypeInt, Default: 0, Description: "fail this many Writes, then succeed; 0 = always"},
		},
	}, func(conf *adapters.Config, res adapters.Resources) (adapters.Sink, error) {
		s := &testSink{fail: conf.String("fail"), failTimes: conf.Int("fail_times")}
		testMu.Lock()
		testSinks[res.Pipeline+"/"+res.Name] = s
		testMu.Unlock()
		return s, nil
	})
}

func getSource(name string) *testSource {
	testMu.Lock()
	defer testMu.Unlock()
	return testSources[name]
}

func getSink(name string) *testSink {
	testMu.Lock()
	defer testMu.Unlock()
	return testSinks[name]
}

func (s *testSource) Connect(ctx context.Context) error { return nil }

func (s *testSource) Read(ctx context.Context) (adapters.Batch, error) {
	if s.pos >= len(s.recs) {
		if s.end {
			return adapters.Batch{}, adapters.ErrEndOfInput
		}
		select {
		case <-ctx.Done():
			return adapters.Batch{}, ctx.Err()
		case <-s.done:
			return adapters.Batch{}, adapters.ErrClosed
		}
	}
	var msgs []adapters.Message
	for len(msgs) < s.batch && s.pos < len(s.recs) {
		m := adapters.Message{ID: fmt.Sprint("m", s.pos), Meta: map[string]string{"seq": fmt.Sprint(s.pos)}}
		switch r := s.recs[s.pos].(type) {
		case map[string]any:
			m.Record = r
		case string:
			m.Err = &adapters.RecordError{Record: int64(s.pos + 1), Err: errors.New(r)}
		}
		msgs = append(msgs, m)
		s.pos++
	}
	n := len(msgs)
	return adapters.Batch{Messages: msgs, Ack: func(ctx context.Context, err error) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.errs = append(s.errs, err)
			return nil
		}
		if s.failAck {
			s.failAck = false
			return errors.New("checkpoint store unavailable")
		}
		s.acked += n
		return nil
	}}, nil
}

func (s *testSource) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.done) })
	return nil
}

func (s *testSource) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

type testSink struct {
	fail      string
	failTimes int
	mu        sync.Mutex
	got       []adapters.Message
	writes    int
	attempts  []int
	closed    int
}

func (s *testSink) Connect(ctx context.Context) error { return nil }

func (s *testSink) Write(ctx context.Context, msgs []adapters.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	for _, m := range msgs {
		s.attempts = append(s.attempts, m.Attempt)
	}
	failing := s.fail != "" && (s.failTimes == 0 || s.writes <= s.failTimes)
	if failing {
		switch s.fail {
		case "permanent":
			return adapters.PermanentError(errors.New("bad data"))
		case "transient":
			return errors.New("timeout")
		case "unavailable":
			return adapters.UnavailableError(errors.New("connection refused"))
		case "odd_permanent":
			be := adapters.NewBatchError(len(msgs))
			for i, m := range msgs {
				if v, _ := m.Record["n"].(int64); v%2 == 1 {
					be.Fail(i, adapters.PermanentError(fmt.Errorf("odd %d", v)))
				} else {
					s.got = append(s.got, m)
				}
			}
			return be.Err()
		}
	}
	s.got = append(s.got, msgs...)
	return nil
}

func (s *testSink) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed++
	s.mu.Unlock()
	return nil
}

func (s *testSink) messages() []adapters.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]adapters.Message(nil), s.got...)
}
