// Package stdout is the built-in stdout sink: it writes records to the
// process's standard output (or standard error) with a codec, flushing after
// every batch. It is meant for demos, debugging and `sluice run` in a
// terminal or under a supervisor that collects output.
package stdout

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/sluicehq/sluice/adapters"
)

func init() { adapters.RegisterSink("stdout", spec, newSink) }

var spec = &adapters.Spec{
	Summary: "Write records to standard output (or standard error).",
	Description: "Each batch is encoded with the codec and flushed before Write returns. With `codec: none` each " +
		"message's raw payload is written, followed by a newline when it does not end with one. The stream is " +
		"one for the process: every stdout sink shares it, and their batches are never interleaved.",
	Fields: []adapters.Field{
		{Name: "codec", Type: adapters.TypeCodec, Default: "jsonl", Description: "How records are encoded."},
		{Name: "stderr", Type: adapters.TypeBool, Default: false, Description: "Write to standard error instead."},
	},
	Example: "type: stdout\ncodec: jsonl\n",
}

// streams serialises writers of one process stream across sinks.
var streams sync.Map // io.Writer -> *sync.Mutex

type sink struct {
	codec adapters.Codec
	out   io.Writer
	lock  *sync.Mutex

	mu        sync.Mutex   // guards the fields below
	w         bytes.Buffer // encoded, written to out as a whole per batch
	enc       adapters.Encoder
	connected bool
	closed    bool
}

var _ adapters.Sink = (*sink)(nil)

func newSink(conf *adapters.Config, _ adapters.Resources) (adapters.Sink, error) {
	var out io.Writer = os.Stdout
	if conf.Bool("stderr") {
		out = os.Stderr
	}
	return newWriterSink(conf.Codec("codec"), out), nil
}

func newWriterSink(c adapters.Codec, out io.Writer) *sink {
	l, _ := streams.LoadOrStore(out, &sync.Mutex{})
	return &sink{codec: c, out: out, lock: l.(*sync.Mutex)}
}

// Connect prepares the encoder; there is nothing to dial.
func (s *sink) Connect(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return adapters.ErrClosed
	}
	if !s.connected {
		s.connected = true
		if s.codec != nil {
			s.enc = s.codec.NewEncoder(&s.w, adapters.EncoderOptions{})
		}
	}
	return nil
}

// Write encodes msgs and flushes them. A record the codec rejects fails
// alone, as permanent; a failing stream fails the batch (transient).
func (s *sink) Write(ctx context.Context, msgs []adapters.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return adapters.ErrClosed
	}
	if !s.connected {
		return adapters.ErrNotConnected
	}
	be := adapters.NewBatchError(0)
	for i := range msgs {
		m := &msgs[i]
		if s.enc == nil {
			s.w.Write(m.Raw)
			if len(m.Raw) == 0 || m.Raw[len(m.Raw)-1] != '\n' {
				s.w.WriteByte('\n')
			}
			continue
		}
		if m.Record == nil {
			be.Fail(i, adapters.PermanentError(fmt.Errorf("message %s has no record to encode (use codec: none for raw payloads)", m.ID)))
			continue
		}
		if err := s.enc.Encode(m.Record); err != nil {
			be.Fail(i, adapters.PermanentError(fmt.Errorf("encode message %s: %w", m.ID, err)))
		}
	}
	if err := s.flush(); err != nil {
		return fmt.Errorf("write to %s: %w", s.name(), err)
	}
	return be.Err()
}

func (s *sink) flush() error {
	if s.enc != nil {
		if err := s.enc.Flush(); err != nil {
			return err
		}
	}
	return s.writeOut()
}

// writeOut writes the buffered output in one piece, so that the batches of
// sinks sharing the stream never interleave.
func (s *sink) writeOut() error {
	s.lock.Lock()
	defer s.lock.Unlock()
	_, err := s.out.Write(s.w.Bytes())
	s.w.Reset()
	return err
}

func (s *sink) name() string {
	if s.out == os.Stderr {
		return "stderr"
	}
	return "stdout"
}

// Close writes the codec's trailer and flushes; it is idempotent and does
// not close the process's stream.
func (s *sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.connected {
		return nil
	}
	if s.enc != nil {
		if err := s.enc.Close(); err != nil {
			return err
		}
	}
	return s.writeOut()
}
