package exec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errInputClosed is returned when a line cannot be sent because the program's
// stdin is closed (it exited, or is being stopped).
var errInputClosed = errors.New("program input closed")

// procConfig is what starting a program needs.
type procConfig struct {
	command     []string
	dir         string
	env         []string
	maxLine     int
	stderrLevel slog.Level
	log         *slog.Logger
}

// proc is one running instance of a program. Its stdout reader hands frames
// to handle; its writer goroutine owns stdin; a waiter goroutine reaps the
// process and closes done once the program exited and its output was read.
type proc struct {
	cmd     *osexec.Cmd
	log     *slog.Logger
	started time.Time

	inbox     chan *frame   // frames for the source or sink, filled by handle
	out       chan [][]byte // lines waiting for the writer
	stopIn    chan struct{} // closed to end stdin once queued lines are written
	inputGone chan struct{} // closed when the writer returned
	quit      chan struct{} // closed when nobody wants the program's frames any more
	done      chan struct{} // closed after exit, once stdout and stderr were read
	stopOnce  sync.Once
	quitOnce  sync.Once

	exitErr error // valid after done
	killed  atomic.Bool

	failMu  sync.Mutex
	failure string // why Sluice stopped the program, if it did

	tailMu sync.Mutex
	tail   []string // last stderr lines, for exit messages
}

// startProc starts the program. handle is called from the stdout reader for
// every line that parsed as a frame, in order; it may block, and must return
// when p.quit is closed. A returned error is a protocol violation: the program
// is killed.
func startProc(pc procConfig, handle func(p *proc, f *frame) error) (*proc, error) {
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		closeAll(stdinR, stdinW)
		return nil, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		closeAll(stdinR, stdinW, stdoutR, stdoutW)
		return nil, err
	}
	cmd := osexec.Command(pc.command[0], pc.command[1:]...)
	cmd.Dir = pc.dir
	cmd.Env = pc.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderrW
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		closeAll(stdinR, stdinW, stdoutR, stdoutW, stderrR, stderrW)
		return nil, err
	}
	closeAll(stdinR, stdoutW, stderrW)
	p := &proc{
		cmd:       cmd,
		log:       pc.log.With("pid", cmd.Process.Pid),
		started:   time.Now(),
		inbox:     make(chan *frame, 1024),
		out:       make(chan [][]byte, 1024),
		stopIn:    make(chan struct{}),
		inputGone: make(chan struct{}),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go p.writeLoop(stdinW)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		p.readStdout(stdoutR, pc.maxLine, handle)
	}()
	go func() {
		defer readers.Done()
		p.readStderr(stderrR, pc.stderrLevel)
	}()
	go func() {
		err := cmd.Wait()
		// Children the program left behind would keep the pipes open.
		killGroup(cmd)
		deadline := time.Now().Add(2 * time.Second)
		_ = stdoutR.SetReadDeadline(deadline)
		_ = stderrR.SetReadDeadline(deadline)
		readers.Wait()
		closeAll(stdoutR, stderrR)
		p.exitErr = err
		close(p.done)
	}()
	return p, nil
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

func (p *proc) writeLoop(w *os.File) {
	defer close(p.inputGone)
	defer w.Close()
	write := func(lines [][]byte) bool {
		for _, l := range lines {
			if _, err := w.Write(l); err != nil {
				return false
			}
		}
		return true
	}
	for {
		select {
		case lines := <-p.out:
			if !write(lines) {
				return
			}
		case <-p.stopIn:
			for {
				select {
				case lines := <-p.out:
					if !write(lines) {
						return
					}
				default:
					return
				}
			}
		case <-p.done:
			return
		}
	}
}

