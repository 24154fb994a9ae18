package sftp

// Long transfers against the real sshd: a 200 MiB file streamed in
// constant memory, and sshd killed in the middle of reads and writes.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
)

// writeBigFile writes n lines of width bytes (newline included): line i
// starts with its number in 8 digits.
func writeBigFile(t testing.TB, name string, n, width int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	filler := strings.Repeat("x", width-9)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "%08d%s\n", i, filler)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(name, past, past); err != nil {
		t.Fatal(err)
	}
}

// lineNumber checks a line of writeBigFile and returns its number.
func lineNumber(t testing.TB, line string, width int) int {
	t.Helper()
	if len(line) != width-1 {
		t.Fatalf("line of %d bytes, want %d: %.20q…", len(line), width-1, line)
	}
	n, err := strconv.Atoi(line[:8])
	if err != nil {
		t.Fatalf("malformed line %.20q…", line)
	}
	return n
}

// heapPeak samples the heap in use until stop is called, and returns the
// largest sample.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// TestSourceStreamsA200MiBFileInConstantMemory reads a 200 MiB file of 4
// KiB lines through the production lines codec and checks that the heap
// grows by a small fraction of the file: records stream, the file is
// never held whole.
func TestSourceStreamsA200MiBFileInConstantMemory(t *testing.T) {
	const width, n = 4096, 200 << 20 / 4096
	srv, dir := serverDir(t, "in")
	writeBigFile(t, filepath.Join(dir, "big.txt"), n, width)
	src := openSrc(t, srcConf(srv, dir, "codec", "lines", "batch_size", 64), adaptertest.MemoryState(), true)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := heapPeak()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next, bytes := 0, 0
	for {
		b, err := src.Read(ctx)
		if errors.Is(err, adapters.ErrEndOfInput) {
			break
		}
		if err != nil {
			t.Fatalf("read after %d records: %v", next, err)
		}
		for _, m := range b.Messages {
			line, _ := m.Record["line"].(string)
			if got := lineNumber(t, line, width); got != next {
				t.Fatalf("record %d is line %d", next, got)
			}
			next++
			bytes += len(line) + 1
		}
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	peak := stop()
	if next != n || bytes != 200<<20 {
		t.Fatalf("read %d records, %d bytes; want %d, %d", next, bytes, n, 200<<20)
	}
	growth := int64(peak) - int64(base.HeapInuse)
	t.Logf("heap in use: %d MiB before, peak %d MiB (+%d MiB) for a 200 MiB file", base.HeapInuse>>20, peak>>20, growth>>20)
	if growth > 40<<20 {
		t.Fatalf("the heap grew by %d MiB while streaming a 200 MiB file: records do not stream", growth>>20)
	}
}

// engine drives a source like the pipeline engine: batches are acked in
// order, Connect is called again (with backoff) after ErrNotConnected.
func engineRead(t *testing.T, src adapters.Source, want int, seen func(adapters.Message), timeout time.Duration) (reconnects int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := 0
	for got < want {
		b, err := src.Read(ctx)
		if errors.Is(err, adapters.ErrNotConnected) {
			reconnects++
			for wait := 20 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
				cerr := src.Connect(ctx)
				if cerr == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("Connect kept failing: %v", cerr)
				}
				if adapters.KindOf(cerr) != adapters.Unavailable {
					t.Fatalf("Connect while the server is down: %v (kind %v), want unavailable", cerr, adapters.KindOf(cerr))
				}
				time.Sleep(wait)
			}
			continue
		}
		if err != nil {
			t.Fatalf("read after %d records: %v", got, err)
		}
		for _, m := range b.Messages {
			seen(m)
		}
		got += len(b.Messages)
		if b.Ack != nil {
			if err := b.Ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	return reconnects
}

// TestSourceSurvivesSSHDKilledMidTransfer kills sshd (and its sessions)
// while a file is being downloaded, starts it again, and checks that every
// record arrives, and that a record read twice has the same ID both times.
func TestSourceSurvivesSSHDKilledMidTransfer(t *testing.T) {
	const width, n = 1024, 16 << 20 / 1024
	srv, dir := serverDir(t, "in")
	writeBigFile(t, filepath.Join(dir, "big.txt"), n, width)
	src := openSrc(t, srcConf(srv, dir, "codec", "lines", "batch_size", 256, "after", "delete"), adaptertest.MemoryState(), false)

	ids := map[int]string{}
	var killed sync.Once
	restarted := make(chan error, 1)
	reconnects := engineRead(t, src, n, func(m adapters.Message) {
		line := m.Record["line"].(string)
		k := lineNumber(t, line, width)
		if id, ok := ids[k]; ok && id != m.ID {
			t.Fatalf("line %d read again with another ID", k)
		}
		ids[k] = m.ID
		if len(ids) == n/4 {
			killed.Do(func() {
				if err := srv.Stop(); err != nil {
					t.Fatal(err)
				}
				time.AfterFunc(300*time.Millisecond, func() { restarted <- srv.Start() })
			})
		}
	}, 60*time.Second)
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if reconnects == 0 {
		t.Fatal("the source never reported the lost connection")
	}
	for len(ids) < n {
		// Records past the kill arrive after the reconnection; collect
		// what the loop above left (duplicates count in its total).
		engineRead(t, src, 1, func(m adapters.Message) { ids[lineNumber(t, m.Record["line"].(string), width)] = m.ID }, 30*time.Second)
	}
	for i := 0; i < n; i++ {
		if _, ok := ids[i]; !ok {
			t.Fatalf("line %d never arrived", i)
		}
	}
	// The source finishes the file at the Read after its last records.
	eventually(t, "the file deleted once every record was in", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if b, err := src.Read(ctx); err == nil && len(b.Messages) > 0 {
			t.Fatalf("%d more records after all were read", len(b.Messages))
		}
		return len(tree(t, dir)) == 0
	})
}

