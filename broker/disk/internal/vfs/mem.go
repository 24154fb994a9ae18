package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"strings"
	"sync"
	"time"
)

// Mem is an in-memory file system for crash tests. It keeps, beside what
// every file and directory holds now, what an fsync last made durable. Crash
// throws away what was not durable: directory entries (created, renamed or
// removed) that no SyncDir of their directory covered, and file data written
// after the file's last Sync, of which a random prefix survives, possibly
// with holes of zeros (a torn write). Handles opened before a crash fail
// afterwards, and locks are released, as when a process dies.
type Mem struct {
	mu       sync.Mutex
	root     *memNode
	rng      *rand.Rand
	gen      int
	locks    map[string]bool
	syncErr  error
	syncs    int
	failFrom int
	crashIn  int // mutating calls left before a crash; 0: none planned
}

type memNode struct {
	dir     bool
	entries map[string]*memNode // now
	durable map[string]*memNode // as of the last SyncDir
	data    []byte
	synced  []byte
}

func newDir() *memNode {
	return &memNode{dir: true, entries: map[string]*memNode{}, durable: map[string]*memNode{}}
}

// NewMem returns an empty in-memory file system whose crashes draw from
// seed.
func NewMem(seed uint64) *Mem {
	return &Mem{root: newDir(), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), locks: map[string]bool{}}
}

var _ FS = (*Mem)(nil)

// FailSyncAfter makes every Sync and SyncDir after the next n ones fail with
// err (nil to stop failing).
func (m *Mem) FailSyncAfter(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.syncErr, m.failFrom, m.syncs = err, n, 0
}

func (m *Mem) syncFailure() error {
	if m.syncErr == nil {
		return nil
	}
	m.syncs++
	if m.syncs > m.failFrom {
		return m.syncErr
	}
	return nil
}

// Crash simulates a power loss: see Mem.
func (m *Mem) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashLocked()
}

// CrashAfter plans a crash right after the n-th next mutating call
// (create, write, sync, truncate, rename, remove, directory sync): that call
// takes effect and returns as usual, and the crash follows it at once.
func (m *Mem) CrashAfter(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashIn = n
}

// Crashed reports how many crashes happened.
func (m *Mem) Crashed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// mutated counts a mutating call; callers hold m.mu.
func (m *Mem) mutated() {
	if m.crashIn > 0 {
		m.crashIn--
		if m.crashIn == 0 {
			m.crashLocked()
		}
	}
}

// Proc returns a view of m for one process: once a crash happened, every
// call through it fails, as the process died with the machine.
func (m *Mem) Proc() FS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &memProc{m: m, gen: m.gen}
}

func (m *Mem) crashLocked() {
	m.gen++
	m.locks = map[string]bool{}
	m.crashDir(m.root, map[*memNode]bool{})
}

func (m *Mem) crashDir(d *memNode, seen map[*memNode]bool) {
	d.entries = make(map[string]*memNode, len(d.durable))
	for name, n := range d.durable {
		d.entries[name] = n
		if seen[n] {
			continue
		}
		seen[n] = true
		if n.dir {
			m.crashDir(n, seen)
			continue
		}
		m.crashFile(n)
	}
}

func (m *Mem) crashFile(n *memNode) {
	s := n.synced
	if len(n.data) < len(s) || string(n.data[:len(s)]) != string(s) {
		n.data = append([]byte(nil), s...)
		return
	}
	extra := n.data[len(s):]
	keep := 0
	if len(extra) > 0 {
		keep = m.rng.IntN(len(extra) + 1)
	}
	out := append(append([]byte(nil), s...), extra[:keep]...)
	if keep > 0 && m.rng.IntN(3) == 0 {
		// a torn write: some sectors of the tail never reached the disk
		from := len(s) + m.rng.IntN(keep)
		to := from + m.rng.IntN(len(out)-from+1)
		clear(out[from:to])
	}
	n.data = out
	n.synced = append([]byte(nil), out...)
}

