package statestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPutGetDeleteSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ns := s.Namespace("p/src/")
	ctx := context.Background()
	if err := ns.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := ns.Put(ctx, "b", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := ns.Put(ctx, "a", []byte("3")); err != nil {
		t.Fatal(err)
	}
	if err := ns.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // idempotent

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ns = s.Namespace("p/src/")
	v, ok, _ := ns.Get(ctx, "a")
	if !ok || string(v) != "3" {
		t.Fatalf("a = %q, %v; want 3", v, ok)
	}
	if _, ok, _ := ns.Get(ctx, "b"); ok {
		t.Fatal("b survived its delete")
	}
	all, _ := ns.List(ctx, "")
	if len(all) != 1 || string(all["a"]) != "3" {
		t.Fatalf("List = %v", all)
	}
	if other, _ := s.Namespace("q/").List(ctx, ""); len(other) != 0 {
		t.Fatalf("namespaces leak: %v", other)
	}
}

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := s.Put("k"+strconv.Itoa(i), []byte("v"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(dir, journalName)
	st, _ := os.Stat(path)
	full := st.Size()
	// Cut at every offset inside the last record: all earlier keys survive.
	rec := int64(len(frame(opPut, "k9", []byte("v9"))))
	for cut := full - rec + 1; cut < full; cut++ {
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		for i := 0; i < 9; i++ {
			if v, ok := s.Get("k" + strconv.Itoa(i)); !ok || string(v) != "v"+strconv.Itoa(i) {
				t.Fatalf("cut %d: k%d = %q %v", cut, i, v, ok)
			}
		}
		if _, ok := s.Get("k9"); ok {
			t.Fatalf("cut %d: torn record k9 was read", cut)
		}
		// New writes after recovery land after the valid prefix and survive.
		if err := s.Put("k9", []byte("v9")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, _ = Open(dir)
		if v, ok := s.Get("k9"); !ok || string(v) != "v9" {
			t.Fatalf("cut %d: rewrite lost", cut)
		}
		s.Close()
		st, _ := os.Stat(path)
		full = st.Size()
	}
}

func TestCorruptRecordStopsReplayThere(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	_ = s.Put("a", []byte("1"))
	_ = s.Put("b", []byte("2"))
	s.Close()
	path := filepath.Join(dir, journalName)
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 0xFF // flip a bit in b's value
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.Get("a"); !ok {
		t.Fatal("a lost")
	}
	if _, ok := s.Get("b"); ok {
		t.Fatal("corrupt b was accepted")
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 4096)
	for i := 0; i < 1000; i++ {
		if err := s.Put("same", val); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put("other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, journalName))
	if st.Size() > 2*minCompact {
		t.Fatalf("journal not compacted: %d bytes", st.Size())
	}
	s.Close()
	s, _ = Open(dir)
	defer s.Close()
	if v, ok := s.Get("same"); !ok || len(v) != 4096 {
		t.Fatal("value lost by compaction")
	}
	if v, _ := s.Get("other"); string(v) != "x" {
		t.Fatal("other lost by compaction")
	}
}

func TestFsyncFailureIsFatal(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boom := errors.New("EIO")
	s.fsyncFn = func(*os.File) error { return boom }
	if err := s.Put("a", []byte("1")); !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want the fsync error", err)
	}
	s.fsyncFn = func(*os.File) error { return nil }
	if err := s.Put("b", []byte("2")); err == nil {
		t.Fatal("store kept accepting writes after a failed fsync")
	}
}

func TestMemoryState(t *testing.T) {
	m := Memory()
	ctx := context.Background()
	_ = m.Put(ctx, "x/1", []byte("a"))
	_ = m.Put(ctx, "y/1", []byte("b"))
	l, _ := m.List(ctx, "x/")
	if len(l) != 1 {
		t.Fatalf("List = %v", l)
	}
	_ = m.Delete(ctx, "x/1")
	if _, ok, _ := m.Get(ctx, "x/1"); ok {
		t.Fatal("deleted key present")
	}
}

func TestConcurrentPutsShareCommits(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var syncs atomic.Int64
	s.fsyncFn = func(f *os.File) error {
		syncs.Add(1)
		time.Sleep(2 * time.Millisecond) // a disk with a real fsync latency
		return f.Sync()
	}
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Put(fmt.Sprintf("w%d/k%d", w, i), []byte(strconv.Itoa(i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := syncs.Load(); n >= writers*each {
		t.Errorf("%d fsyncs for %d puts: no group commit", n, writers*each)
	} else {
		t.Logf("%d puts, %d fsyncs", writers*each, n)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			if v, ok := s.Get(fmt.Sprintf("w%d/k%d", w, i)); !ok || string(v) != strconv.Itoa(i) {
				t.Fatalf("w%d/k%d = %q, %v after reopen", w, i, v, ok)
			}
		}
	}
}

func TestFailedWriteIsUndone(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put("k", []byte("old")); err != nil {
		t.Fatal(err)
	}
	s.f.Close() // every write now fails
	if err := s.Put("k", []byte("new")); err == nil {
		t.Fatal("a failed write reported success")
	}
	if v, _ := s.Get("k"); string(v) != "old" {
		t.Fatalf("k = %q after a failed write, want the old value", v)
	}
}
