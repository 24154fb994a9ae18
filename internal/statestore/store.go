// Package statestore is the durable key/value store behind adapters.State on
// the disk: checkpoints of sources and sinks under DATA_DIR/state.
//
// The store is one journal file of framed records (length, CRC32C, op, key,
// value), replayed into memory at Open. Every Put and Delete appends a record
// and fdatasyncs before returning; concurrent calls share one write and one
// fsync (group commit: the first caller writes everything queued meanwhile). When the journal grows past twice the live
// data (and a minimum size), it is rewritten: snapshot to a temp file, fsync,
// rename over the journal, fsync the directory. A torn tail (a crash in the
// middle of an append) is cut off at the last valid record.
package statestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/adapters"
)

const (
	journalName = "state.journal"
	opPut       = 1
	opDelete    = 2
	minCompact  = 1 << 20
	headerSize  = 8 // length uint32 + crc uint32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Store is a durable key/value store. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	idle    *sync.Cond // signalled when a commit ends
	dir     string
	f       *os.File
	size    int64
	live    int64
	data    map[string][]byte
	closed  bool
	failed  error // a failed fsync: nothing may be written any more
	fsyncFn func(*os.File) error

	committing bool   // a caller is writing and syncing a batch
	cur        *batch // records waiting for the next commit
}

// batch is one group commit: the framed records of several calls, how to
// undo their effect on the map if the write fails, and its outcome.
type batch struct {
	buf  []byte
	undo []undo
	done chan struct{}
	err  error
}

type undo struct {
	key string
	old []byte
	had bool
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// Open opens (creating when needed) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	s := &Store{dir: dir, data: map[string][]byte{}, fsyncFn: (*os.File).Sync, cur: newBatch()}
	s.idle = sync.NewCond(&s.mu)
	path := filepath.Join(dir, journalName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	valid, err := s.replay(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state store: %w", err)
	}
	if st.Size() != valid {
		if err := f.Truncate(valid); err != nil {
			f.Close()
			return nil, fmt.Errorf("state store %s: cut torn tail: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("state store %s: fsync: %w", path, err)
		}
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	s.f, s.size = f, valid
	return s, nil
}

// replay loads the journal and returns the length of its valid prefix.
func (s *Store) replay(f *os.File) (int64, error) {
	buf, err := io.ReadAll(f)
	if err != nil {
		return 0, err
	}
	var off int64
	for {
		rest := buf[off:]
		if len(rest) < headerSize {
			return off, nil
		}
		n := binary.LittleEndian.Uint32(rest[0:4])
		sum := binary.LittleEndian.Uint32(rest[4:8])
		if int64(n) > int64(len(rest)-headerSize) || n < 3 {
			return off, nil
		}
		body := rest[headerSize : headerSize+int(n)]
		if crc32.Checksum(body, castagnoli) != sum {
			return off, nil
		}
		op := body[0]
		klen := int(binary.LittleEndian.Uint16(body[1:3]))
		if 3+klen > len(body) {
			return off, nil
		}
		key := string(body[3 : 3+klen])
		switch op {
		case opPut:
			s.setLive(key, bytes.Clone(body[3+klen:]))
		case opDelete:
			s.deleteLive(key)
		default:
			return off, nil
		}
		off += int64(headerSize + int(n))
	}
}

func (s *Store) setLive(key string, v []byte) {
	if old, ok := s.data[key]; ok {
		s.live -= int64(len(key) + len(old) + headerSize + 3)
	}
	s.data[key] = v
	s.live += int64(len(key) + len(v) + headerSize + 3)
}

func (s *Store) deleteLive(key string) {
	if old, ok := s.data[key]; ok {
		s.live -= int64(len(key) + len(old) + headerSize + 3)
		delete(s.data, key)
	}
}

func frame(op byte, key string, value []byte) []byte {
	n := 3 + len(key) + len(value)
	b := make([]byte, headerSize+n)
	body := b[headerSize:]
	body[0] = op
	binary.LittleEndian.PutUint16(body[1:3], uint16(len(key)))
	copy(body[3:], key)
	copy(body[3+len(key):], value)
	binary.LittleEndian.PutUint32(b[0:4], uint32(n))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(body, castagnoli))
	return b
}

// commit applies one change to the map, queues its record and returns once
// the record is durable. The first caller to find no commit under way
// becomes the leader: it writes and syncs every queued record, batch after
// batch, while the others wait for theirs.
func (s *Store) commit(op byte, key string, value []byte) error {
	if len(key) == 0 || len(key) > 0xFFFF {
		return fmt.Errorf("state store: key length %d out of range", len(key))
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return adapters.ErrClosed
	}
	if s.failed != nil {
		s.mu.Unlock()
		return s.failed
	}
	old, had := s.data[key]
	if op == opDelete && !had {
		s.mu.Unlock()
		return nil
	}
	b := s.cur
	b.buf = append(b.buf, frame(op, key, value)...)
	b.undo = append(b.undo, undo{key: key, old: old, had: had})
	if op == opPut {
		s.setLive(key, bytes.Clone(value))
	} else {
		s.deleteLive(key)
	}
	if !s.committing {
		s.committing = true
		for len(s.cur.buf) > 0 {
			next := s.cur
			s.cur = newBatch()
			err := s.failed
			if err == nil {
				s.mu.Unlock()
				err = s.write(next.buf)
				s.mu.Lock()
			}
			if err != nil {
				for i := len(next.undo) - 1; i >= 0; i-- {
					u := next.undo[i]
					if u.had {
						s.setLive(u.key, u.old)
					} else {
						s.deleteLive(u.key)
					}
				}
			} else {
				s.size += int64(len(next.buf))
			}
			next.err = err
			close(next.done)
		}
		if b.err == nil {
			if err := s.maybeCompact(); err != nil {
				b.err = err
			}
		}
		s.committing = false
		s.idle.Broadcast()
	}
	s.mu.Unlock()
	<-b.done
	return b.err
}

// write appends buf to the journal and syncs it. Only the commit leader
// calls it, without holding mu. A failed write is cut off so the journal
// never holds a torn record in the middle; a failed fsync is final.
func (s *Store) write(buf []byte) error {
	if _, err := s.f.Write(buf); err != nil {
		err = fmt.Errorf("state store: write: %w", err)
		if terr := s.f.Truncate(s.size); terr != nil {
			// a torn record could stay in the middle of the journal and
			// hide every later one at the next open: write nothing more
			s.mu.Lock()
			s.failed = fmt.Errorf("%w; cutting it off failed too, stopping: %v", err, terr)
			s.mu.Unlock()
			return s.failed
		}
		_, _ = s.f.Seek(s.size, io.SeekStart)
		return err
	}
	if err := s.fsyncFn(s.f); err != nil {
		// A failed fsync cannot be retried safely; the caller must stop.
		err = fmt.Errorf("state store: fsync failed, stopping: %w", err)
		s.mu.Lock()
		s.failed = err
		s.mu.Unlock()
		return err
	}
	return nil
}

// Put stores value under key and returns once it is durable.
func (s *Store) Put(key string, value []byte) error { return s.commit(opPut, key, value) }

// Delete removes key and returns once that is durable.
func (s *Store) Delete(key string) error { return s.commit(opDelete, key, nil) }

// Get returns the value under key.
func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	return bytes.Clone(v), ok
}

// List returns every key with prefix and its value.
func (s *Store) List(prefix string) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range s.data {
		if strings.HasPrefix(k, prefix) {
			out[k] = bytes.Clone(v)
		}
	}
	return out
}

