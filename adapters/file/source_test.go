package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

func srcConf(dir string, kv ...any) map[string]any {
	raw := map[string]any{"path": dir, "codec": "test-lines", "ready": "immediate", "scan_interval": "20ms", "watch": false}
	for i := 0; i+1 < len(kv); i += 2 {
		raw[kv[i].(string)] = kv[i+1]
	}
	return raw
}

func TestSourceReadsFilesWithMetadataAndIDs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), "one\ntwo\nthree\n")
	writeFile(t, filepath.Join(dir, "skip.csv"), "x\n")
	writeFile(t, filepath.Join(dir, ".hidden.txt"), "x\n")
	src := newTestSource(t, srcConf(dir, "include", []any{"*.txt"}), newState(), true)
	msgs := readAll(t, src)
	if got := strings.Join(lines(msgs), ","); got != "one,two,three" {
		t.Fatalf("lines = %s", got)
	}
	fi, _ := os.Stat(filepath.Join(dir, "a.txt"))
	ident := strconv.FormatInt(fi.Size(), 10) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
	for i, off := range []int64{0, 4, 8} {
		m := msgs[i]
		if want := adapters.NewID("p", "files", "a.txt", ident, strconv.FormatInt(off, 10)); m.ID != want {
			t.Errorf("message %d: ID %s, want %s", i, m.ID, want)
		}
		want := map[string]string{adapters.MetaSource: "files", adapters.MetaPath: filepath.Join(dir, "a.txt"),
			adapters.MetaLine: strconv.Itoa(i + 1), adapters.MetaOffset: strconv.FormatInt(off, 10)}
		for k, v := range want {
			if m.Meta[k] != v {
				t.Errorf("message %d: meta %s = %q, want %q", i, k, m.Meta[k], v)
			}
		}
	}
}

// TestSourceKeepRemembersAcrossRestart reads with after: keep, restarts
// (a new source on the same state) and checks nothing is read twice, and
// that a changed file is read again.
func TestSourceKeepRemembersAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	st := newState()
	writeFile(t, filepath.Join(dir, "a.txt"), "1\n2\n")
	writeFile(t, filepath.Join(dir, "sub/b.txt"), "3\n")
	raw := srcConf(dir, "after", "keep", "recursive", true)
	if got := len(readAll(t, newTestSource(t, raw, st, true))); got != 3 {
		t.Fatalf("first run read %d records, want 3", got)
	}
	if got := readAll(t, newTestSource(t, raw, st, true)); len(got) != 0 {
		t.Fatalf("second run read %v, want nothing", lines(got))
	}
	appendFile(t, filepath.Join(dir, "a.txt"), "4\n")
	if got := strings.Join(lines(readAll(t, newTestSource(t, raw, st, true))), ","); got != "1,2,4" {
		t.Fatalf("after a change read %s, want the whole changed file", got)
	}
	if got := tree(t, dir); len(got) != 2 {
		t.Fatalf("keep changed the directory: %v", got)
	}
}

func TestSourceAfterMoveAndDelete(t *testing.T) {
	t.Run("move", func(t *testing.T) {
		dir := t.TempDir()
		st := newState()
		writeFile(t, filepath.Join(dir, "a.txt"), "1\n")
		writeFile(t, filepath.Join(dir, "archive", time.Now().Format("2006-01-02"), "a.txt"), "older\n")
		raw := srcConf(dir, "after", "move", "archive_dir", `archive/{{ now().Format("2006-01-02") }}`, "recursive", true)
		if got := len(readAll(t, newTestSource(t, raw, st, true))); got != 1 {
			t.Fatalf("read %d records, want 1 (the archive must not be read)", got)
		}
		day := time.Now().Format("2006-01-02")
		if got, want := strings.Join(tree(t, dir), " "), "archive/"+day+"/a.1.txt archive/"+day+"/a.txt"; got != want {
			t.Fatalf("tree = %q, want %q", got, want)
		}
		if got := readAll(t, newTestSource(t, raw, st, true)); len(got) != 0 {
			t.Fatalf("restart read %v", lines(got))
		}
		if kv, _ := st.List(context.Background(), ""); len(kv) != 0 {
			t.Fatalf("state after move = %v, want empty", kv)
		}
	})
	t.Run("delete", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a.txt"), "1\n2\n")
		if got := len(readAll(t, newTestSource(t, srcConf(dir, "after", "delete"), newState(), true))); got != 2 {
			t.Fatalf("read %d records", got)
		}
		if got := tree(t, dir); len(got) != 0 {
			t.Fatalf("files left: %v", got)
		}
	})
}

func TestSourceStableWaitsForWriterToFinish(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "growing.txt")
	writeFile(t, name, "")
	src := newTestSource(t, srcConf(dir, "ready", "stable", "stable_for", "150ms", "scan_interval", "10ms"), newState(), false)
	type result struct {
		msgs []adapters.Message
		err  error
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := src.Read(ctx)
		got <- result{b.Messages, err}
	}()
	for i := range 20 {
		appendFile(t, name, fmt.Sprintf("line %d\n", i))
		time.Sleep(20 * time.Millisecond)
		select {
		case r := <-got:
			t.Fatalf("file taken while still being written, after %d lines: %d records, %v", i+1, len(r.msgs), r.err)
		default:
		}
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.msgs) != 20 {
		t.Fatalf("read %d records, want all 20", len(r.msgs))
	}
}

