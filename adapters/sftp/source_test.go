package sftp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
)

func TestSourceReadsWithMetadataAndIDs(t *testing.T) {
	srv, dir := serverDir(t, "in")
	writeFile(t, filepath.Join(dir, "a.txt"), "one\ntwo\nthree\n")
	writeFile(t, filepath.Join(dir, "skip.csv"), "x\n")
	writeFile(t, filepath.Join(dir, ".hidden.txt"), "x\n")
	writeFile(t, filepath.Join(dir, "sub", "b.txt"), "four\n")
	msgs := readAll(t, openSrc(t, srcConf(srv, dir, "include", []any{"*.txt"}, "recursive", true), adaptertest.MemoryState(), true))
	got := strings.Join(lines(msgs), ",")
	if got != "one,two,three,four" && got != "four,one,two,three" {
		t.Fatalf("lines = %s", got)
	}
	fi, err := os.Stat(filepath.Join(dir, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// SFTP carries whole seconds.
	ident := fmt.Sprintf("%d-%d", fi.Size(), fi.ModTime().Truncate(time.Second).UnixNano())
	for _, m := range msgs {
		if m.Meta[adapters.MetaPath] != filepath.Join(dir, "a.txt") {
			continue
		}
		off := m.Meta[adapters.MetaOffset]
		if want := adapters.NewID("test", "remote", "a.txt", ident, off); m.ID != want {
			t.Errorf("record at %s: ID %s, want %s", off, m.ID, want)
		}
		if m.Meta[adapters.MetaSource] != "remote" || m.Meta[adapters.MetaLine] == "" {
			t.Errorf("metadata %v", m.Meta)
		}
	}
}

func TestSourceReadiness(t *testing.T) {
	t.Run("done_file", func(t *testing.T) {
		srv, dir := serverDir(t, "in")
		writeFile(t, filepath.Join(dir, "a.txt"), "a\n")
		writeFile(t, filepath.Join(dir, "b.txt"), "b\n")
		writeFile(t, filepath.Join(dir, "b.txt.ok"), "")
		src := openSrc(t, srcConf(srv, dir, "ready", "done_file", "done_suffix", ".ok"), adaptertest.MemoryState(), false)
		if got := lines(readN(t, src, 1, 10*time.Second)); strings.Join(got, ",") != "b" {
			t.Fatalf("read %v, want only the file with a marker", got)
		}
		eventually(t, "the marker of b.txt removed", func() bool {
			_, err := os.Stat(filepath.Join(dir, "b.txt.ok"))
			return os.IsNotExist(err)
		})
		writeFile(t, filepath.Join(dir, "a.txt.ok"), "")
		if got := lines(readN(t, src, 1, 10*time.Second)); strings.Join(got, ",") != "a" {
			t.Fatalf("read %v after a's marker, want a", got)
		}
	})
	t.Run("stable", func(t *testing.T) {
		srv, dir := serverDir(t, "in")
		name := filepath.Join(dir, "growing.txt")
		writeFile(t, name, "")
		src := openSrc(t, srcConf(srv, dir, "ready", "stable", "stable_for", "400ms", "scan_interval", "20ms"), adaptertest.MemoryState(), false)
		// A writer appends a line every 100ms for a second: the file must
		// not be taken before it is finished.
		var finished atomic.Bool
		go func() {
			f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return
			}
			defer f.Close()
			for i := 0; i < 10; i++ {
				fmt.Fprintf(f, "line %d\n", i)
				time.Sleep(100 * time.Millisecond)
			}
			finished.Store(true)
		}()
		msgs := readN(t, src, 1, 15*time.Second)
		if !finished.Load() {
			t.Fatalf("the file was taken while still being written (%d records)", len(msgs))
		}
		if len(msgs) != 10 {
			msgs = append(msgs, readN(t, src, 10-len(msgs), 5*time.Second)...)
		}
		if len(msgs) != 10 || lines(msgs)[9] != "line 9" {
			t.Fatalf("read %v, want the 10 lines", lines(msgs))
		}
	})
	t.Run("immediate", func(t *testing.T) {
		srv, dir := serverDir(t, "in")
		writeFile(t, filepath.Join(dir, "a.txt"), "x\n")
		if got := lines(readAll(t, openSrc(t, srcConf(srv, dir), adaptertest.MemoryState(), true))); len(got) != 1 {
			t.Fatalf("read %v", got)
		}
	})
}

func TestSourceAfterActionsAndRestart(t *testing.T) {
	t.Run("move", func(t *testing.T) {
		srv, dir := serverDir(t, "in")
		st := adaptertest.MemoryState()
		day := time.Now().Format("2006-01-02")
		writeFile(t, filepath.Join(dir, "a.txt"), "1\n2\n")
		writeFile(t, filepath.Join(dir, "done", day, "a.txt"), "older\n")
		raw := srcConf(srv, dir, "after", "move", "archive_dir", `done/{{ now().Format("2006-01-02") }}`, "recursive", true)
		if got := lines(readAll(t, openSrc(t, raw, st, true))); strings.Join(got, ",") != "1,2" {
			t.Fatalf("read %v (the archive must not be read)", got)
		}
		if got, want := strings.Join(tree(t, dir), " "), "done/"+day+"/a.1.txt done/"+day+"/a.txt"; got != want {
			t.Fatalf("tree = %q, want %q", got, want)
		}
		if got := readAll(t, openSrc(t, raw, st, true)); len(got) != 0 {
			t.Fatalf("restart read %v", lines(got))
		}
	})
	t.Run("delete", func(t *testing.T) {
		srv, dir := serverDir(t, "in")
		writeFile(t, filepath.Join(dir, "a.txt"), "1\n2\n")
		if got := len(readAll(t, openSrc(t, srcConf(srv, dir, "after", "delete"), adaptertest.MemoryState(), true))); got != 2 {
			t.Fatalf("read %d records", got)
		}
		if got := tree(t, dir); len(got) != 0 {
			t.Fatalf("files left: %v", got)
		}
	})
	t.Run("keep", func(t *testing.T) {
		srv, dir := serverDir(t, "in")
		st := adaptertest.MemoryState()
		writeFile(t, filepath.Join(dir, "a.txt"), "1\n2\n")
		raw := srcConf(srv, dir, "after", "keep")
		if got := len(readAll(t, openSrc(t, raw, st, true))); got != 2 {
			t.Fatalf("first run read %d records", got)
		}
		if got := readAll(t, openSrc(t, raw, st, true)); len(got) != 0 {
			t.Fatalf("restart read %v, want nothing", lines(got))
		}
		// A changed file (size and mtime) is read again.
		writeFile(t, filepath.Join(dir, "a.txt"), "1\n2\n3\n")
		past := time.Now().Add(-time.Hour)
		if err := os.Chtimes(filepath.Join(dir, "a.txt"), past, past); err != nil {
			t.Fatal(err)
		}
		if got := lines(readAll(t, openSrc(t, raw, st, true))); strings.Join(got, ",") != "1,2,3" {
			t.Fatalf("after a change read %v", got)
		}
		if got := tree(t, dir); len(got) != 1 {
			t.Fatalf("keep changed the directory: %v", got)
		}
	})
	t.Run("resume mid-file", func(t *testing.T) {
		srv, dir := serverDir(t, "in")
		st := adaptertest.MemoryState()
		writeFile(t, filepath.Join(dir, "a.txt"), numbered("r", 0, 10))
		raw := srcConf(srv, dir, "batch_size", 3)
		src := openSrc(t, raw, st, false)
		first := readN(t, src, 6, 10*time.Second) // two batches acked
		ctx := context.Background()
		b, err := src.Read(ctx) // a third batch, never acked: read again
		if err != nil || len(b.Messages) != 3 {
			t.Fatalf("third batch: %d messages, %v", len(b.Messages), err)
		}
		src.Close(ctx)
		rest := readAll(t, openSrc(t, raw, st, true))
		if got := strings.Join(lines(rest), ","); got != "r6,r7,r8,r9" {
			t.Fatalf("after a restart read %s, want the unacknowledged records r6..r9", got)
		}
		if rest[0].ID != b.Messages[0].ID {
			t.Fatal("a record read again after a restart has another ID")
		}
		if len(first) != 6 {
			t.Fatalf("first run read %d", len(first))
		}
	})
}

func TestSourceFilters(t *testing.T) {
	srv, dir := serverDir(t, "in")
	writeFile(t, filepath.Join(dir, "small.txt"), "s\n")
	writeFile(t, filepath.Join(dir, "big.txt"), strings.Repeat("b", 99)+"\n")
	writeFile(t, filepath.Join(dir, "mid.txt"), "mid-sized\n")
	writeFile(t, filepath.Join(dir, "young.txt"), "young-file\n")
	past := time.Now().Add(-time.Hour)
	for _, n := range []string{"small.txt", "big.txt", "mid.txt"} {
		if err := os.Chtimes(filepath.Join(dir, n), past, past); err != nil {
			t.Fatal(err)
		}
	}
	raw := srcConf(srv, dir, "min_size", 5, "max_size", "50B", "min_age", "10m")
	if got := lines(readAll(t, openSrc(t, raw, adaptertest.MemoryState(), true))); strings.Join(got, ",") != "mid-sized" {
		t.Fatalf("read %v, want only the file that is big enough, small enough and old enough", got)
	}
}

func TestSourceCodecNone(t *testing.T) {
	srv, dir := serverDir(t, "in")
	writeFile(t, filepath.Join(dir, "a.bin"), "whole\nfile\n")
	writeFile(t, filepath.Join(dir, "b.bin"), strings.Repeat("x", 2000))
	raw := srcConf(srv, dir, "codec", "none", "max_raw_bytes", "1KiB", "failed_dir", "failed")
	msgs := readAll(t, openSrc(t, raw, adaptertest.MemoryState(), true))
	if len(msgs) != 1 || string(msgs[0].Raw) != "whole\nfile\n" {
		t.Fatalf("messages %v, want the small file as one raw message", msgs)
	}
	if got := strings.Join(tree(t, dir), " "); got != "a.bin failed/b.bin" {
		t.Fatalf("tree = %q, want the file above max_raw_bytes in failed_dir", got)
	}
}

// TestSourceManySmallFilesConcurrently reads many files with several in
// flight: every record once, each file's records in order.
func TestSourceManySmallFilesConcurrently(t *testing.T) {
	srv, dir := serverDir(t, "in")
	const files = 300
	for i := 0; i < files; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("f%03d.txt", i)), numbered(fmt.Sprintf("f%03d-", i), 0, 3))
	}
	msgs := readAll(t, openSrc(t, srcConf(srv, dir, "concurrency", 8, "after", "delete"), adaptertest.MemoryState(), true))
	if len(msgs) != 3*files {
		t.Fatalf("read %d records, want %d", len(msgs), 3*files)
	}
	next := map[string]int{}
	ids := map[string]bool{}
	for _, l := range lines(msgs) {
		f, n, _ := strings.Cut(l, "-")
		if fmt.Sprint(next[f]) != n {
			t.Fatalf("record %s out of order (expected %s-%d)", l, f, next[f])
		}
		next[f]++
	}
	for _, m := range msgs {
		ids[m.ID] = true
	}
	if len(ids) != len(msgs) || len(next) != files {
		t.Fatalf("%d IDs for %d records from %d files", len(ids), len(msgs), len(next))
	}
	if left := tree(t, dir); len(left) != 0 {
		t.Fatalf("%d files left after delete, e.g. %v", len(left), left[0])
	}
}