func (s *Store) maybeCompact() error {
	if s.size < minCompact || s.size < 2*s.live {
		return nil
	}
	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tmp := filepath.Join(s.dir, journalName+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("state store: compact: %w", err)
	}
	var size int64
	for _, k := range keys {
		rec := frame(opPut, k, s.data[k])
		if _, err := f.Write(rec); err != nil {
			f.Close()
			os.Remove(tmp)
			return fmt.Errorf("state store: compact: %w", err)
		}
		size += int64(len(rec))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		s.failed = fmt.Errorf("state store: compact: fsync failed, stopping: %w", err)
		return s.failed
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, journalName)); err != nil {
		f.Close()
		return fmt.Errorf("state store: compact: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		s.failed = err
		return err
	}
	s.f.Close()
	s.f, s.size = f, size
	return nil
}

// Close closes the journal. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.committing {
		s.idle.Wait()
	}
	if s.f == nil {
		return nil
	}
	s.closed = true
	err := s.f.Close()
	s.f = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("state store: fsync dir %s: %w", dir, err)
	}
	return nil
}

// Namespace returns an adapters.State whose keys live under prefix, for one
// adapter instance (e.g. "orders/partner-drop/").
func (s *Store) Namespace(prefix string) adapters.State { return &namespace{s: s, prefix: prefix} }

type namespace struct {
	s      *Store
	prefix string
}

var _ adapters.State = (*namespace)(nil)

func (n *namespace) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, ok := n.s.Get(n.prefix + key)
	return v, ok, nil
}

func (n *namespace) Put(ctx context.Context, key string, value []byte) error {
	return n.s.Put(n.prefix+key, value)
}

func (n *namespace) Delete(ctx context.Context, key string) error {
	return n.s.Delete(n.prefix + key)
}

func (n *namespace) List(ctx context.Context, prefix string) (map[string][]byte, error) {
	all := n.s.List(n.prefix + prefix)
	out := make(map[string][]byte, len(all))
	for k, v := range all {
		out[strings.TrimPrefix(k, n.prefix)] = v
	}
	return out, nil
}

// Memory returns an in-memory adapters.State, for tests and the memory
// broker's opt-in mode.
func Memory() adapters.State { return &memState{data: map[string][]byte{}} }

type memState struct {
	mu   sync.Mutex
	data map[string][]byte
}

func (m *memState) Get(ctx context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.data[key]
	return bytes.Clone(v), ok, nil
}

func (m *memState) Put(ctx context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[key] = bytes.Clone(value)
	return nil
}

func (m *memState) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.data, key)
	return nil
}

func (m *memState) List(ctx context.Context, prefix string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range m.data {
		if strings.HasPrefix(k, prefix) {
			out[k] = bytes.Clone(v)
		}
	}
	return out, nil
}
