package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

func tailConf(dir string) map[string]any {
	return map[string]any{"path": dir, "mode": "tail", "include": []any{"app.log"}, "codec": "test-lines",
		"poll_interval": "20ms", "scan_interval": "20ms", "watch": false}
}

func TestTailFollowsCompleteLines(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	writeFile(t, log, "a\nb\n")
	src := newTestSource(t, tailConf(dir), newState(), false)
	if got := strings.Join(lines(readN(t, src, 2, 5*time.Second)), ","); got != "a,b" {
		t.Fatalf("read %s", got)
	}
	appendFile(t, log, "c\npart")
	msgs := readN(t, src, 1, 5*time.Second)
	if got := strings.Join(lines(msgs), ","); got != "c" {
		t.Fatalf("read %s, want only the complete line", got)
	}
	if msgs[0].Meta[adapters.MetaOffset] != "4" || msgs[0].Meta[adapters.MetaLine] != "3" {
		t.Fatalf("meta = %v", msgs[0].Meta)
	}
	appendFile(t, log, "ial\n")
	if got := strings.Join(lines(readN(t, src, 1, 5*time.Second)), ","); got != "partial" {
		t.Fatalf("read %s", got)
	}
}

func TestTailRotationByRename(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	writeFile(t, log, "old1\n")
	src := newTestSource(t, tailConf(dir), newState(), false)
	readN(t, src, 1, 5*time.Second)
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log+".1", "old2\nold-last-without-newline") // the writer had not reopened yet
	writeFile(t, log, "new1\nnew2\n")
	got := strings.Join(lines(readN(t, src, 4, 5*time.Second)), ",")
	if got != "old2,old-last-without-newline,new1,new2" {
		t.Fatalf("read %s", got)
	}
}

func TestTailTruncation(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	writeFile(t, log, "first-long-line\n")
	src := newTestSource(t, tailConf(dir), newState(), false)
	before := readN(t, src, 1, 5*time.Second)
	if err := os.WriteFile(log, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	after := readN(t, src, 1, 5*time.Second)
	if got := lines(after)[0]; got != "x" {
		t.Fatalf("after truncation read %q", got)
	}
	if after[0].Meta[adapters.MetaOffset] != "0" || after[0].ID == before[0].ID {
		t.Fatalf("after truncation: offset %s, ID reused: %v", after[0].Meta[adapters.MetaOffset], after[0].ID == before[0].ID)
	}
}

func TestTailResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	st := newState()
	writeFile(t, log, "1\n2\n")
	src := newTestSource(t, tailConf(dir), st, false)
	readN(t, src, 2, 5*time.Second)
	src.Close(context.Background())

	appendFile(t, log, "3\n")
	src = newTestSource(t, tailConf(dir), st, false)
	if got := strings.Join(lines(readN(t, src, 1, 5*time.Second)), ","); got != "3" {
		t.Fatalf("after restart read %s, want only the new line", got)
	}
	src.Close(context.Background())

	// Rotated while stopped: the rest of the old file, then the new one.
	appendFile(t, log, "4\n")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, log, "5\n")
	src = newTestSource(t, tailConf(dir), st, false)
	if got := strings.Join(lines(readN(t, src, 2, 5*time.Second)), ","); got != "4,5" {
		t.Fatalf("after rotation while stopped read %s, want 4,5", got)
	}
}

func TestTailOnceAndUnackedBatch(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	st := newState()
	writeFile(t, log, "1\n2\n3\npartial")
	raw := tailConf(dir)
	raw["batch_size"] = 2
	src := newTestSource(t, raw, st, true)
	ctx := context.Background()
	b1, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b2, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Not enqueued: the source must read it again, with the same IDs.
	if err := b2.Ack(ctx, context.Canceled); err != nil {
		t.Fatal(err)
	}
	again := readAll(t, src)
	if got := strings.Join(lines(again), ","); got != "3" || again[0].ID != b2.Messages[0].ID {
		t.Fatalf("after a failed batch read %s (same ID: %v)", got, len(again) > 0 && again[0].ID == b2.Messages[0].ID)
	}
	if got := readAll(t, newTestSource(t, raw, st, true)); len(got) != 0 {
		t.Fatalf("restart read %s; the partial line must wait", strings.Join(lines(got), ","))
	}
}
