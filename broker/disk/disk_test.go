package disk

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/disk/internal/vfs"
)

// harness opens a broker and one queue on a real dir.
type harness struct {
	t    *testing.T
	dir  string
	opts broker.Options
	b    *Broker
	q    broker.Queue
	ctx  context.Context
}

func newHarness(t *testing.T, opts broker.Options) *harness {
	h := &harness{t: t, dir: t.TempDir(), opts: opts, ctx: context.Background()}
	h.open()
	t.Cleanup(func() { h.b.Close() })
	return h
}

func (h *harness) open() {
	h.t.Helper()
	b, err := Open(h.dir, Options{Logger: quietLogger()})
	if err != nil {
		h.t.Fatal(err)
	}
	q, err := b.Open("t/q", h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.b, h.q = b, q
}

func (h *harness) reopen() {
	h.t.Helper()
	if err := h.b.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func (h *harness) enqueue(from, n, size int) {
	h.t.Helper()
	for i := from; i < from+n; i++ {
		id := strconv.Itoa(i)
		m := adapters.Message{ID: id, Raw: payloadFor(id, size), Meta: map[string]string{"size": strconv.Itoa(size)}}
		if err := h.q.Enqueue(h.ctx, []adapters.Message{m}); err != nil {
			h.t.Fatal(err)
		}
	}
}

// drain receives and acks everything deliverable in group and returns the
// ids, checking every body.
func (h *harness) drain(group string) []int {
	h.t.Helper()
	c, err := h.q.Consumer(group)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []int
	for {
		ctx, cancel := context.WithTimeout(h.ctx, 100*time.Millisecond)
		ds, err := c.Receive(ctx, 256)
		cancel()
		if err != nil {
			return out
		}
		for _, d := range ds {
			if err := checkBody(d.Message); err != nil {
				h.t.Error(err)
			}
			n, _ := strconv.Atoi(d.Message.ID)
			out = append(out, n)
		}
		if err := c.Ack(h.ctx, ds); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) segments() []string {
	h.t.Helper()
	m, err := filepath.Glob(filepath.Join(h.dir, "queues", "t", "q", "_*.seg"))
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func seqRange(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

func equalInts(a, b []int) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestTornTailTruncated(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for i := 0; i < 5; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			h := newHarness(t, broker.Options{})
			h.enqueue(0, 20, 50)
			h.b.Close()
			seg := h.segments()[0]
			fi, err := os.Stat(seg)
			if err != nil {
				t.Fatal(err)
			}
			cut := r.Int64N(fi.Size())
			if err := os.Truncate(seg, cut); err != nil {
				t.Fatal(err)
			}
			h.open()
			got := h.drain("g")
			if !equalInts(got, seqRange(0, len(got))) {
				t.Fatalf("after a cut at %d: want a prefix, got %v", cut, got)
			}
			h.enqueue(100, 5, 50)
			h.reopen()
			got = h.drain("g2")
			if !equalInts(got[len(got)-5:], seqRange(100, 5)) {
				t.Fatalf("writes after the repair lost: %v", got)
			}
		})
	}
}

func TestGarbageAppended(t *testing.T) {
	h := newHarness(t, broker.Options{})
	h.enqueue(0, 10, 40)
	h.b.Close()
	f, err := os.OpenFile(h.segments()[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("\x10\x00\x00\x00garbage garbage garbage"))
	f.Close()
	h.open()
	h.enqueue(10, 3, 40)
	h.reopen()
	if got := h.drain("g"); !equalInts(got, seqRange(0, 13)) {
		t.Fatalf("want 0..12, got %v", got)
	}
}

func TestBitFlipQuarantined(t *testing.T) {
	h := newHarness(t, broker.Options{SegmentBytes: 2048})
	h.enqueue(0, 60, 60)
	h.b.Close()
	segs := h.segments()
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	// flip a byte in the middle of the second segment
	data, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(segs[1], data, 0o644); err != nil {
		t.Fatal(err)
	}
	h.open()
	if s := h.q.Stats(); s.Quarantined != 1 {
		t.Fatalf("want 1 quarantined span, got %+v", s)
	}
	qfiles, _ := filepath.Glob(filepath.Join(h.dir, "quarantine", "*.bad"))
	if len(qfiles) != 1 {
		t.Fatalf("want one quarantine file, got %v", qfiles)
	}
	got := h.drain("g")
	if len(got) < 55 || len(got) >= 60 {
		t.Fatalf("want all but the corrupt record(s), got %d: %v", len(got), got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order: %v", got)
		}
	}
	if got[len(got)-1] != 59 {
		t.Fatalf("the queue did not go on after the corrupt span: %v", got)
	}
	// write more, restart again: new writes survive, nothing quarantined twice
	h.enqueue(100, 5, 60)
	h.reopen()
	if got := h.drain("g"); !equalInts(got, seqRange(100, 5)) {
		t.Fatalf("after the repair: %v", got)
	}
	if s := h.q.Stats(); s.Quarantined != 0 {
		t.Fatalf("quarantined again after the repair: %+v", s)
	}
}

func TestCursorFileLost(t *testing.T) {
	for _, how := range []string{"deleted", "corrupt"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, broker.Options{})
			h.enqueue(0, 10, 30)
			c, _ := h.q.Consumer("g")
			ds, _ := c.Receive(h.ctx, 4)
			if err := c.Ack(h.ctx, ds); err != nil {
				t.Fatal(err)
			}
			h.b.Close()
			qdir := filepath.Join(h.dir, "queues", "t", "q")
			cursor := filepath.Join(qdir, cursorsFile)
			if how == "deleted" {
				os.Remove(cursor)
				// and the ack logs with it: nothing is known
				logs, _ := filepath.Glob(filepath.Join(qdir, "_acks.*"))
				for _, l := range logs {
					os.Remove(l)
				}
			} else {
				os.WriteFile(cursor, []byte("not a cursor file"), 0o644)
			}
			h.open()
			got := h.drain("g")
			// the last safe point: duplicates are allowed, loss is not
			for _, want := range seqRange(4, 6) {
				found := false
				for _, g := range got {
					found = found || g == want
				}
				if !found {
					t.Fatalf("message %d lost; got %v", want, got)
				}
			}
			h.enqueue(10, 2, 30)
			h.reopen()
			if got := h.drain("g"); !equalInts(got, seqRange(10, 2)) {
				t.Fatalf("after the fallback: %v", got)
			}
		})
	}
}

