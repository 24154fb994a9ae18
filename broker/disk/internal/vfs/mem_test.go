package vfs

import (
	"bytes"
	"errors"
	"io/fs"
	"testing"
)

func mustWrite(t *testing.T, m FS, name string, data []byte, sync bool) File {
	t.Helper()
	f, err := m.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestMemCrashDropsUnsyncedEntries(t *testing.T) {
	m := NewMem(1)
	if err := m.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, m, "/d/synced-no-dirsync", []byte("x"), true)
	m.Crash()
	if _, err := m.ReadFile("/d/synced-no-dirsync"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a new file without a directory fsync survived: %v", err)
	}
	mustWrite(t, m, "/d/a", []byte("data"), true)
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if b, err := m.ReadFile("/d/a"); err != nil || string(b) != "data" {
		t.Fatalf("synced file with synced entry: %q, %v", b, err)
	}
	// a rename is durable only with a directory fsync
	if err := m.Rename("/d/a", "/d/b"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if _, err := m.ReadFile("/d/b"); err == nil {
		t.Fatal("a rename without a directory fsync survived")
	}
	if _, err := m.ReadFile("/d/a"); err != nil {
		t.Fatalf("the old name is gone after a crash that lost the rename: %v", err)
	}
	if err := m.Rename("/d/a", "/d/b"); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if _, err := m.ReadFile("/d/b"); err != nil {
		t.Fatalf("a synced rename was lost: %v", err)
	}
}

func TestMemCrashTearsUnsyncedData(t *testing.T) {
	kept, torn := 0, 0
	for seed := uint64(0); seed < 200; seed++ {
		m := NewMem(seed)
		_ = m.MkdirAll("/d")
		f := mustWrite(t, m, "/d/f", []byte("durable|"), true)
		_ = m.SyncDir("/d")
		tail := bytes.Repeat([]byte("u"), 512)
		if _, err := f.Write(tail); err != nil {
			t.Fatal(err)
		}
		m.Crash()
		b, err := m.ReadFile("/d/f")
		if err != nil || !bytes.HasPrefix(b, []byte("durable|")) {
			t.Fatalf("seed %d: synced data lost: %q, %v", seed, b, err)
		}
		rest := b[len("durable|"):]
		if len(rest) > len(tail) {
			t.Fatalf("seed %d: data grew", seed)
		}
		if len(rest) > 0 && len(rest) < len(tail) {
			kept++ // a prefix of the unsynced write survived, not all of it
		}
		if bytes.IndexByte(rest, 0) >= 0 {
			torn++
		}
		if _, err := f.Write([]byte("x")); err == nil {
			t.Fatal("a handle from before the crash still writes")
		}
	}
	if torn == 0 || kept == 0 {
		t.Fatalf("200 crashes should cut some unsynced tails short and tear some: cut %d, torn %d", kept, torn)
	}
}

func TestMemProcDiesWithTheCrash(t *testing.T) {
	m := NewMem(1)
	p := m.Proc()
	if err := p.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	m.CrashAfter(1)
	f, err := p.Create("/d/f") // the crash follows the create
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("a handle works after the crash")
	}
	if err := p.SyncDir("/d"); err == nil {
		t.Fatal("a process view works after the crash")
	}
	if m.Crashed() != 1 {
		t.Fatalf("crashes: %d", m.Crashed())
	}
	if _, err := m.Proc().ReadDir("/d"); err != nil {
		t.Fatalf("a new process view: %v", err)
	}
}

func TestMemLockAndSyncFailure(t *testing.T) {
	m := NewMem(1)
	l, err := m.Lock("/LOCK")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lock("/LOCK"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	_ = l.Close()
	if _, err := m.Lock("/LOCK"); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	boom := errors.New("EIO")
	m.FailSyncAfter(1, boom)
	f := mustWrite(t, m, "/f", []byte("a"), true)
	if err := f.Sync(); !errors.Is(err, boom) {
		t.Fatalf("want the injected error, got %v", err)
	}
}
