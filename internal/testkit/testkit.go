// Package testkit holds adapters for the agent's tests: a generator source
// that checkpoints its position, and a collecting sink that can fail or block
// on command. They are registered only by Register, which tests call; no
// binary imports this package.
package testkit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// Source and sink type names.
const (
	SourceType = "kit_gen"
	SinkType   = "kit_sink"
)

var registerOnce sync.Once

// Register registers the kit_gen source and the kit_sink sink. It is safe to
// call more than once.
func Register() {
	registerOnce.Do(func() {
		adapters.RegisterSource(SourceType, sourceSpec, newSource)
		adapters.RegisterSink(SinkType, sinkSpec, newSink)
	})
}

var sourceSpec = &adapters.Spec{
	Summary: "test generator: records {n: 0..count-1}, resuming after the last acked batch",
	Fields: []adapters.Field{
		{Name: "count", Type: adapters.TypeInt, Default: 10, Description: "records to emit; then the source idles (or ends under --once)"},
		{Name: "batch", Type: adapters.TypeInt, Default: 100},
		{Name: "raw_bytes", Type: adapters.TypeInt, Default: 0, Description: "size of a raw payload added to each message"},
		{Name: "lag", Type: adapters.TypeBool, Default: false, Description: "report lag (records left) for metrics"},
		{Name: "interval", Type: adapters.TypeDuration, Default: "0s", Description: "pause between batches"},
		{Name: "bad_every", Type: adapters.TypeInt, Default: 0, Description: "every Nth record is undecodable (goes to the pipeline's dlq)"},
		{Name: "password", Type: adapters.TypeString, Default: "", Secret: true, Description: "a secret, for redaction tests"},
	},
}

var sinkSpec = &adapters.Spec{
	Summary: "test sink: records what it writes",
	Fields: []adapters.Field{
		{Name: "fail", Type: adapters.TypeString, Default: "", Enum: []string{"", "permanent", "transient", "unavailable"}},
		{Name: "fail_mod", Type: adapters.TypeInt, Default: 0, Description: "records with n % fail_mod == 0 fail permanently"},
		{Name: "delay", Type: adapters.TypeDuration, Default: "0s", Description: "time each Write takes"},
		{Name: "block", Type: adapters.TypeBool, Default: false, Description: "Write blocks until Unblock"},
		{Name: "dsn", Type: adapters.TypeString, Default: "", Secret: true},
	},
}

var (
	mu      sync.Mutex
	starts  = map[string]int{}
	closes  = map[string]int{}
	sinks   = map[string]*Collector{}
	blockCh = make(chan struct{})
	healed  atomic.Bool
)

// Heal makes every kit_sink stop failing, as if its target had been fixed.
func Heal() { healed.Store(true) }

// Starts returns how many times the source or sink "pipeline/name" was built,
// that is how many times its pipeline was started.
func Starts(key string) int {
	mu.Lock()
	defer mu.Unlock()
	return starts[key]
}

// Closes returns how many times a kit_gen source "pipeline/name" was
// closed: it is closed when its pipeline starts to drain.
func Closes(key string) int {
	mu.Lock()
	defer mu.Unlock()
	return closes[key]
}

// Sink returns the collector of the sink "pipeline/name"; it lives across
// pipeline restarts. It is created on first use.
func Sink(key string) *Collector {
	mu.Lock()
	defer mu.Unlock()
	c := sinks[key]
	if c == nil {
		c = &Collector{}
		sinks[key] = c
	}
	return c
}

// Unblock releases every Write blocked by `block: true`, now and later.
func Unblock() {
	mu.Lock()
	defer mu.Unlock()
	select {
	case <-blockCh:
	default:
		close(blockCh)
	}
}

// Reset forgets every collector and start count, and blocks again.
func Reset() {
	mu.Lock()
	defer mu.Unlock()
	starts = map[string]int{}
	closes = map[string]int{}
	sinks = map[string]*Collector{}
	blockCh = make(chan struct{})
	healed.Store(false)
}

type source struct {
	count, batch, rawBytes, badEvery int
	lag                              bool
	interval                         time.Duration
	once                             bool
	state                            adapters.State
	id                               string
	pos                              int          // next record; Read's goroutine only
	acked                            atomic.Int64 // position committed
	done                             chan struct{}
	closeOnce                        sync.Once
}

func newSource(conf *adapters.Config, res adapters.Resources) (adapters.Source, error) {
	key := res.Pipeline + "/" + res.Name
	mu.Lock()
	starts[key]++
	mu.Unlock()
	return &source{count: conf.Int("count"), batch: max(1, conf.Int("batch")), rawBytes: conf.Int("raw_bytes"),
		badEvery: conf.Int("bad_every"), lag: conf.Bool("lag"), interval: conf.Duration("interval"),
		once: res.Once, state: res.State, id: key, done: make(chan struct{})}, nil
}

func (s *source) Connect(ctx context.Context) error {
	if s.state == nil {
		return nil
	}
	b, ok, err := s.state.Get(ctx, "pos")
	if err != nil {
		return fmt.Errorf("%s: read checkpoint: %w", s.id, err)
	}
	if ok {
		n, err := strconv.Atoi(string(b))
		if err != nil {
			return fmt.Errorf("%s: bad checkpoint %q", s.id, b)
		}
		s.pos = n
		s.acked.Store(int64(n))
	}
	return nil
}

