// Package generate is the built-in generate source: synthetic records for
// demos, tests and benchmarks.
//
// Each message has a sequence number n (0, 1, 2, ...). Field expressions of
// `record` are evaluated against a record holding only {seq: n} (an int64)
// and the metadata {seq: "n"}, so `record.seq * 2` and `meta.seq` both work;
// `template` renders raw text the same way. Message IDs are
// adapters.NewID(pipeline, source, n). The next sequence number is
// checkpointed in State with every acknowledged batch, so a restarted
// generator continues where it stopped and a finite one (count > 0) never
// emits a record twice once it was enqueued.
package generate

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/filekit"
	"github.com/sluicehq/sluice/transform"
)

func init() { adapters.RegisterSource("generate", spec, newSource) }

var spec = &adapters.Spec{
	Summary: "Generate synthetic records: for demos, tests and benchmarks.",
	Description: "Emits `count` records (0: no end) at `rate` records per second (0: as fast as the pipeline takes them). " +
		"Each record is built from `record`, a mapping of field name to expression, evaluated against a record " +
		"holding only `seq` (the 0-based sequence number, an integer) and the metadata `meta.seq` (the same, as text); " +
		"without `record` and `template` each record is `{seq: N}`. With `template` each message instead carries " +
		"the rendered text as its raw payload. Message IDs derive from the pipeline, source and sequence number, " +
		"and the sequence is checkpointed with every enqueued batch: a restarted generator goes on where it " +
		"stopped. Under `run --once` an endless generator emits one batch.",
	Fields: []adapters.Field{
		{Name: "count", Type: adapters.TypeInt, Default: 0, Check: filekit.CheckNonNegative, Description: "Records to emit in total; 0 means no end.", Example: 1000},
		{Name: "rate", Type: adapters.TypeFloat, Default: 0, Check: filekit.CheckNonNegative, Description: "Records per second; 0 means as fast as possible.", Example: 100},
		{Name: "batch_size", Type: adapters.TypeInt, Default: 500, Check: filekit.CheckPositive, Description: "Records per batch at most."},
		{Name: "record", Type: adapters.TypeStringMap, Optional: true, Check: checkRecord,
			Description: "Field name to expression, e.g. `id: record.seq`, `region: '[\"eu\",\"us\"][record.seq % 2]'`, `at: now()`.",
			Example:     map[string]any{"id": "record.seq", "amount": "record.seq % 1000 * 1.5"}},
		{Name: "template", Type: adapters.TypeString, Optional: true, Check: checkTemplate,
			Description: "Raw text of each message, a template: `order {{ meta.seq }}`.", Example: "order {{ meta.seq }}"},
	},
	Example: "type: generate\ncount: 1000\nrate: 100\nrecord:\n  id: record.seq\n  region: '[\"eu\", \"us\"][record.seq % 2]'\n",
	Check: func(conf *adapters.Config) error {
		if conf.Has("record") && conf.Has("template") {
			return conf.Errorf("template", "set record or template, not both")
		}
		return nil
	},
}

func checkRecord(v any) error {
	_, err := compileFields(v.(map[string]string))
	return err
}

func checkTemplate(v any) error {
	_, err := transform.CompileTemplate(v.(string))
	return err
}

type field struct {
	name string
	prog *transform.Program
}