func TestSourceDoneFile(t *testing.T) {
	dir := t.TempDir()
	st := newState()
	raw := srcConf(dir, "ready", "done_file", "done_suffix", ".ok", "after", "keep")
	writeFile(t, filepath.Join(dir, "a.txt"), "1\n")
	if got := readAll(t, newTestSource(t, raw, st, true)); len(got) != 0 {
		t.Fatalf("read %v before the marker existed", lines(got))
	}
	writeFile(t, filepath.Join(dir, "a.txt.ok"), "")
	if got := strings.Join(lines(readAll(t, newTestSource(t, raw, st, true))), ","); got != "1" {
		t.Fatalf("read %q with the marker, want 1", got)
	}
	if got := strings.Join(tree(t, dir), " "); got != "a.txt" {
		t.Fatalf("tree = %q: the marker must be removed, the file kept", got)
	}
}

// TestSourceResumesMidFile acknowledges the first batch only, closes the
// source (a crash), and checks that a new one resumes after the
// acknowledged records with the same message IDs.
func TestSourceResumesMidFile(t *testing.T) {
	for _, codec := range []string{"test-lines", "test-array"} {
		t.Run(codec, func(t *testing.T) {
			dir := t.TempDir()
			st := newState()
			content := "1\n2\n3\n4\n5\n"
			if codec == "test-array" {
				content = "[\n{\"n\":1},\n{\"n\":2},\n{\"n\":3},\n{\"n\":4},\n{\"n\":5}\n]\n"
			}
			writeFile(t, filepath.Join(dir, "a.txt"), content)
			raw := srcConf(dir, "batch_size", 2, "codec", codec)
			src := newTestSource(t, raw, st, true)
			ctx := context.Background()
			b1, err := src.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b2, err := src.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := b1.Ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
			src.Close(ctx)
			if err := b2.Ack(ctx, errors.New("shutdown: not enqueued")); err != nil {
				t.Fatal(err)
			}
			again := readAll(t, newTestSource(t, raw, st, true))
			if len(again) != 3 {
				t.Fatalf("restart read %d records, want the 3 not acknowledged", len(again))
			}
			for i := range b2.Messages {
				if again[i].ID != b2.Messages[i].ID {
					t.Fatalf("record %d read again with ID %s, first read as %s", i, again[i].ID, b2.Messages[i].ID)
				}
				if again[i].Meta[adapters.MetaLine] != b2.Messages[i].Meta[adapters.MetaLine] {
					t.Fatalf("record %d: line %s, first read as %s", i, again[i].Meta[adapters.MetaLine], b2.Messages[i].Meta[adapters.MetaLine])
				}
			}
			if got := readAll(t, newTestSource(t, raw, st, true)); len(got) != 0 {
				t.Fatalf("third run read %d records", len(got))
			}
		})
	}
}

func TestSourceFailedFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bin.txt"), "\x00binary\nmore\n")
	writeFile(t, filepath.Join(dir, "good.txt"), "ok\n")
	st := newState()
	raw := srcConf(dir, "failed_dir", "failed", "after", "delete")
	if got := strings.Join(lines(readAll(t, newTestSource(t, raw, st, true))), ","); got != "ok" {
		t.Fatalf("read %q, want ok", got)
	}
	if got := strings.Join(tree(t, dir), " "); got != "failed/bin.txt" {
		t.Fatalf("tree = %q, want the undecodable file in failed/", got)
	}

	t.Run("no failed_dir", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "bin.txt"), "\x00binary\n")
		st := newState()
		raw := srcConf(dir)
		readAll(t, newTestSource(t, raw, st, true))
		if got := readAll(t, newTestSource(t, raw, st, true)); len(got) != 0 {
			t.Fatalf("failed file read again: %d messages", len(got))
		}
		if got := tree(t, dir); len(got) != 1 {
			t.Fatalf("tree = %v", got)
		}
	})
	t.Run("raw too large", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "big.bin"), strings.Repeat("x", 100))
		writeFile(t, filepath.Join(dir, "small.bin"), "tiny")
		msgs := readAll(t, newTestSource(t, srcConf(dir, "codec", "none", "max_raw_bytes", 50, "failed_dir", "failed"), newState(), true))
		if len(msgs) != 1 || string(msgs[0].Raw) != "tiny" || msgs[0].Record != nil {
			t.Fatalf("messages = %+v, want one raw message", msgs)
		}
		if got := strings.Join(tree(t, dir), " "); got != "failed/big.bin small.bin" {
			t.Fatalf("tree = %q", got)
		}
	})
}

