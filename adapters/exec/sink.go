package exec

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// sink is the exec sink. Writes are handed to the program one batch at a
// time; mu serialises them.
type sink struct {
	r            *runner
	writeTimeout time.Duration
	mu           sync.Mutex
}

var _ adapters.Sink = (*sink)(nil)

func newSink(c *adapters.Config, res adapters.Resources) (adapters.Sink, error) {
	o, err := decodeOptions("sink", c, res)
	if err != nil {
		return nil, err
	}
	return &sink{r: newRunner(o, res), writeTimeout: c.Duration("write_timeout")}, nil
}

func (s *sink) handle(p *proc, f *frame) error {
	switch f.Type {
	case typeAck, typeNack:
	default:
		return nil // unknown to a sink: ignored, for forward compatibility
	}
	select {
	case p.inbox <- f:
	case <-p.quit:
	}
	return nil
}

// Connect starts the program (after the restart delay, when it ran before)
// and completes the handshake.
func (s *sink) Connect(ctx context.Context) error {
	_, err := s.r.start(ctx, s.handle)
	return err
}

// Write sends msgs and a flush frame to the program and waits for an answer
// to each. Unanswered messages fail transiently.
func (s *sink) Write(ctx context.Context, msgs []adapters.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", s.r.what, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.r.current()
	if p == nil || p.exited() {
		if s.r.isClosed() {
			return adapters.ErrClosed
		}
		if p != nil {
			s.r.forget(p)
			return fmt.Errorf("%s: the program %s: %w", s.r.what, p.exitDesc(), adapters.ErrNotConnected)
		}
		return fmt.Errorf("%s: the program is not running: %w", s.r.what, adapters.ErrNotConnected)
	}
	be := adapters.NewBatchError(0)
	pending := make(map[string][]int, len(msgs))
	lines := make([][]byte, 0, len(msgs)+1)
	for i := range msgs {
		m := &msgs[i]
		id := m.ID
		if id == "" {
			id = "#" + strconv.Itoa(i)
		}
		out := messageOut{Type: typeMessage, ID: id, Attempt: m.Attempt, Meta: m.Meta, Raw: m.Raw}
		if m.Record != nil {
			out.Record = m.Record
		}
		if !m.Time.IsZero() {
			out.Time = m.Time.UTC().Format(time.RFC3339Nano)
		}
		l, err := line(out)
		if err != nil {
			be.Fail(i, adapters.PermanentError(fmt.Errorf("%s: message %s cannot be sent as JSON: %w", s.r.what, id, err)))
			continue
		}
		if _, dup := pending[id]; !dup {
			lines = append(lines, l)
		}
		pending[id] = append(pending[id], i)
	}
	if len(pending) == 0 {
		return be.Err()
	}
	fl, _ := line(map[string]string{"type": typeFlush})
	lines = append(lines, fl)

	failRest := func(err error) error {
		for _, idx := range pending {
			for _, i := range idx {
				be.Fail(i, err)
			}
		}
		return be.Err()
	}
	t := time.NewTimer(s.writeTimeout)
	defer t.Stop()
	if err := p.send(ctx, lines); err != nil {
		if errors.Is(err, errInputClosed) {
			<-p.done
			s.r.forget(p)
			return fmt.Errorf("%s: the program %s: %w", s.r.what, p.exitDesc(), adapters.ErrNotConnected)
		}
		return failRest(fmt.Errorf("%s: %w", s.r.what, err))
	}
	for len(pending) > 0 {
		select {
		case f := <-p.inbox:
			idx, ok := pending[f.ID]
			if !ok {
				p.log.Debug("exec: ignored an answer for a message not in this batch", "id", f.ID)
				continue
			}
			delete(pending, f.ID)
			if f.Type == typeAck {
				continue
			}
			err := s.nackError(f)
			for _, i := range idx {
				be.Fail(i, err)
			}
		case <-p.done:
			// Answers written before the exit are in the inbox.
			for drained := false; !drained; {
				select {
				case f := <-p.inbox:
					if idx, ok := pending[f.ID]; ok {
						delete(pending, f.ID)
						if f.Type == typeNack {
							err := s.nackError(f)
							for _, i := range idx {
								be.Fail(i, err)
							}
						}
					}
				default:
					drained = true
				}
			}
			s.r.forget(p)
			return failRest(fmt.Errorf("%s: the program %s before answering", s.r.what, p.exitDesc()))
		case <-t.C:
			p.fail(fmt.Sprintf("%d message(s) unanswered after write_timeout (%s)", len(pending), s.writeTimeout))
			<-p.done
			s.r.forget(p)
			return failRest(fmt.Errorf("%s: no answer within write_timeout (%s)", s.r.what, s.writeTimeout))
		case <-ctx.Done():
			p.fail("the write was cancelled: " + ctx.Err().Error())
			<-p.done
			s.r.forget(p)
			return failRest(fmt.Errorf("%s: %w", s.r.what, ctx.Err()))
		case <-s.r.closedCh:
			return failRest(fmt.Errorf("%s: %w", s.r.what, adapters.ErrClosed))
		}
	}
	return be.Err()
}

// nackError classifies a nack frame.
func (s *sink) nackError(f *frame) error {
	msg := f.Error
	if msg == "" {
		msg = "rejected without a reason"
	}
	err := fmt.Errorf("%s: message %s: %s", s.r.what, f.ID, msg)
	switch f.Kind {
	case "permanent":
		return adapters.PermanentError(err)
	case "unavailable":
		return adapters.UnavailableError(err)
	case "", "transient":
		return err
	default:
		return fmt.Errorf("%w (unknown kind %q, taken as transient)", err, f.Kind)
	}
}

// Close stops the program: its stdin closes, then it is signalled.
func (s *sink) Close(ctx context.Context) error {
	s.r.close(ctx)
	return nil
}