// TestSinkSurvivesSSHDKilledMidTransfer kills sshd while the sink writes
// 1 MiB batches, restarts it, retries like the engine, and checks that
// every record arrived and that no published file holds a partial line.
func TestSinkSurvivesSSHDKilledMidTransfer(t *testing.T) {
	const width, batches, per = 1024, 24, 1024
	srv, dir := serverDir(t, "out")
	sink := openSink(t, conf(srv, "base_dir", dir, "path", "part.txt", "codec", "lines", "max_bytes", "4MiB"), adaptertest.MemoryState())
	filler := strings.Repeat("y", width-9)
	var stopped atomic.Bool
	restarted := make(chan error, 1)
	time.AfterFunc(150*time.Millisecond, func() {
		stopped.Store(srv.Stop() == nil)
		time.AfterFunc(300*time.Millisecond, func() { restarted <- srv.Start() })
	})
	failures := 0
	for b := 0; b < batches; b++ {
		msgs := make([]adapters.Message, per)
		for i := range msgs {
			k := b*per + i
			msgs[i] = adapters.Message{ID: strconv.Itoa(k), Record: adapters.Record{"line": fmt.Sprintf("%08d%s", k, filler)}}
		}
		failures += deliver(t, sink, msgs, 30*time.Second)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !stopped.Load() || failures == 0 {
		t.Fatalf("sshd stopped: %v, failed writes: %d; the kill missed the transfer", stopped.Load(), failures)
	}
	seen := make([]int, batches*per)
	for _, name := range tree(t, dir) {
		if strings.HasPrefix(filepath.Base(name), ".") {
			t.Fatalf("temp file %s left after Close", name)
		}
		content := readFile(t, filepath.Join(dir, name))
		if !strings.HasSuffix(content, "\n") {
			t.Fatalf("%s ends with a partial line", name)
		}
		for _, l := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
			seen[lineNumber(t, l, width)]++
		}
	}
	for k, c := range seen {
		if c == 0 {
			t.Fatalf("record %d is missing", k)
		}
	}
}

// deliver writes msgs until all are delivered, as the engine does:
// failed messages of a BatchError are retried, Connect is called again
// after an Unavailable or ErrNotConnected error. It returns how many
// Writes failed.
func deliver(t *testing.T, s adapters.Sink, msgs []adapters.Message, timeout time.Duration) (failures int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for wait := 20 * time.Millisecond; len(msgs) > 0; wait = min(2*wait, 300*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages not delivered within %s", len(msgs), timeout)
		}
		err := s.Write(context.Background(), msgs)
		if err == nil {
			return failures
		}
		failures++
		var be *adapters.BatchError
		if errors.As(err, &be) {
			var again []adapters.Message
			for i := range msgs {
				if e, ok := be.Failed[i]; ok {
					if adapters.KindOf(e) == adapters.Permanent {
						t.Fatalf("message %s failed permanently: %v", msgs[i].ID, e)
					}
					again = append(again, msgs[i])
				}
			}
			msgs = again
		} else if adapters.KindOf(err) == adapters.Permanent {
			t.Fatalf("write failed permanently: %v", err)
		}
		time.Sleep(wait)
		if errors.Is(err, adapters.ErrNotConnected) || adapters.KindOf(err) == adapters.Unavailable {
			_ = s.Connect(context.Background())
		}
	}
	return failures
}