func split(name string) []string {
	name = path.Clean("/" + name)
	if name == "/" {
		return nil
	}
	return strings.Split(name[1:], "/")
}

// lookup returns the node at name and its parent directory.
func (m *Mem) lookup(name string) (parent, n *memNode, base string, err error) {
	parts := split(name)
	if len(parts) == 0 {
		return nil, m.root, "", nil
	}
	d := m.root
	for _, p := range parts[:len(parts)-1] {
		next, ok := d.entries[p]
		if !ok || !next.dir {
			return nil, nil, "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		d = next
	}
	base = parts[len(parts)-1]
	return d, d.entries[base], base, nil
}

func (m *Mem) Create(name string) (File, error) { return m.create(-1, name) }

func (m *Mem) create(gen int, name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen >= 0 && gen != m.gen {
		return nil, errCrashed
	}
	defer m.mutated()
	parent, n, base, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	if n != nil && n.dir {
		return nil, &fs.PathError{Op: "create", Path: name, Err: errors.New("is a directory")}
	}
	if n == nil {
		n = &memNode{}
		parent.entries[base] = n
	}
	n.data = n.data[:0:0]
	return &memFile{m: m, n: n, name: name, gen: m.gen, write: true}, nil
}

func (m *Mem) OpenFile(name string, write bool) (File, error) { return m.openFile(-1, name, write) }

func (m *Mem) openFile(gen int, name string, write bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen >= 0 && gen != m.gen {
		return nil, errCrashed
	}
	_, n, _, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	if n == nil || n.dir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{m: m, n: n, name: name, gen: m.gen, write: write}, nil
}

func (m *Mem) ReadFile(name string) ([]byte, error) { return m.readFile(-1, name) }

func (m *Mem) readFile(gen int, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen >= 0 && gen != m.gen {
		return nil, errCrashed
	}
	_, n, _, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	if n == nil || n.dir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), n.data...), nil
}

func (m *Mem) Rename(oldname, newname string) error { return m.rename(-1, oldname, newname) }

func (m *Mem) rename(gen int, oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen >= 0 && gen != m.gen {
		return errCrashed
	}
	defer m.mutated()
	op, n, ob, err := m.lookup(oldname)
	if err != nil {
		return err
	}
	if n == nil {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	np, _, nb, err := m.lookup(newname)
	if err != nil {
		return err
	}
	delete(op.entries, ob)
	np.entries[nb] = n
	return nil
}

func (m *Mem) Remove(name string) error { return m.remove(-1, name) }

func (m *Mem) remove(gen int, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen >= 0 && gen != m.gen {
		return errCrashed
	}
	defer m.mutated()
	p, n, b, err := m.lookup(name)
	if err != nil {
		return err
	}
	if n == nil || p == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if n.dir && len(n.entries) > 0 {
		return &fs.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
	}
	delete(p.entries, b)
	return nil
}

func (m *Mem) MkdirAll(name string) error { return m.mkdirAll(-1, name) }

func (m *Mem) mkdirAll(gen int, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen >= 0 && gen != m.gen {
		return errCrashed
	}
	d := m.root
	for _, p := range split(name) {
		next, ok := d.entries[p]
		if !ok {
			next = newDir()
			d.entries[p] = next
			d.durable[p] = next // MkdirAll syncs the parent of what it creates
		} else if !next.dir {
			return &fs.PathError{Op: "mkdir", Path: name, Err: errors.New("not a directory")}
		}
		d = next
	}
	return nil
}

func (m *Mem) ReadDir(name string) ([]fs.DirEntry, error) { return m.readDir(-1, name) }

func (m *Mem) readDir(gen int, name string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen >= 0 && gen != m.gen {
		return nil, errCrashed
	}
	_, n, _, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	if n == nil || !n.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	out := make([]fs.DirEntry, 0, len(n.entries))
	for b, c := range n.entries {
		out = append(out, memEntry{name: b, dir: c.dir, size: int64(len(c.data))})
	}
	sortEntries(out)
	return out, nil
}

func (m *Mem) SyncDir(name string) error { return m.syncDir(-1, name) }

func (m *Mem) syncDir(gen int, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen >= 0 && gen != m.gen {
		return errCrashed
	}
	defer m.mutated()
	if err := m.syncFailure(); err != nil {
		return err
	}
	_, n, _, err := m.lookup(name)
	if err != nil {
		return err
	}
	if n == nil || !n.dir {
		return &fs.PathError{Op: "fsync", Path: name, Err: fs.ErrNotExist}
	}
	n.durable = make(map[string]*memNode, len(n.entries))
	for k, v := range n.entries {
		n.durable[k] = v
	}
	return nil
}

func (m *Mem) Lock(name string) (io.Closer, error) { return m.lockFile(-1, name) }

func (m *Mem) lockFile(gen int, name string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen >= 0 && gen != m.gen {
		return nil, errCrashed
	}
	key := path.Clean("/" + name)
	if m.locks[key] {
		return nil, fmt.Errorf("%w by this process", ErrLocked)
	}
	m.locks[key] = true
	return memLock{m: m, key: key, gen: m.gen}, nil
}

type memLock struct {
	m   *Mem
	key string
	gen int
}

func (l memLock) Close() error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.gen == l.m.gen {
		delete(l.m.locks, l.key)
	}
	return nil
}