func compileFields(m map[string]string) ([]field, error) {
	out := make([]field, 0, len(m))
	for name, src := range m {
		p, err := transform.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", name, err)
		}
		out = append(out, field{name, p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// stateKey holds the next sequence number, 8 bytes big endian.
const stateKey = "next"

type source struct {
	res       adapters.Resources
	count     int64
	rate      float64
	batchSize int
	fields    []field
	tmpl      *transform.Template
	ids       *filekit.IDMaker

	closeOnce sync.Once
	closed    chan struct{}

	readMu    sync.Mutex // held by Read and Connect
	connected bool
	next      int64 // next sequence number to emit
	started   time.Time
	base      int64 // sequence number at started, for the rate
	emitted   bool
	runner    transform.Runner

	mu    sync.Mutex // guards acked and rewind, shared with Ack
	acked int64
	// rewind: a batch was not enqueued; Read goes back to acked.
	rewind bool
	epoch  int
}

var _ adapters.Source = (*source)(nil)

func newSource(conf *adapters.Config, res adapters.Resources) (adapters.Source, error) {
	s := &source{
		res: res, count: conf.Int64("count"), rate: conf.Float("rate"), batchSize: conf.Int("batch_size"),
		closed: make(chan struct{}), ids: filekit.NewIDMaker(res.Pipeline, res.Name),
	}
	var err error
	if conf.Has("record") {
		if s.fields, err = compileFields(conf.StringMap("record")); err != nil {
			return nil, conf.Errorf("record", "%v", err)
		}
	}
	if conf.Has("template") {
		if s.tmpl, err = transform.CompileTemplate(conf.String("template")); err != nil {
			return nil, conf.Errorf("template", "%v", err)
		}
	}
	return s, nil
}

// Connect loads the checkpointed sequence number.
func (s *source) Connect(ctx context.Context) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.isClosed() {
		return adapters.ErrClosed
	}
	if s.connected {
		return nil
	}
	if s.res.State != nil {
		b, ok, err := s.res.State.Get(ctx, stateKey)
		if err != nil {
			return fmt.Errorf("load state: %w", err)
		}
		if ok && len(b) == 8 {
			s.next = int64(binary.BigEndian.Uint64(b))
		}
	}
	s.mu.Lock()
	s.acked = s.next
	s.mu.Unlock()
	s.connected = true
	return nil
}

func (s *source) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Close unblocks a waiting Read; it is idempotent.
func (s *source) Close(context.Context) error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// Read returns the next batch, pacing by rate.
func (s *source) Read(ctx context.Context) (adapters.Batch, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.isClosed() {
		return adapters.Batch{}, adapters.ErrClosed
	}
	if !s.connected {
		return adapters.Batch{}, adapters.ErrNotConnected
	}
	s.mu.Lock()
	if s.rewind {
		s.rewind = false
		s.next = s.acked
		s.started = time.Time{}
	}
	epoch := s.epoch
	s.mu.Unlock()
	n := int64(s.batchSize)
	if s.count > 0 {
		n = min(n, s.count-s.next)
		if n <= 0 {
			return adapters.Batch{}, adapters.ErrEndOfInput
		}
	} else if s.res.Once && s.emitted {
		return adapters.Batch{}, adapters.ErrEndOfInput
	}
	if s.rate > 0 {
		var err error
		if n, err = s.pace(ctx, n); err != nil {
			return adapters.Batch{}, err
		}
	}
	msgs := make([]adapters.Message, n)
	now := time.Now()
	var arena filekit.Arena
	// Expressions only read their input, so one input record serves the
	// batch; without expressions the input is the record and must be new.
	in := adapters.Record{}
	for i := range msgs {
		seq := s.next + int64(i)
		m := &msgs[i]
		m.ID = s.ids.ID(seq)
		m.Time = now
		m.Meta = map[string]string{"seq": arena.Int(seq), adapters.MetaSource: s.res.Name}
		if s.fields == nil && s.tmpl == nil {
			in = adapters.Record{}
		}
		in["seq"] = seq
		if err := s.build(m, in); err != nil {
			m.Err = err
		}
	}
	s.next += n
	s.emitted = true
	end := s.next
	return adapters.Batch{Messages: msgs, Ack: func(ctx context.Context, err error) error { return s.ack(ctx, epoch, end, err) }}, nil
}

func (s *source) build(m *adapters.Message, in adapters.Record) error {
	switch {
	case s.tmpl != nil:
		text, err := s.runner.Render(s.tmpl, in, m.Meta)
		if err != nil {
			return err
		}
		m.Raw = []byte(text)
	case s.fields != nil:
		rec := make(adapters.Record, len(s.fields))
		for _, f := range s.fields {
			v, err := s.runner.Eval(f.prog, in, m.Meta)
			if err != nil {
				return fmt.Errorf("field %q: %w", f.name, err)
			}
			if r, ok := v.(adapters.Record); ok {
				v = maps.Clone(r) // may be the shared input record itself
			}
			rec[f.name] = v
		}
		m.Record = rec
	default:
		m.Record = in
	}
	return nil
}

// pace waits until at least one record is due and returns how many are.
func (s *source) pace(ctx context.Context, n int64) (int64, error) {
	now := time.Now()
	if s.started.IsZero() {
		s.started, s.base = now, s.next
	}
	for {
		due := int64(now.Sub(s.started).Seconds()*s.rate) + 1 - (s.next - s.base)
		if due > 0 {
			return min(n, due), nil
		}
		wait := s.started.Add(time.Duration(float64(s.next-s.base) / s.rate * float64(time.Second))).Sub(now)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-s.closed:
			t.Stop()
			return 0, adapters.ErrClosed
		case now = <-t.C:
		}
	}
}

// ack checkpoints the sequence number after a batch, or rewinds to the
// last checkpoint when the batch was not enqueued.
func (s *source) ack(ctx context.Context, epoch int, end int64, err error) error {
	s.mu.Lock()
	if epoch != s.epoch {
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		s.rewind = true
		s.epoch++
		s.mu.Unlock()
		return nil
	}
	s.acked = end
	s.mu.Unlock()
	if s.res.State == nil {
		return nil
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(end))
	if err := s.res.State.Put(ctx, stateKey, b[:]); err != nil {
		return fmt.Errorf("save sequence: %w", err)
	}
	return nil
}
