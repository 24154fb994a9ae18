// Package progress draws a live status line per pipeline on a terminal:
// records per second in (read by sources) and out (written by sinks), queue
// depth and dead letters, redrawn in place once a second. Log lines written
// through Writer appear above the status lines instead of tearing them.
package progress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/pipeline"
)

// Runtimes lists the running pipelines; *pipeline.Agent implements it.
type Runtimes interface {
	Runtimes() []*pipeline.Runtime
}

// Progress owns the status lines at the bottom of a terminal.
type Progress struct {
	out      io.Writer
	interval time.Duration

	mu    sync.Mutex // guards the fields below and every write to out
	lines []string   // what is on screen now
	last  map[string]sample
}

type sample struct {
	at            time.Time
	read, written int64
}

// New returns a Progress that draws on out, a terminal, every interval
// (default one second).
func New(out io.Writer, interval time.Duration) *Progress {
	if interval <= 0 {
		interval = time.Second
	}
	return &Progress{out: out, interval: interval, last: map[string]sample{}}
}

// Run redraws the status lines until ctx is done, then removes them.
func (p *Progress) Run(ctx context.Context, agent Runtimes) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	p.Update(agent, time.Now())
	for {
		select {
		case <-ctx.Done():
			p.Clear()
			return
		case now := <-t.C:
			p.Update(agent, now)
		}
	}
}

// Update samples the pipelines and redraws.
func (p *Progress) Update(agent Runtimes, now time.Time) {
	rts := agent.Runtimes()
	lines := make([]string, 0, len(rts))
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[string]bool{}
	for _, rt := range rts {
		st := Stat{Pipeline: rt.Name(), Paused: rt.Paused()}
		c := rt.Counters()
		cur := sample{at: now, read: c.Read, written: c.Written}
		if prev, ok := p.last[rt.Name()]; ok && now.After(prev.at) && cur.read >= prev.read && cur.written >= prev.written {
			secs := now.Sub(prev.at).Seconds()
			st.InRate = float64(cur.read-prev.read) / secs
			st.OutRate = float64(cur.written-prev.written) / secs
		}
		p.last[rt.Name()] = cur
		seen[rt.Name()] = true
		for name, q := range rt.Queues() {
			n := q.Stats().Messages
			if broker.IsDLQ(name) {
				st.DeadLetters += n
			} else {
				st.Queued += n
			}
		}
		lines = append(lines, st.String())
	}
	for name := range p.last {
		if !seen[name] {
			delete(p.last, name) // restarted pipelines start a new sample
		}
	}
	p.redrawLocked(lines)
}

// Clear removes the status lines.
func (p *Progress) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redrawLocked(nil)
}

// redrawLocked replaces the lines on screen by lines: the cursor sits below
// the block, so it moves up over the old block, rewrites each line and
// clears what is left of the old one.
func (p *Progress) redrawLocked(lines []string) {
	var b bytes.Buffer
	b.WriteString(erase(len(p.lines)))
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\n")
	}
	p.lines = lines
	_, _ = p.out.Write(b.Bytes())
}

// erase moves the cursor to the start of a block of n lines above it and
// clears from there to the end of the screen.
func erase(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("\x1b[%dA\r\x1b[J", n)
}

// Writer returns a writer for log output: each write removes the status
// lines, writes its text and draws the lines again below it.
func (p *Progress) Writer() io.Writer { return logWriter{p} }

type logWriter struct{ p *Progress }

func (w logWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var buf bytes.Buffer
	buf.WriteString(erase(len(p.lines)))
	buf.Write(b)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		buf.WriteByte('\n')
	}
	for _, l := range p.lines {
		buf.WriteString(l)
		buf.WriteString("\n")
	}
	if _, err := p.out.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Stat is one pipeline's status line.
type Stat struct {
	Pipeline        string
	InRate, OutRate float64
	Queued          int64
	DeadLetters     int64
	Paused          bool
}

func (s Stat) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s in %7s/s  out %7s/s  queued %7s  dlq %s", s.Pipeline, human(s.InRate), human(s.OutRate), human(float64(s.Queued)), human(float64(s.DeadLetters)))
	if s.Paused {
		b.WriteString("  [paused]")
	}
	return b.String()
}

// human formats a count: 999, 1.2k, 12k, 1.2M.
func human(v float64) string {
	switch {
	case v < 1000:
		return fmt.Sprintf("%.0f", v)
	case v < 10_000:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v < 1_000_000:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v < 10_000_000:
		return fmt.Sprintf("%.1fM", v/1e6)
	default:
		return fmt.Sprintf("%.0fM", v/1e6)
	}
}
