package filekit

// Tests of what remote filesystems (SFTP) need from Source and Writer:
// files opened ahead, listing filters, reads interrupted by a lost
// connection, and the if_exists policies fail and append.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/filekit/filekittest"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/transform"
)

// slowFS is OSFS with a delay on Stat and Open, counting how many run at
// once; files it opens can be made to fail with a lost connection.
type slowFS struct {
	OSFS
	delay          time.Duration
	cur, max       atomic.Int32
	failAfter      atomic.Int64 // >0: the next opened file fails reading past this many bytes
	failedReads    atomic.Int32
	opens, closesN atomic.Int32
}

func (f *slowFS) enter() {
	n := f.cur.Add(1)
	for {
		m := f.max.Load()
		if n <= m || f.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(f.delay)
	f.cur.Add(-1)
}

func (f *slowFS) Stat(name string) (fs.FileInfo, error) { f.enter(); return f.OSFS.Stat(name) }

func (f *slowFS) Open(name string) (File, error) {
	f.enter()
	file, err := f.OSFS.Open(name)
	if err != nil {
		return nil, err
	}
	f.opens.Add(1)
	lf := &lossyFile{File: file, fs: f, limit: f.failAfter.Swap(0)}
	return lf, nil
}

// lossyFile fails reading past limit bytes (when limit > 0) with an error
// wrapping adapters.ErrNotConnected, as an SFTP file does when the
// connection drops.
type lossyFile struct {
	File
	fs    *slowFS
	limit int64
	read  int64
}

func (l *lossyFile) Read(p []byte) (int, error) {
	if l.limit > 0 {
		if l.read >= l.limit {
			l.fs.failedReads.Add(1)
			return 0, fmt.Errorf("read: %w", adapters.ErrNotConnected)
		}
		if rest := l.limit - l.read; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := l.File.Read(p)
	l.read += int64(n)
	return n, err
}

func (l *lossyFile) Seek(off int64, whence int) (int64, error) {
	n, err := l.File.Seek(off, whence)
	if err == nil {
		l.read = n
	}
	return n, err
}

func (l *lossyFile) Close() error { l.fs.closesN.Add(1); return l.File.Close() }

func remoteSource(t *testing.T, fsys FS, dir string, st adapters.State, tune func(*SourceOptions)) *Source {
	t.Helper()
	m, err := NewMatcher(MatcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := SourceOptions{
		FS: fsys, Dir: dir, Matcher: m, Ready: ReadyImmediate, Codec: filekittest.Codec("test-lines"),
		BatchSize: 2, ScanInterval: 10 * time.Millisecond,
		Resources: adapters.Resources{Pipeline: "p", Name: "remote", State: st, Once: true},
	}
	if tune != nil {
		tune(&o)
	}
	s, err := NewSource(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// drain reads until end of input, acking every batch; it returns the lines
// read and the errors Read returned on the way (it goes on after them, as
// the engine does after reconnecting).
func drain(t *testing.T, s *Source) (lines []string, ids map[string]int, errs []error) {
	t.Helper()
	ids = map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		b, err := s.Read(ctx)
		if errors.Is(err, adapters.ErrEndOfInput) {
			return lines, ids, errs
		}
		if err != nil {
			if ctx.Err() != nil || len(errs) > 10 {
				t.Fatalf("read: %v (after %v)", err, errs)
			}
			errs = append(errs, err)
			continue
		}
		for _, m := range b.Messages {
			lines = append(lines, m.Record["line"].(string))
			ids[m.ID]++
		}
		if b.Ack != nil {
			if err := b.Ack(ctx, nil); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
}

func writeFiles(t *testing.T, dir string, n, lines int) []string {
	t.Helper()
	var want []string
	base := time.Now().Add(-time.Hour)
	for i := 0; i < n; i++ {
		var b strings.Builder
		for j := 0; j < lines; j++ {
			l := fmt.Sprintf("f%02d-l%02d", i, j)
			want = append(want, l)
			b.WriteString(l + "\n")
		}
		name := filepath.Join(dir, fmt.Sprintf("f%02d.txt", i))
		if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		// Distinct mtimes: files are read oldest first.
		mt := base.Add(time.Duration(i) * time.Second)
		if err := os.Chtimes(name, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

func TestSourceOpensAheadInOrder(t *testing.T) {
	for _, ahead := range []int{0, 3} {
		t.Run(fmt.Sprintf("OpenAhead=%d", ahead), func(t *testing.T) {
			dir := t.TempDir()
			want := writeFiles(t, dir, 8, 3)
			fsys := &slowFS{delay: 20 * time.Millisecond}
			s := remoteSource(t, fsys, dir, statestore.Memory(), func(o *SourceOptions) { o.OpenAhead = ahead })
			got, ids, errs := drain(t, s)
			if len(errs) > 0 {
				t.Fatalf("read errors: %v", errs)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("read %v, want %v (files in mtime order, records in file order)", got, want)
			}
			if len(ids) != len(want) {
				t.Fatalf("%d distinct IDs for %d records", len(ids), len(want))
			}
			switch max := int(fsys.max.Load()); {
			case ahead == 0 && max != 1:
				t.Fatalf("without OpenAhead, %d calls ran at once", max)
			case ahead > 0 && (max < 2 || max > ahead+1):
				t.Fatalf("with OpenAhead %d, at most %d calls ran at once, want 2..%d", ahead, max, ahead+1)
			}
			if o, c := fsys.opens.Load(), fsys.closesN.Load(); o != c {
				t.Fatalf("%d files opened, %d closed", o, c)
			}
		})
	}
}

func TestSourceCloseReleasesFilesOpenedAhead(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, 6, 4)
	fsys := &slowFS{delay: 5 * time.Millisecond}
	s := remoteSource(t, fsys, dir, statestore.Memory(), func(o *SourceOptions) { o.OpenAhead = 4 })
	if _, err := s.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for fsys.opens.Load() != fsys.closesN.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("%d files opened, %d closed after Close", fsys.opens.Load(), fsys.closesN.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSourceFilterLeavesFilesForLater(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, 2, 1)
	if err := os.WriteFile(filepath.Join(dir, "big.txt"), []byte(strings.Repeat("x", 100)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := statestore.Memory()
	var maxSize atomic.Int64
	maxSize.Store(50)
	tune := func(o *SourceOptions) {
		o.Filter = func(rel string, fi fs.FileInfo) bool { return fi.Size() <= maxSize.Load() }
	}
	got, _, _ := drain(t, remoteSource(t, OSFS{}, dir, st, tune))
	if strings.Join(got, ",") != "f00-l00,f01-l00" {
		t.Fatalf("read %v, want the two small files only", got)
	}
	maxSize.Store(1000)
	got, _, _ = drain(t, remoteSource(t, OSFS{}, dir, st, tune))
	if len(got) != 1 || len(got[0]) != 100 {
		t.Fatalf("once it passes the filter, read %v, want the big file alone", got)
	}
}

// TestSourceConnectionLostMidFile checks that a read failing with
// ErrNotConnected does not fail the file: the records before it are
// delivered, and the file is read again from its checkpoint, every record
// once, with the IDs of the first attempt.
func TestSourceConnectionLostMidFile(t *testing.T) {
	for _, codec := range []string{"test-lines", "none"} {
		t.Run(codec, func(t *testing.T) {
			dir := t.TempDir()
			want := writeFiles(t, dir, 1, 10)
			fsys := &slowFS{}
			fsys.failAfter.Store(35) // mid-way through the fifth line
			st := statestore.Memory()
			s := remoteSource(t, fsys, dir, st, func(o *SourceOptions) {
				o.FailedDir = "failed"
				if codec == "none" {
					o.Codec, o.MaxRawBytes = nil, 1<<20
				}
			})
			var lines []string
			ids := map[string]int{}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			lost := 0
			for {
				b, err := s.Read(ctx)
				if errors.Is(err, adapters.ErrEndOfInput) {
					break
				}
				if errors.Is(err, adapters.ErrNotConnected) && lost == 0 {
					lost++ // the engine would call Connect now
					continue
				}
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				for _, m := range b.Messages {
					ids[m.ID]++
					if m.Raw != nil {
						lines = append(lines, strings.Split(strings.TrimSuffix(string(m.Raw), "\n"), "\n")...)
					} else {
						lines = append(lines, m.Record["line"].(string))
					}
				}
				if err := b.Ack(ctx, nil); err != nil {
					t.Fatal(err)
				}
			}
			if fsys.failedReads.Load() == 0 || lost != 1 {
				t.Fatalf("%d failed reads, %d ErrNotConnected from Read; want the loss reported once", fsys.failedReads.Load(), lost)
			}
			if strings.Join(lines, ",") != strings.Join(want, ",") {
				t.Fatalf("read %v, want every record once: %v", lines, want)
			}
			for id, n := range ids {
				if n != 1 {
					t.Fatalf("ID %s emitted %d times", id, n)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "failed")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the file was treated as undecodable (failed_dir exists: %v)", err)
			}
		})
	}
}

func TestWriterIfExistsFailAndAppend(t *testing.T) {
	type fsKind struct {
		name string
		wrap func(*RootFS) WriteFS
	}
	kinds := []fsKind{
		{"stat-then-rename", func(r *RootFS) WriteFS { return r }},
		{"no-replace-rename", func(r *RootFS) WriteFS { return noReplaceFS{r} }},
	}
	for _, k := range kinds {
		t.Run(k.name+"/fail", func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte("theirs\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			w := testWriter(t, dir, IfExistsFail, k.wrap)
			err := w.Write(context.Background(), lineMsgs("a", "b"))
			if err != nil {
				t.Fatal(err)
			}
			err = w.Close(context.Background())
			if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), `"out.txt"`) {
				t.Fatalf("Close publishing over an existing file: %v, want an error wrapping fs.ErrExist naming it", err)
			}
			if got := readTree(t, dir); got["out.txt"] != "theirs\n" || len(got) != 2 {
				t.Fatalf("files = %v, want the existing file untouched and the data in a temp file", got)
			}
			// Once the name is free, a new writer publishes the leftover.
			if err := os.Rename(filepath.Join(dir, "out.txt"), filepath.Join(dir, "moved.txt")); err != nil {
				t.Fatal(err)
			}
			w2 := testWriter(t, dir, IfExistsFail, k.wrap)
			if err := w2.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := readTree(t, dir); got["out.txt"] != "a\nb\n" || len(got) != 2 {
				t.Fatalf("after freeing the name, files = %v", got)
			}
		})
		t.Run(k.name+"/append", func(t *testing.T) {
			dir := t.TempDir()
			w := testWriter(t, dir, IfExistsAppend, k.wrap)
			for _, batch := range [][]string{{"a", "b"}, {"c"}} {
				if err := w.Write(context.Background(), lineMsgs(batch...)); err != nil {
					t.Fatal(err)
				}
				if err := w.publishAll(); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := readTree(t, dir); got["out.txt"] != "a\nb\nc\n" || len(got) != 1 {
				t.Fatalf("files = %v, want one file with both publications appended", got)
			}
		})
	}
}

// publishAll publishes every open file, as a roll would.
func (w *Writer) publishAll() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, of := range w.files {
		if err := w.publish(context.Background(), of); err != nil {
			return err
		}
	}
	return nil
}

type noReplaceFS struct{ *RootFS }

func (n noReplaceFS) RenameNoReplace(oldname, newname string) error {
	if _, err := n.Stat(newname); err == nil {
		return fs.ErrExist
	}
	return n.Rename(oldname, newname)
}

func testWriter(t *testing.T, dir, ifExists string, wrap func(*RootFS) WriteFS) *Writer {
	t.Helper()
	tmpl, err := transform.CompileTemplate("out.txt")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	w, err := NewWriter(WriterOptions{
		Open: func(context.Context) (WriteFS, error) {
			mu.Lock()
			defer mu.Unlock()
			r, err := OpenRoot(dir)
			if err != nil {
				return nil, err
			}
			return wrap(r), nil
		},
		Path: tmpl, Codec: filekittest.Codec("test-lines"), IfExists: ifExists,
		Resources: adapters.Resources{Pipeline: "p", Name: "w"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

func lineMsgs(lines ...string) []adapters.Message {
	out := make([]adapters.Message, len(lines))
	for i, l := range lines {
		out[i] = adapters.Message{ID: l, Record: adapters.Record{"line": l}}
	}
	return out
}

// readTree returns the files under dir by relative path, with content.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var _ io.Reader = (*lossyFile)(nil)
