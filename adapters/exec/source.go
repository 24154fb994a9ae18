package exec

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// source is the exec source. Read and Connect run on the engine's source
// goroutine; Ack runs on its acker goroutine; Close may run at any time.
type source struct {
	r          *runner
	name       string
	batchSize  int
	acks       bool
	once       bool
	ended      bool // the program sent end (Read's goroutine only)
	ackWarned  atomic.Bool
	ackStalled atomic.Bool // the last ack could not be queued in time
}

var _ adapters.Source = (*source)(nil)

// ackQueueWait bounds how long an Ack waits for room in the queue of lines
// to a program that does not read its stdin; after one such wait, acks are
// dropped without waiting until the queue has room again.
var ackQueueWait = 5 * time.Second

func newSource(c *adapters.Config, res adapters.Resources) (adapters.Source, error) {
	o, err := decodeOptions("source", c, res)
	if err != nil {
		return nil, err
	}
	return &source{r: newRunner(o, res), name: res.Name, batchSize: c.Int("batch_size"), acks: c.Bool("acks"), once: res.Once}, nil
}

// inboxFrame is a frame the stdout reader passes to Read.
func (s *source) handle(p *proc, f *frame) error {
	switch f.Type {
	case typeMessage, typeEnd:
	default:
		return nil // unknown to a source: ignored, for forward compatibility
	}
	select {
	case p.inbox <- f:
	case <-p.quit:
	}
	return nil
}

// Connect starts the program (after the restart delay, when it ran before)
// and completes the handshake.
func (s *source) Connect(ctx context.Context) error {
	_, err := s.r.start(ctx, s.handle)
	return err
}

// Read returns the messages the program has written: it waits for the first,
// then takes what is already there, up to batch_size.
func (s *source) Read(ctx context.Context) (adapters.Batch, error) {
	if s.ended {
		return adapters.Batch{}, adapters.ErrEndOfInput
	}
	p := s.r.current()
	if p == nil {
		if s.r.isClosed() {
			return adapters.Batch{}, adapters.ErrClosed
		}
		return adapters.Batch{}, fmt.Errorf("%s: %w", s.r.what, adapters.ErrNotConnected)
	}
	var msgs []adapters.Message
	var ids []string
	take := func(f *frame) {
		if f.Type == typeEnd {
			s.ended = true
			return
		}
		if f.ID == "" {
			p.log.Warn("exec: ignored a message without an id")
			return
		}
		msgs = append(msgs, s.message(f))
		ids = append(ids, f.ID)
	}
	for len(msgs) == 0 {
		if s.ended {
			return adapters.Batch{}, adapters.ErrEndOfInput
		}
		select {
		case f := <-p.inbox:
			take(f)
		case <-p.done:
			// Every frame the program wrote is in the inbox by now.
			for drained := false; !drained && len(msgs) < s.batchSize; {
				select {
				case f := <-p.inbox:
					take(f)
				default:
					drained = true
				}
			}
			if len(msgs) > 0 {
				return s.batch(msgs, ids), nil
			}
			if s.ended {
				return adapters.Batch{}, adapters.ErrEndOfInput
			}
			s.r.forget(p)
			if s.once && p.cleanExit() {
				s.ended = true
				return adapters.Batch{}, adapters.ErrEndOfInput
			}
			return adapters.Batch{}, fmt.Errorf("%s: the program %s: %w", s.r.what, p.exitDesc(), adapters.ErrNotConnected)
		case <-ctx.Done():
			return adapters.Batch{}, ctx.Err()
		case <-s.r.closedCh:
			return adapters.Batch{}, adapters.ErrClosed
		}
	}
	for len(msgs) < s.batchSize {
		select {
		case f := <-p.inbox:
			take(f)
			continue
		default:
		}
		break
	}
	return s.batch(msgs, ids), nil
}

// message converts a message frame.
func (s *source) message(f *frame) adapters.Message {
	meta := make(map[string]string, len(f.Meta)+1)
	for k, v := range f.Meta {
		meta[k] = v
	}
	meta[MetaExecID] = f.ID
	m := adapters.Message{ID: adapters.NewID("exec", s.name, f.ID), Meta: meta, Time: time.Now()}
	if f.Record != nil {
		rec, err := toRecord(f.Record)
		if err != nil {
			m.Err = fmt.Errorf("message %q: %w", f.ID, err)
		}
		m.Record = rec
	}
	switch {
	case f.Raw != nil:
		m.Raw = f.Raw
	case f.Text != nil:
		m.Raw = []byte(*f.Text)
	}
	switch {
	case f.Error != "":
		m.Err = fmt.Errorf("message %q: the program reported: %s", f.ID, f.Error)
	case m.Err == nil && m.Record == nil && m.Raw == nil:
		m.Err = fmt.Errorf("message %q has no record, raw nor text", f.ID)
	}
	return m
}

// batch wraps messages with the Ack that tells the program.
func (s *source) batch(msgs []adapters.Message, ids []string) adapters.Batch {
	if !s.acks {
		return adapters.Batch{Messages: msgs}
	}
	return adapters.Batch{Messages: msgs, Ack: func(ctx context.Context, err error) error {
		p := s.r.current()
		if p == nil || p.exited() {
			return nil // the program is gone; it emits unacked messages again
		}
		a := answerOut{Type: typeAck}
		if err != nil {
			a.Type, a.Error = typeNack, err.Error()
		}
		lines := make([][]byte, 0, len(ids))
		for _, id := range ids {
			a.ID = id
			l, _ := line(a) // strings only: cannot fail
			lines = append(lines, l)
		}
		if s.ackStalled.Load() {
			// The program stopped reading: do not hold the engine up again,
			// unless the queue has room by now.
			if p.trySend(lines) {
				s.ackStalled.Store(false)
			}
			return nil
		}
		sctx, cancel := context.WithTimeout(ctx, ackQueueWait)
		defer cancel()
		if serr := p.send(sctx, lines); serr != nil && !errors.Is(serr, errInputClosed) {
			s.ackStalled.Store(true)
			if !s.ackWarned.Swap(true) {
				p.log.Warn("exec: the program does not read its stdin: acks are dropped and it will emit those messages again (set acks: false for a program that never reads)", "error", serr)
			}
		}
		return nil
	}}
}

// Close stops the program: its stdin closes, then it is signalled.
func (s *source) Close(ctx context.Context) error {
	s.r.close(ctx)
	return nil
}
