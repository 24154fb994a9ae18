package sftp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	"github.com/sluicehq/sluice/internal/testenv"
)

func lineMsgs(prefix string, lo, hi int) []adapters.Message {
	out := make([]adapters.Message, 0, hi-lo)
	for i := lo; i < hi; i++ {
		l := fmt.Sprintf("%s%d", prefix, i)
		out = append(out, adapters.Message{ID: l, Record: adapters.Record{"line": l, "dir": fmt.Sprint(i % 3)}})
	}
	return out
}

func write(t *testing.T, s adapters.Sink, msgs []adapters.Message) {
	t.Helper()
	if err := s.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

// TestSinkPublishesAtomically writes many rolled files while a reader
// polls the target directory on the server's disk: every file it sees
// under its final name is complete, and so is every file whose done
// marker it sees.
func TestSinkPublishesAtomically(t *testing.T) {
	const per, files = 200, 15
	srv, dir := serverDir(t, "out")
	want := numbered("rec-", 0, per)
	sink := openSink(t, conf(srv, "base_dir", dir, "path", "data.txt", "codec", "lines", "max_records", per, "done_file", true), adaptertest.MemoryState())

	var stop atomic.Bool
	var checked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				n := e.Name()
				if strings.HasPrefix(n, ".") {
					continue
				}
				data := strings.TrimSuffix(n, ".done")
				b, err := os.ReadFile(filepath.Join(dir, data))
				if err != nil {
					if strings.HasSuffix(n, ".done") {
						errs <- fmt.Errorf("marker %s exists but its file does not: %v", n, err)
						return
					}
					continue // renamed away between the listing and the read: cannot happen, but is not partial
				}
				if string(b) != want {
					errs <- fmt.Errorf("%s seen with %d bytes, want the complete %d", data, len(b), len(want))
					return
				}
				checked.Add(1)
			}
		}
	}()
	for f := 0; f < files; f++ {
		for lo := 0; lo < per; lo += 50 {
			write(t, sink, lineMsgs("rec-", lo, lo+50))
		}
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	got := tree(t, dir)
	if len(got) != 2*files {
		t.Fatalf("published %v, want %d files with their markers", got, files)
	}
	for _, n := range got {
		if !strings.HasSuffix(n, ".done") && readFile(t, filepath.Join(dir, n)) != want {
			t.Fatalf("%s is incomplete", n)
		}
	}
	if checked.Load() == 0 {
		t.Fatal("the reader never saw a published file: the test tests nothing")
	}
}

func TestSinkLayoutAndModes(t *testing.T) {
	srv := testenv.SSHD(t)
	t.Run("template, mkdir -p and file_mode", func(t *testing.T) {
		dir := filepath.Join(srv.Root, "layout")
		sink := openSink(t, conf(srv, "base_dir", dir, "path", "a/{{ record.dir }}/b/out.txt", "codec", "lines", "file_mode", "0640"), adaptertest.MemoryState())
		write(t, sink, lineMsgs("r", 0, 6))
		if err := sink.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(tree(t, dir), " "); got != "a/0/b/out.txt a/1/b/out.txt a/2/b/out.txt" {
			t.Fatalf("tree = %s", got)
		}
		if got := readFile(t, filepath.Join(dir, "a/1/b/out.txt")); got != "r1\nr4\n" {
			t.Fatalf("a/1/b/out.txt = %q", got)
		}
		fi, err := os.Stat(filepath.Join(dir, "a/0/b/out.txt"))
		if err != nil || fi.Mode().Perm() != 0o640 {
			t.Fatalf("mode %v (%v), want 0640", fi.Mode(), err)
		}
	})
	cases := []struct {
		ifExists string
		want     map[string]string
	}{
		{"overwrite", map[string]string{"out.txt": "n0\nn1\n"}},
		{"rename_new", map[string]string{"out.txt": "old\n", "out.1.txt": "n0\nn1\n"}},
		{"append", map[string]string{"out.txt": "old\nn0\nn1\n"}},
	}
	for _, tc := range cases {
		t.Run("if_exists "+tc.ifExists, func(t *testing.T) {
			dir := filepath.Join(srv.Root, tc.ifExists)
			writeFile(t, filepath.Join(dir, "out.txt"), "old\n")
			sink := openSink(t, conf(srv, "base_dir", dir, "path", "out.txt", "codec", "lines", "if_exists", tc.ifExists), adaptertest.MemoryState())
			write(t, sink, lineMsgs("n", 0, 2))
			if err := sink.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, n := range tree(t, dir) {
				got[n] = readFile(t, filepath.Join(dir, n))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("files = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("if_exists fail", func(t *testing.T) {
		dir := filepath.Join(srv.Root, "fail")
		writeFile(t, filepath.Join(dir, "out.txt"), "old\n")
		st := adaptertest.MemoryState()
		raw := conf(srv, "base_dir", dir, "path", "out.txt", "codec", "lines", "if_exists", "fail")
		sink := openSink(t, raw, st)
		write(t, sink, lineMsgs("n", 0, 2))
		err := sink.Close(context.Background())
		if err == nil || !strings.Contains(err.Error(), "the file exists (if_exists: fail)") || !strings.Contains(err.Error(), `"out.txt"`) {
			t.Fatalf("Close publishing onto an existing file: %v", err)
		}
		if got := readFile(t, filepath.Join(dir, "out.txt")); got != "old\n" {
			t.Fatalf("the existing file became %q", got)
		}
		// Once the name is free, the next connection publishes the data.
		rename(t, filepath.Join(dir, "out.txt"), filepath.Join(dir, "moved.txt"))
		sink = openSink(t, raw, st)
		if err := sink.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(dir, "out.txt")); got != "n0\nn1\n" {
			t.Fatalf("published %q after the name was freed", got)
		}
	})
}

// TestSinkRollsByAge publishes a file max_age after it was opened, with
// no further writes.
func TestSinkRollsByAge(t *testing.T) {
	srv, dir := serverDir(t, "out")
	sink := openSink(t, conf(srv, "base_dir", dir, "path", "out.txt", "codec", "lines", "max_age", "200ms"), adaptertest.MemoryState())
	write(t, sink, lineMsgs("a", 0, 3))
	eventually(t, "the file published at max_age", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "out.txt"))
		return err == nil && string(b) == "a0\na1\na2\n"
	})
}

// TestSinkRecoversWithoutWrites loses the connection while a file waits
// for max_age and no write is to come: the sink dials again by itself and
// the file is published, whole, once sshd is back.
func TestSinkRecoversWithoutWrites(t *testing.T) {
	srv, dir := serverDir(t, "out")
	sink := openSink(t, conf(srv, "base_dir", dir, "path", "out.txt", "codec", "lines", "max_age", "300ms"), adaptertest.MemoryState())
	write(t, sink, lineMsgs("a", 0, 3))
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // max_age passes while the server is away
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the file published after the server came back", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "out.txt"))
		return err == nil && string(b) == "a0\na1\na2\n"
	})
}