type memFile struct {
	m      *Mem
	n      *memNode
	name   string
	gen    int
	write  bool
	closed bool
}

var errCrashed = errors.New("file system crashed since the file was opened")

func (f *memFile) check() error {
	if f.closed {
		return fs.ErrClosed
	}
	if f.gen != f.m.gen {
		return errCrashed
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	defer f.m.mutated()
	if err := f.check(); err != nil {
		return 0, err
	}
	if !f.write {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: errors.New("read-only")}
	}
	f.n.data = append(f.n.data, p...)
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	defer f.m.mutated()
	if err := f.check(); err != nil {
		return err
	}
	if err := f.m.syncFailure(); err != nil {
		return err
	}
	f.n.synced = append(f.n.synced[:0:0], f.n.data...)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	defer f.m.mutated()
	if err := f.check(); err != nil {
		return err
	}
	if size < int64(len(f.n.data)) {
		f.n.data = f.n.data[:size:size]
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	f.closed = true
	return nil
}

func (f *memFile) Name() string { return f.name }

type memEntry struct {
	name string
	dir  bool
	size int64
}

func (e memEntry) Name() string { return e.name }
func (e memEntry) IsDir() bool  { return e.dir }
func (e memEntry) Type() fs.FileMode {
	if e.dir {
		return fs.ModeDir
	}
	return 0
}
func (e memEntry) Info() (fs.FileInfo, error) { return memInfo(e), nil }

type memInfo memEntry

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return memEntry(i).Type() }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

// memProc is one process's view of a Mem.
type memProc struct {
	m   *Mem
	gen int
}

func (p *memProc) Create(name string) (File, error) { return p.m.create(p.gen, name) }

func (p *memProc) OpenFile(name string, write bool) (File, error) {
	return p.m.openFile(p.gen, name, write)
}

func (p *memProc) ReadFile(name string) ([]byte, error) { return p.m.readFile(p.gen, name) }

func (p *memProc) Rename(oldname, newname string) error { return p.m.rename(p.gen, oldname, newname) }

func (p *memProc) Remove(name string) error { return p.m.remove(p.gen, name) }

func (p *memProc) MkdirAll(name string) error { return p.m.mkdirAll(p.gen, name) }

func (p *memProc) ReadDir(name string) ([]fs.DirEntry, error) { return p.m.readDir(p.gen, name) }

func (p *memProc) SyncDir(name string) error { return p.m.syncDir(p.gen, name) }

func (p *memProc) Lock(name string) (io.Closer, error) { return p.m.lockFile(p.gen, name) }
