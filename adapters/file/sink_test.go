package file

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/adapters"
)

func jsonlLines(t testing.TB, name string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(readFile(t, name), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%s: bad line %q: %v", name, l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestSinkWritesAndPublishesOnClose(t *testing.T) {
	base := t.TempDir()
	s := newTestSink(t, map[string]any{"base_dir": base, "path": "out/{{ record.region }}.jsonl", "codec": "test-jsonl"}, newState())
	msgs := recs(4, func(i int) adapters.Record {
		return adapters.Record{"n": int64(i), "region": []string{"eu", "us"}[i%2]}
	})
	if err := s.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	for _, f := range tree(t, base) {
		if !strings.HasPrefix(filepath.Base(f), ".sluice-") {
			t.Fatalf("file %s published before Close", f)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got, want := strings.Join(tree(t, base), " "), "out/eu.jsonl out/us.jsonl"; got != want {
		t.Fatalf("files = %s, want %s", got, want)
	}
	if got := readFile(t, filepath.Join(base, "out/eu.jsonl")); got != "{\"n\":0,\"region\":\"eu\"}\n{\"n\":2,\"region\":\"eu\"}\n" {
		t.Fatalf("eu.jsonl = %q", got)
	}
	if err := s.Write(context.Background(), msgs); !errors.Is(err, adapters.ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
}

func TestSinkWriteBeforeConnect(t *testing.T) {
	s, err := newSink(decode(t, sinkSpec(), map[string]any{"base_dir": t.TempDir(), "path": "x", "codec": "test-jsonl"}), res(t, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), recs(1, func(int) adapters.Record { return adapters.Record{} })); !errors.Is(err, adapters.ErrNotConnected) {
		t.Fatalf("Write before Connect = %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSinkRolling(t *testing.T) {
	cases := []struct {
		name  string
		extra map[string]any
		n     int
		want  []int // records per published file, in publishing order
	}{
		{"records", map[string]any{"max_records": 3}, 7, []int{3, 3, 1}},
		// Each record is {"n":D} + newline = 8 bytes: 20 bytes roll after 3.
		{"bytes", map[string]any{"max_bytes": 20}, 7, []int{3, 3, 1}},
		{"none", map[string]any{}, 7, []int{7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			raw := map[string]any{"base_dir": base, "path": "o.jsonl", "codec": "test-jsonl"}
			for k, v := range tc.extra {
				raw[k] = v
			}
			s := newTestSink(t, raw, newState())
			msgs := recs(tc.n, func(i int) adapters.Record { return adapters.Record{"n": int64(i)} })
			// Two writes, to roll across batches too.
			if err := s.Write(context.Background(), msgs[:2]); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(context.Background(), msgs[2:]); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			names := []string{"o.jsonl", "o.1.jsonl", "o.2.jsonl", "o.3.jsonl"}
			if got := len(tree(t, base)); got != len(tc.want) {
				t.Fatalf("published %d files (%v), want %d", got, tree(t, base), len(tc.want))
			}
			next := 0
			for i, want := range tc.want {
				got := jsonlLines(t, filepath.Join(base, names[i]))
				if len(got) != want {
					t.Fatalf("%s has %d records, want %d", names[i], len(got), want)
				}
				for _, r := range got {
					if int(r["n"].(float64)) != next {
						t.Fatalf("%s: record %v, want n=%d", names[i], r, next)
					}
					next++
				}
			}
		})
	}
}

func TestSinkRollsAtMaxAgeWithoutWrites(t *testing.T) {
	base := t.TempDir()
	s := newTestSink(t, map[string]any{"base_dir": base, "path": "o.jsonl", "codec": "test-jsonl", "max_age": "50ms"}, newState())
	if err := s.Write(context.Background(), recs(2, func(i int) adapters.Record { return adapters.Record{"n": int64(i)} })); err != nil {
		t.Fatal(err)
	}
	eventually(t, "publish at max_age", func() bool {
		_, err := os.Stat(filepath.Join(base, "o.jsonl"))
		return err == nil
	})
	if got := len(jsonlLines(t, filepath.Join(base, "o.jsonl"))); got != 2 {
		t.Fatalf("published %d records, want 2", got)
	}
	if got := tree(t, base); len(got) != 1 {
		t.Fatalf("files after max_age roll: %v", got)
	}
}

func TestSinkConfinement(t *testing.T) {
	root := t.TempDir()
	base := filepath.Join(root, "base")
	outside := filepath.Join(root, "outside")
	os.MkdirAll(base, 0o755)
	os.MkdirAll(outside, 0o755)
	if err := os.Symlink(outside, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	s := newTestSink(t, map[string]any{"base_dir": base, "path": "{{ record.p }}", "codec": "test-jsonl"}, newState())
	paths := []string{"ok/a.jsonl", "../escape.jsonl", "/etc/abs.jsonl", "a/../../b.jsonl", "link/x.jsonl", "fine.jsonl"}
	msgs := recs(len(paths), func(i int) adapters.Record { return adapters.Record{"p": paths[i]} })
	err := s.Write(context.Background(), msgs)
	var be *adapters.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a BatchError", err)
	}
	for i, p := range paths {
		ferr, failed := be.Failed[i]
		wantFail := i >= 1 && i <= 4
		if failed != wantFail {
			t.Errorf("path %q: failed=%v (%v), want failed=%v", p, failed, ferr, wantFail)
			continue
		}
		if failed && adapters.KindOf(ferr) != adapters.Permanent {
			t.Errorf("path %q: error %v is %s, want permanent", p, ferr, adapters.KindOf(ferr))
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, outside); len(got) != 0 {
		t.Fatalf("files written outside base_dir: %v", got)
	}
	if _, err := os.Stat(filepath.Join(root, "escape.jsonl")); err == nil {
		t.Fatal("escape.jsonl written outside base_dir")
	}
	if got, want := strings.Join(tree(t, base), " "), "fine.jsonl link ok/a.jsonl"; got != want {
		t.Fatalf("files = %q, want %q", got, want)
	}
}

func TestSinkEncodeErrorIsPermanentAndLeavesNoTrace(t *testing.T) {
	base := t.TempDir()
	s := newTestSink(t, map[string]any{"base_dir": base, "path": "o.txt", "codec": "test-lines"}, newState())
	msgs := []adapters.Message{{Record: adapters.Record{"line": "a"}}, {Record: adapters.Record{"other": 1}}, {Record: adapters.Record{"line": "b"}}}
	err := s.Write(context.Background(), msgs)
	var be *adapters.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[1] == nil || adapters.KindOf(be.Failed[1]) != adapters.Permanent {
		t.Fatalf("Write = %v, want message 1 failed permanently", err)
	}
	s.Close(context.Background())
	if got := readFile(t, filepath.Join(base, "o.txt")); got != "a\nb\n" {
		t.Fatalf("o.txt = %q", got)
	}
}

func TestSinkDoneFileAndOverwrite(t *testing.T) {
	base := t.TempDir()
	s := newTestSink(t, map[string]any{"base_dir": base, "path": "o.jsonl", "codec": "test-jsonl",
		"max_records": 2, "if_exists": "overwrite", "done_file": true, "done_suffix": ".ok"}, newState())
	if err := s.Write(context.Background(), recs(4, func(i int) adapters.Record { return adapters.Record{"n": int64(i)} })); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tree(t, base), " "), "o.jsonl o.jsonl.ok"; got != want {
		t.Fatalf("files = %q, want %q", got, want)
	}
	if got := readFile(t, filepath.Join(base, "o.jsonl")); got != "{\"n\":2}\n{\"n\":3}\n" {
		t.Fatalf("o.jsonl = %q (want the second roll, overwritten)", got)
	}
}

// TestSinkRecoversTempFilesAfterCrash abandons a sink without Close (a
// crash), adds a torn, unacknowledged tail to its temp file, and checks that
// a new sink with the same state publishes exactly the acknowledged records
// with the codec's trailer.
func TestSinkRecoversTempFilesAfterCrash(t *testing.T) {
	base := t.TempDir()
	st := newState()
	raw := map[string]any{"base_dir": base, "path": "{{ record.d }}/o.json", "codec": "test-array"}
	crashed, err := newSink(decode(t, sinkSpec(), raw), res(t, st, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := crashed.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		msg := []adapters.Message{{Record: adapters.Record{"d": []string{"a", "b"}[i%2], "n": int64(i)}}}
		if err := crashed.Write(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	temps := tree(t, base)
	if len(temps) != 2 {
		t.Fatalf("temp files = %v", temps)
	}
	appendFile(t, filepath.Join(base, temps[0]), ",\n{\"n\":99, \"torn")

	s := newTestSink(t, raw, st)
	if got, want := strings.Join(tree(t, base), " "), "a/o.json b/o.json"; got != want {
		t.Fatalf("after recovery files = %q, want %q", got, want)
	}
	if got, want := readFile(t, filepath.Join(base, "a/o.json")), "[\n{\"d\":\"a\",\"n\":0},\n{\"d\":\"a\",\"n\":2}\n]\n"; got != want {
		t.Fatalf("a/o.json = %q, want %q", got, want)
	}
	if got, want := readFile(t, filepath.Join(base, "b/o.json")), "[\n{\"d\":\"b\",\"n\":1}\n]\n"; got != want {
		t.Fatalf("b/o.json = %q, want %q", got, want)
	}
	if kv, _ := st.List(context.Background(), ""); len(kv) != 0 {
		t.Fatalf("state after recovery = %v, want empty", kv)
	}
	// The new sink goes on writing beside the recovered files.
	if err := s.Write(context.Background(), []adapters.Message{{Record: adapters.Record{"d": "a", "n": int64(7)}}}); err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	if got := readFile(t, filepath.Join(base, "a/o.1.json")); got != "[\n{\"d\":\"a\",\"n\":7}\n]\n" {
		t.Fatalf("a/o.1.json = %q", got)
	}
}

// TestSinkAtomicPublish polls the directory while the sink rolls many files:
// every published file the poller opens must be complete.
func TestSinkAtomicPublish(t *testing.T) {
	base := t.TempDir()
	const perFile, files = 50, 40
	s := newTestSink(t, map[string]any{"base_dir": base, "path": "o.jsonl", "codec": "test-jsonl", "max_records": perFile}, newState())
	var stop atomic.Bool
	var checked atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			ents, _ := os.ReadDir(base)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					continue
				}
				f, err := os.Open(filepath.Join(base, e.Name()))
				if err != nil {
					continue
				}
				n := 0
				sc := bufio.NewScanner(f)
				for sc.Scan() {
					if !json.Valid(sc.Bytes()) {
						n = -1000
					}
					n++
				}
				f.Close()
				if n != perFile {
					select {
					case errc <- fmt.Errorf("published file %s seen with %d valid records, want %d", e.Name(), n, perFile):
					default:
					}
				}
				checked.Add(1)
			}
		}
	}()
	for i := range files * perFile / 10 {
		if err := s.Write(context.Background(), recs(10, func(j int) adapters.Record { return adapters.Record{"n": int64(i*10 + j)} })); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if got := len(tree(t, base)); got != files {
		t.Fatalf("published %d files, want %d", got, files)
	}
	if checked.Load() == 0 {
		t.Fatal("the poller checked no file")
	}
}

func TestSinkConcurrentWriters(t *testing.T) {
	base := t.TempDir()
	s := newTestSink(t, map[string]any{"base_dir": base, "path": "w{{ record.w }}.jsonl", "codec": "test-jsonl", "max_records": 7}, newState())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range 10 {
				msgs := recs(5, func(i int) adapters.Record { return adapters.Record{"w": int64(w % 2), "n": int64(b*5 + i)} })
				if err := s.Write(context.Background(), msgs); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	s.Close(context.Background())
	total := 0
	for _, f := range tree(t, base) {
		total += len(jsonlLines(t, filepath.Join(base, f)))
	}
	if total != 4*10*5 {
		t.Fatalf("wrote %d records, want %d", total, 200)
	}
}

func TestSinkRawPayloads(t *testing.T) {
	base := t.TempDir()
	s := newTestSink(t, map[string]any{"base_dir": base, "path": "{{ meta.name }}", "codec": "none", "max_records": 1}, newState())
	msgs := []adapters.Message{
		{Raw: []byte("first file\n"), Meta: map[string]string{"name": "a.bin"}},
		{Raw: []byte("second"), Meta: map[string]string{"name": "b.bin"}},
		{Record: adapters.Record{"x": 1}, Meta: map[string]string{"name": "c.bin"}},
	}
	err := s.Write(context.Background(), msgs)
	var be *adapters.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[2] == nil {
		t.Fatalf("Write = %v, want message 2 (no raw payload) failed", err)
	}
	if got := readFile(t, filepath.Join(base, "a.bin")) + readFile(t, filepath.Join(base, "b.bin")); got != "first file\nsecond" {
		t.Fatalf("raw files = %q", got)
	}
}

func TestSinkConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"base_dir": "/x", "path": "{{ record.a"}, "test.path"},
		{map[string]any{"path": "x"}, "test.base_dir: required"},
		{map[string]any{"base_dir": "/x", "path": "x", "if_exists": "append"}, "invalid value \"append\""},
	} {
		_, err := adapters.Decode(sinkSpec(), tc.raw, adapters.DecodeOptions{Path: "test"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%v) = %v, want %q", tc.raw, err, tc.want)
		}
	}
}

func TestSinkWaitsForContext(t *testing.T) {
	base := t.TempDir()
	s := newTestSink(t, map[string]any{"base_dir": base, "path": "o.jsonl", "codec": "test-jsonl"}, newState())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Write(ctx, recs(2, func(i int) adapters.Record { return adapters.Record{"n": int64(i)} }))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context = %v", err)
	}
}