func (s *source) Read(ctx context.Context) (adapters.Batch, error) {
	if s.pos >= s.count {
		if s.once {
			return adapters.Batch{}, adapters.ErrEndOfInput
		}
		select {
		case <-ctx.Done():
			return adapters.Batch{}, ctx.Err()
		case <-s.done:
			return adapters.Batch{}, adapters.ErrClosed
		}
	}
	if s.interval > 0 {
		t := time.NewTimer(s.interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return adapters.Batch{}, ctx.Err()
		}
	}
	n := min(s.batch, s.count-s.pos)
	msgs := make([]adapters.Message, n)
	var raw []byte
	if s.rawBytes > 0 {
		raw = make([]byte, s.rawBytes)
	}
	for i := range msgs {
		seq := s.pos + i
		m := adapters.Message{ID: s.id + "/" + strconv.Itoa(seq), Record: adapters.Record{"n": int64(seq)}, Raw: raw}
		if s.badEvery > 0 && seq%s.badEvery == 0 {
			m.Record = nil
			m.Err = &adapters.RecordError{Record: int64(seq + 1), Err: errors.New("undecodable test record")}
		}
		msgs[i] = m
	}
	s.pos += n
	end := s.pos
	return adapters.Batch{Messages: msgs, Ack: func(ctx context.Context, err error) error {
		if err != nil || s.state == nil {
			return nil
		}
		if err := s.state.Put(ctx, "pos", []byte(strconv.Itoa(end))); err != nil {
			return err
		}
		s.acked.Store(int64(end))
		return nil
	}}, nil
}

func (s *source) Close(context.Context) error {
	s.closeOnce.Do(func() {
		close(s.done)
		mu.Lock()
		closes[s.id]++
		mu.Unlock()
	})
	return nil
}

// Lag reports the records not yet acked, when the config asks for it.
func (s *source) Lag() adapters.Lag {
	if !s.lag {
		return adapters.Lag{Messages: -1, Bytes: -1, Age: -1}
	}
	left := int64(s.count) - s.acked.Load()
	return adapters.Lag{Messages: left, Bytes: left * int64(s.rawBytes), Age: -1}
}

type sink struct {
	c       *Collector
	fail    string
	failMod int64
	delay   time.Duration
	block   bool
}

func newSink(conf *adapters.Config, res adapters.Resources) (adapters.Sink, error) {
	key := res.Pipeline + "/" + res.Name
	mu.Lock()
	starts[key]++
	mu.Unlock()
	return &sink{c: Sink(key), fail: conf.String("fail"), failMod: conf.Int64("fail_mod"), delay: conf.Duration("delay"), block: conf.Bool("block")}, nil
}

func (s *sink) Connect(context.Context) error { return nil }

func (s *sink) Write(ctx context.Context, msgs []adapters.Message) error {
	if s.block {
		mu.Lock()
		ch := blockCh
		mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return adapters.UnavailableError(ctx.Err())
		}
	}
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if healed.Load() {
		for _, m := range msgs {
			s.c.add(m)
		}
		return nil
	}
	switch s.fail {
	case "permanent":
		return adapters.PermanentError(errors.New("rejected by test sink"))
	case "transient":
		return errors.New("test sink timed out")
	case "unavailable":
		return adapters.UnavailableError(errors.New("test sink is down"))
	}
	if s.failMod > 0 {
		be := adapters.NewBatchError(len(msgs))
		for i, m := range msgs {
			if n, _ := m.Record["n"].(int64); n%s.failMod == 0 {
				be.Fail(i, adapters.PermanentError(fmt.Errorf("record %d rejected", n)))
				continue
			}
			s.c.add(m)
		}
		return be.Err()
	}
	for _, m := range msgs {
		s.c.add(m)
	}
	return nil
}

func (s *sink) Close(context.Context) error { return nil }

// Collector records which records ({n: N}) a sink delivered.
type Collector struct {
	mu       sync.Mutex
	seen     []uint64 // bitset of n
	distinct int
	total    int
}

func (c *Collector) add(m adapters.Message) {
	n, ok := m.Record["n"].(int64)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	if !ok || n < 0 {
		return
	}
	w := int(n / 64)
	for len(c.seen) <= w {
		c.seen = append(c.seen, 0)
	}
	if bit := uint64(1) << (n % 64); c.seen[w]&bit == 0 {
		c.seen[w] |= bit
		c.distinct++
	}
}

// Distinct returns how many different records were delivered.
func (c *Collector) Distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.distinct
}

// Total returns how many deliveries there were, duplicates included.
func (c *Collector) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Missing returns up to max record numbers below count that were not
// delivered.
func (c *Collector) Missing(count, max int) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for n := 0; n < count && len(out) < max; n++ {
		w := n / 64
		if w >= len(c.seen) || c.seen[w]&(1<<(n%64)) == 0 {
			out = append(out, n)
		}
	}
	return out
}