func (p *proc) readStdout(r io.Reader, maxLine int, handle func(p *proc, f *frame) error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var f frame
		if err := parseFrame(b, &f); err != nil || f.Type == "" {
			p.log.Warn("exec: ignored a stdout line that is not a protocol frame (write logs to stderr)", "line", truncate(string(b), 200))
			continue
		}
		if err := handle(p, &f); err != nil {
			p.fail("protocol error: " + err.Error())
			break
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, os.ErrClosed) {
		if errors.Is(err, bufio.ErrTooLong) {
			p.fail(fmt.Sprintf("protocol error: a line is longer than max_message_size (%d bytes)", maxLine))
		} else {
			p.fail("reading stdout: " + err.Error())
		}
	}
	// Drain until the pipe closes, so the program never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

func (p *proc) readStderr(r io.Reader, level slog.Level) {
	br := bufio.NewReaderSize(r, 4096)
	for {
		l, isPrefix, err := br.ReadLine()
		if len(l) > 0 || (err == nil && !isPrefix) {
			s := string(l)
			for isPrefix && err == nil { // drop the rest of an overlong line
				_, isPrefix, err = br.ReadLine()
			}
			if strings.TrimSpace(s) != "" {
				p.log.Log(context.Background(), level, s, "stream", "stderr")
				p.tailMu.Lock()
				p.tail = append(p.tail, truncate(s, 300))
				if len(p.tail) > 5 {
					p.tail = p.tail[1:]
				}
				p.tailMu.Unlock()
			}
		}
		if err != nil {
			return
		}
	}
}

// fail records why Sluice gives up on the program and kills it.
func (p *proc) fail(why string) {
	p.failMu.Lock()
	if p.failure == "" {
		p.failure = why
	}
	p.failMu.Unlock()
	p.log.Error("exec: stopping the program: " + why)
	p.kill()
}

// send queues lines for the program's stdin, waiting while the queue is full.
func (p *proc) send(ctx context.Context, lines [][]byte) error {
	select {
	case <-p.stopIn:
		return errInputClosed
	default:
	}
	select {
	case p.out <- lines:
		return nil
	case <-p.inputGone:
		return errInputClosed
	case <-p.stopIn:
		return errInputClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// trySend queues lines when the queue has room, without waiting.
func (p *proc) trySend(lines [][]byte) bool {
	select {
	case <-p.stopIn:
		return false
	case p.out <- lines:
		return true
	default:
		return false
	}
}

// exited reports whether the program has exited and its output was read.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// abandon tells the reader to drop the program's further frames.
func (p *proc) abandon() { p.quitOnce.Do(func() { close(p.quit) }) }

// kill stops the program at once and drops its further output.
func (p *proc) kill() {
	p.abandon()
	p.killed.Store(true)
	killGroup(p.cmd)
}

// stop ends the program gracefully: its stdin is closed (after the queued
// lines), then it gets grace to exit, then SIGTERM and grace again, then
// SIGKILL. It returns once the program is gone, or early when ctx ends (the
// program is killed then).
func (p *proc) stop(ctx context.Context, grace time.Duration) {
	p.stopOnce.Do(func() { close(p.stopIn) })
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
		p.log.Warn("exec: program did not exit after its stdin closed; sending SIGTERM", "waited", grace)
		terminateGroup(p.cmd)
	case <-ctx.Done():
		p.kill()
		<-p.done
		return
	}
	t.Reset(grace)
	select {
	case <-p.done:
	case <-t.C:
		p.log.Warn("exec: program ignored SIGTERM; killing it", "waited", grace)
		p.kill()
		<-p.done
	case <-ctx.Done():
		p.kill()
		<-p.done
	}
}

// cleanExit reports whether the program exited by itself with status 0.
func (p *proc) cleanExit() bool {
	return p.exitErr == nil && !p.killed.Load() && p.failed() == ""
}

func (p *proc) failed() string {
	p.failMu.Lock()
	defer p.failMu.Unlock()
	return p.failure
}

// exitDesc describes how the program ended, with its last stderr lines.
func (p *proc) exitDesc() string {
	var b strings.Builder
	switch why := p.failed(); {
	case why != "":
		b.WriteString("was stopped: " + why)
	case p.exitErr == nil:
		b.WriteString("exited with status 0")
	default:
		var ee *osexec.ExitError
		if errors.As(p.exitErr, &ee) && ee.Exited() {
			fmt.Fprintf(&b, "exited with status %d", ee.ExitCode())
		} else {
			b.WriteString("ended: " + p.exitErr.Error())
		}
	}
	p.tailMu.Lock()
	if len(p.tail) > 0 {
		b.WriteString(" (stderr: " + strings.Join(p.tail, " | ") + ")")
	}
	p.tailMu.Unlock()
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