func TestSourceMalformedRecordGoesOn(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.jsonl"), "{\"n\":1}\nnot json\n{\"n\":3}\n")
	msgs := readAll(t, newTestSource(t, srcConf(dir, "codec", "test-jsonl"), newState(), true))
	if len(msgs) != 3 {
		t.Fatalf("read %d messages, want 3", len(msgs))
	}
	var rerr *adapters.RecordError
	if !errors.As(msgs[1].Err, &rerr) || rerr.Line != 2 || !strings.HasSuffix(rerr.Path, "a.jsonl") {
		t.Fatalf("message 1 error = %v, want a RecordError at line 2 naming the file", msgs[1].Err)
	}
	if msgs[0].Err != nil || msgs[2].Err != nil || msgs[2].Record["n"] != int64(3) {
		t.Fatalf("good records: %+v %+v", msgs[0], msgs[2])
	}
}

func TestSourceDiscovery(t *testing.T) {
	for _, watch := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch=%v", watch), func(t *testing.T) {
			dir := t.TempDir()
			interval := "30ms"
			if watch {
				interval = "1h" // only a notification can find the file in time
			}
			src := newTestSource(t, srcConf(dir, "watch", watch, "scan_interval", interval), newState(), false)
			done := make(chan []adapters.Message, 1)
			go func() { done <- readN(t, src, 2, 10*time.Second) }()
			time.Sleep(50 * time.Millisecond)
			writeFile(t, filepath.Join(dir, "late.txt"), "a\nb\n")
			select {
			case msgs := <-done:
				if got := strings.Join(lines(msgs), ","); got != "a,b" {
					t.Fatalf("read %s", got)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("file created after start was not discovered")
			}
		})
	}
}

func TestSourceCloseUnblocksRead(t *testing.T) {
	src := newTestSource(t, srcConf(t.TempDir(), "scan_interval", "1h"), newState(), false)
	errc := make(chan error, 1)
	go func() {
		_, err := src.Read(context.Background())
		errc <- err
	}()
	time.Sleep(30 * time.Millisecond)
	if err := src.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, adapters.ErrClosed) {
			t.Fatalf("Read = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if err := src.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSourceCancelledContext(t *testing.T) {
	src := newTestSource(t, srcConf(t.TempDir(), "scan_interval", "1h"), newState(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := src.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, want the context's error", err)
	}
}

func TestSourceRawFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "doc.xml"), "<a>\n<b/>\n</a>\n")
	msgs := readAll(t, newTestSource(t, srcConf(dir, "codec", "none"), newState(), true))
	if len(msgs) != 1 || string(msgs[0].Raw) != "<a>\n<b/>\n</a>\n" || msgs[0].Meta[adapters.MetaPath] != filepath.Join(dir, "doc.xml") {
		t.Fatalf("messages = %+v", msgs)
	}
}

func TestSourceConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"path": "/x", "codec": "test-lines", "after": "move"}, "archive_dir"},
		{map[string]any{"path": "/x", "codec": "test-lines", "include": []any{"[a-"}}, "glob pattern"},
		{map[string]any{"path": "/x", "codec": "test-lines", "after": "move", "archive_dir": "{{ now( }}"}, "test.archive_dir"},
		{map[string]any{"path": "/x", "codec": "test-jsonl", "after": "move", "archive_dir": "{{ meta.name }}-done", "recursive": true}, "fixed directory"},
		{map[string]any{"path": "/x", "codec": "none", "mode": "tail"}, "line-oriented codec"},
		{map[string]any{"path": "/x", "codec": "test-lines", "batch_size": 0}, "at least 1"},
	} {
		_, err := adapters.Decode(sourceSpec(), tc.raw, adapters.DecodeOptions{Path: "test"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%v) = %v, want %q", tc.raw, err, tc.want)
		}
	}
}

func TestSourceRereadsBatchThatWasNotEnqueued(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), "1\n2\n3\n")
	src := newTestSource(t, srcConf(dir, "batch_size", 2), newState(), false)
	ctx := context.Background()
	b1, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Ack(ctx, errors.New("queue full at shutdown")); err != nil {
		t.Fatal(err)
	}
	again := readN(t, src, 3, 5*time.Second)
	if got := strings.Join(lines(again), ","); got != "1,2,3" {
		t.Fatalf("after a failed batch read %s, want the whole file again", got)
	}
	if again[0].ID != b1.Messages[0].ID {
		t.Fatal("a record read again got a new ID")
	}
}

// TestSourceFinishesActionAfterCrash: a crash after every record was
// enqueued but before the after-action leaves a "done" checkpoint; the next
// start carries the action out without reading the file.
func TestSourceFinishesActionAfterCrash(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "a.txt")
	writeFile(t, name, "1\n2\n")
	fi, _ := os.Stat(name)
	st := newState()
	entry := fmt.Sprintf(`{"size":%d,"mtime":%d,"offset":4,"record":2,"line":2,"done":true}`, fi.Size(), fi.ModTime().UnixNano())
	if err := st.Put(context.Background(), "file/a.txt", []byte(entry)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, newTestSource(t, srcConf(dir, "after", "delete"), st, true)); len(got) != 0 {
		t.Fatalf("read %d records of a finished file", len(got))
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Fatalf("the pending delete was not carried out: %v", err)
	}
}
