package exec

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// runner supervises the program of one source or sink: it starts it,
// completes the handshake, remembers how it ended and decides how long to
// wait before starting it again. It owns the current proc.
type runner struct {
	opts *options
	res  adapters.Resources
	log  *slog.Logger
	what string // `exec source "name"`, for errors

	mu       sync.Mutex
	cur      *proc
	closed   bool
	closedCh chan struct{}
	failures int       // consecutive failed runs
	lastEnd  time.Time // when the last run ended (zero: none yet)
	watchers sync.WaitGroup
}

func newRunner(o *options, res adapters.Resources) *runner {
	return &runner{
		opts:     o,
		res:      res,
		log:      o.pc.log,
		what:     fmt.Sprintf("exec %s %q", o.role, res.Name),
		closedCh: make(chan struct{}),
	}
}

// current returns the running (or exited, not yet forgotten) program, or nil.
func (r *runner) current() *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// forget drops p as the current program, so the next start runs a new one.
func (r *runner) forget(p *proc) {
	r.mu.Lock()
	if r.cur == p {
		r.cur = nil
	}
	r.mu.Unlock()
}

// restartDelay is the wait before the next start, under r.mu.
func (r *runner) restartDelay() time.Duration {
	d := r.opts.backoffMin
	for i := 1; i < r.failures && d < r.opts.backoffMax; i++ {
		d *= 2
	}
	return min(d, r.opts.backoffMax)
}

// ended records how a run ended, for the restart delay.
func (r *runner) ended(ran time.Duration, clean bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastEnd = time.Now()
	switch {
	case clean:
		r.failures = 0
	case ran > r.opts.backoffMax:
		r.failures = 1
	default:
		r.failures++
	}
}

// start runs the program and completes the handshake, after the restart
// delay. It returns the current program when one is already running.
// Frames after the hello go to handle, from the program's stdout reader.
func (r *runner) start(ctx context.Context, handle func(p *proc, f *frame) error) (*proc, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", r.what, adapters.ErrClosed)
	}
	if r.cur != nil && !r.cur.exited() {
		p := r.cur
		r.mu.Unlock()
		return p, nil
	}
	r.cur = nil
	var wait time.Duration
	if !r.lastEnd.IsZero() {
		wait = time.Until(r.lastEnd.Add(r.restartDelay()))
	}
	r.mu.Unlock()
	if wait > 0 {
		r.log.Info("exec: starting the program again after a delay", "delay", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: waiting to restart the program: %w", r.what, ctx.Err())
		case <-r.closedCh:
			t.Stop()
			return nil, fmt.Errorf("%s: %w", r.what, adapters.ErrClosed)
		}
	}

	hello := make(chan *frame, 1)
	ready := false // touched only by the program's stdout reader
	p, err := startProc(r.opts.pc, func(p *proc, f *frame) error {
		switch {
		case f.Type == typeLog:
			r.logFrame(p, f)
			return nil
		case ready:
			return handle(p, f)
		case f.Type != typeHello:
			return fmt.Errorf("got a %q frame before the hello", f.Type)
		}
		ready = true
		hello <- f
		return nil
	})
	if err != nil {
		r.ended(0, false)
		return nil, fmt.Errorf("%s: start %s: %w", r.what, strings.Join(r.opts.pc.command, " "), err)
	}
	fail := func(err error) (*proc, error) {
		p.kill()
		<-p.done
		r.ended(time.Since(p.started), false)
		return nil, err
	}
	hl, err := line(helloOut{Type: typeHello, Protocol: ProtocolVersion, Role: r.opts.role,
		Pipeline: r.res.Pipeline, Name: r.res.Name, Once: r.res.Once, Config: r.opts.config})
	if err != nil {
		return fail(fmt.Errorf("%s: config cannot be sent as JSON: %w", r.what, err))
	}
	if err := p.send(ctx, [][]byte{hl}); err != nil {
		return fail(fmt.Errorf("%s: sending hello: %w", r.what, err))
	}
	t := time.NewTimer(r.opts.helloTimeout)
	defer t.Stop()
	select {
	case f := <-hello:
		if f.Protocol != ProtocolVersion {
			return fail(adapters.PermanentError(fmt.Errorf("%s: the program speaks exec protocol %d; this agent speaks %d", r.what, f.Protocol, ProtocolVersion)))
		}
	case <-p.done:
		r.ended(time.Since(p.started), false)
		return nil, fmt.Errorf("%s: the program %s before answering the hello", r.what, p.exitDesc())
	case <-t.C:
		return fail(fmt.Errorf("%s: the program did not answer the hello within %s (hello_timeout)", r.what, r.opts.helloTimeout))
	case <-ctx.Done():
		return fail(fmt.Errorf("%s: waiting for the hello: %w", r.what, ctx.Err()))
	case <-r.closedCh:
		return fail(fmt.Errorf("%s: %w", r.what, adapters.ErrClosed))
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fail(fmt.Errorf("%s: %w", r.what, adapters.ErrClosed))
	}
	r.cur = p
	r.watchers.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.watchers.Done()
		<-p.done
		clean := p.cleanExit()
		r.ended(time.Since(p.started), clean)
		if clean {
			r.log.Info("exec: program exited", "status", 0)
		} else if !r.isClosed() {
			r.log.Warn("exec: program ended: " + p.exitDesc())
		}
	}()
	r.log.Info("exec: program started", "pid", p.cmd.Process.Pid, "command", r.opts.pc.command)
	return p, nil
}

func (r *runner) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// logFrame logs a {"type":"log"} frame at its level.
func (r *runner) logFrame(p *proc, f *frame) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.Level)); err != nil {
		level = slog.LevelInfo
	}
	args := make([]any, 0, 2*len(f.Attrs))
	for k, v := range f.Attrs {
		args = append(args, k, v)
	}
	p.log.Log(context.Background(), level, f.Msg, args...)
}

// close stops the program and refuses further starts; it returns once the
// program and the goroutines watching it are gone. It is idempotent.
func (r *runner) close(ctx context.Context) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.closedCh)
	p := r.cur
	r.mu.Unlock()
	if p != nil {
		p.abandon()
		p.stop(ctx, r.opts.stopTimeout)
	}
	r.watchers.Wait()
}