func TestRetentionDeletesSegments(t *testing.T) {
	h := newHarness(t, broker.Options{SegmentBytes: 4096, MaxBytes: 32 << 10})
	c, _ := h.q.Consumer("g")
	var maxDisk int64
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			var total int64
			for _, s := range h.segments() {
				if fi, err := os.Stat(s); err == nil {
					total += fi.Size()
				}
			}
			maxDisk = max(maxDisk, total)
			time.Sleep(time.Millisecond)
		}
	}()
	go func() {
		time.Sleep(300 * time.Millisecond) // the queue fills up first
		for {
			ds, err := c.Receive(h.ctx, 16)
			if err != nil {
				return
			}
			time.Sleep(time.Millisecond) // a slow sink: producers block
			if c.Ack(h.ctx, ds) != nil {
				return
			}
		}
	}()
	for i := 0; i < 2000; i += 10 {
		batch := make([]adapters.Message, 10)
		for j := range batch {
			id := strconv.Itoa(i + j)
			batch[j] = adapters.Message{ID: id, Raw: payloadFor(id, 100), Meta: map[string]string{"size": "100"}}
		}
		if err := h.q.Enqueue(h.ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.q.Stats().Messages > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop.Store(true)
	<-done
	if n := len(h.segments()); n > 2 {
		t.Fatalf("consumed segments not deleted: %d left", n)
	}
	if maxDisk < 24<<10 {
		t.Fatalf("the queue never filled up: peak %d bytes", maxDisk)
	}
	if limit := int64(32<<10 + 4096 + 4096); maxDisk > limit {
		t.Fatalf("disk use %d above the limit plus a segment (%d)", maxDisk, limit)
	}
	t.Logf("peak segment bytes %d for max_bytes 32768, segment_bytes 4096", maxDisk)
}

func TestBlobs(t *testing.T) {
	h := newHarness(t, broker.Options{InlineMax: 1024})
	a, _ := h.q.Consumer("a")
	b, _ := h.q.Consumer("b")
	h.enqueue(0, 1, 100)
	h.enqueue(1, 2, 64<<10)
	blobs := func() int {
		m, _ := filepath.Glob(filepath.Join(h.dir, "queues", "t", "q", blobDir, "*"))
		return len(m)
	}
	if n := blobs(); n != 2 {
		t.Fatalf("want 2 blob files, got %d", n)
	}
	h.reopen() // blobs are found again
	if got := h.drain("a"); !equalInts(got, seqRange(0, 3)) {
		t.Fatalf("group a: %v", got)
	}
	waitFor(t, func() bool { return blobs() == 2 }) // b has not acked
	if got := h.drain("b"); !equalInts(got, seqRange(0, 3)) {
		t.Fatalf("group b: %v", got)
	}
	waitFor(t, func() bool { return blobs() == 0 })
	_, _ = a, b
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLockRefusesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{Logger: quietLogger()})
	if !errors.Is(err, broker.ErrLocked) {
		t.Fatalf("want ErrLocked, got %v", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("the error should name the dir and the holder: %v", err)
	}
	b.Close()
	b2, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	b2.Close()
}

func TestReadOnlyWhileWriting(t *testing.T) {
	h := newHarness(t, broker.Options{SegmentBytes: 4096})
	h.enqueue(0, 10, 30)
	c, _ := h.q.Consumer("g")
	ds, _ := c.Receive(h.ctx, 3)
	if err := c.Ack(h.ctx, ds); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(h.dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	names, err := ro.List()
	if err != nil || !equalStrings(names, []string{"t/q", "t/q.dlq"}) {
		t.Fatalf("list: %v, %v", names, err)
	}
	q, err := ro.Open("t/q", broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := q.Stats()
	if s.Messages != 7 || len(s.Groups) != 1 || s.Groups[0].Pending != 7 {
		t.Fatalf("read-only stats: %+v", s)
	}
	p, err := q.Peek(h.ctx, 2)
	if err != nil || len(p) != 2 || p[0].ID != "3" || p[1].ID != "4" {
		t.Fatalf("read-only peek: %v, %v", p, err)
	}
	if err := q.Enqueue(h.ctx, nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only enqueue: %v", err)
	}
	if _, err := q.Consumer("x"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only consumer: %v", err)
	}
	if _, err := ro.Open("t/none", broker.Options{}); err == nil {
		t.Fatal("read-only open of a missing queue succeeded")
	}
	if d := q.DeadLetters(); d == nil || d.Stats().Messages != 0 {
		t.Fatalf("read-only dead letters: %v", d)
	}
	// the writer goes on (rolling and deleting segments) while we read
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.enqueue(100, 300, 30)
		h.drain("g")
	}()
	for i := 0; i < 50; i++ {
		if _, err := q.Peek(h.ctx, 5); err != nil {
			t.Fatalf("peek during writes: %v", err)
		}
		_ = q.Stats()
	}
	wg.Wait()
	if s := q.Stats(); s.Messages != 0 {
		t.Fatalf("read-only stats after the writer drained: %+v", s)
	}
}

func equalStrings(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestFsyncErrorIsFatal(t *testing.T) {
	m := vfs.NewMem(1)
	var fatal []error
	var mu sync.Mutex
	b, err := Open("/d", Options{FS: m, Logger: quietLogger(), OnFatal: func(err error) {
		mu.Lock()
		fatal = append(fatal, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, err := b.Open("f/q", broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, _ := q.Consumer("g")
	if err := q.Enqueue(ctx, []adapters.Message{{ID: "ok"}}); err != nil {
		t.Fatal(err)
	}
	ds, _ := c.Receive(ctx, 1)
	m.FailSyncAfter(0, syscall.EIO)
	err = q.Enqueue(ctx, []adapters.Message{{ID: "fails"}})
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("want EIO, got %v", err)
	}
	m.FailSyncAfter(0, nil) // the disk "recovers": the broker must not trust it
	if err := q.Enqueue(ctx, []adapters.Message{{ID: "later"}}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("an enqueue after a fatal error: %v", err)
	}
	if err := c.Ack(ctx, ds); !errors.Is(err, syscall.EIO) {
		t.Fatalf("an ack after a fatal error: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fatal) != 1 || !errors.Is(fatal[0], syscall.EIO) {
		t.Fatalf("OnFatal: %v", fatal)
	}
}

func TestInvalidQueueNames(t *testing.T) {
	b, err := Open(t.TempDir(), Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, n := range []string{"", "a//b", "../x", "a/_b", "/a", "a/."} {
		if _, err := b.Open(n, broker.Options{}); err == nil {
			t.Errorf("queue name %q accepted", n)
		}
	}
}
