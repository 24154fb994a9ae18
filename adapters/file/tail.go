package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/filekit"
)

// tailOptions configure a tailSource.
type tailOptions struct {
	dir          string
	matcher      *filekit.Matcher
	codec        adapters.Codec
	batchSize    int
	scanInterval time.Duration
	pollInterval time.Duration
	notify       <-chan struct{}
	res          adapters.Resources
}

// tailEntry is the durable position of a followed file, in State under
// tailPrefix + relative path.
type tailEntry struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Gen    int64  `json:"gen"` // truncations seen: part of the message IDs
	Offset int64  `json:"offset"`
	Line   int64  `json:"line"`
}

const tailPrefix = "tail/"

// chunkSize is how much a follower reads at once.
const chunkSize = 256 << 10

// maxLine bounds how long a line without a newline is waited for: beyond it
// the bytes are handed to the decoder as they are.
const maxLine = 16 << 20

// tailSource follows growing files (mode: tail). Each matching file is
// followed from a durable byte offset; only complete lines are decoded. A
// file renamed away (rotation) is read to its end, then the new file at the
// path is followed from its start; a file that shrinks (truncation) is read
// again from 0 with a new generation in its message IDs.
type tailSource struct {
	o      tailOptions
	log    *slog.Logger
	closed chan struct{}
	once   sync.Once

	readMu    sync.Mutex
	connected bool
	followers map[string]*follower
	order     []string
	rr        int
	nextScan  time.Time
	scanned   bool

	mu      sync.Mutex // guards entries and the follower fields marked so
	entries map[string]tailEntry
}

var _ adapters.Source = (*tailSource)(nil)

type follower struct {
	rel, name string
	f         *os.File
	dev, ino  uint64
	gen       int64
	ids       *filekit.IDMaker
	readPos   int64  // next byte to read from f
	pending   []byte // read, not yet decoded: a partial line
	pendOff   int64  // file offset of pending[0]
	pendLine  int64  // lines before pendOff
	dec       adapters.Decoder
	chunkOff  int64
	chunkLine int64
	recEnd    int64 // offset just past the last decoded record
	recLine   int64
	rotatedAt time.Time // the path names another file (or none) since then
	// draining: the file was rotated away; it is read to its end, its last
	// line included, then the path is followed anew.
	draining bool

	// Guarded by tailSource.mu.
	epoch int64
	acked tailEntry
}

func newTailSource(o tailOptions) *tailSource {
	log := o.res.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &tailSource{o: o, log: log, closed: make(chan struct{}), followers: map[string]*follower{}, entries: map[string]tailEntry{}}
}

func (s *tailSource) Connect(ctx context.Context) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	select {
	case <-s.closed:
		return adapters.ErrClosed
	default:
	}
	fi, err := os.Stat(s.o.dir)
	if err != nil {
		return fmt.Errorf("source directory %q: %w", s.o.dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("source path %q is not a directory", s.o.dir)
	}
	if s.connected {
		return nil
	}
	if st := s.o.res.State; st != nil {
		kv, err := st.List(ctx, tailPrefix)
		if err != nil {
			return fmt.Errorf("load state: %w", err)
		}
		s.mu.Lock()
		for k, v := range kv {
			var e tailEntry
			if err := json.Unmarshal(v, &e); err != nil {
				s.log.Warn("ignoring unreadable checkpoint", "key", k, "error", err)
				continue
			}
			s.entries[k[len(tailPrefix):]] = e
		}
		s.mu.Unlock()
	}
	s.connected = true
	return nil
}

func (s *tailSource) Close(context.Context) error {
	s.once.Do(func() { close(s.closed) })
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for _, f := range s.followers {
		f.close()
	}
	s.followers = map[string]*follower{}
	s.order = nil
	return nil
}

func (f *follower) close() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
}

// tailAck is where one follower stands at the end of a batch.
type tailAck struct {
	f     *follower
	epoch int64
	pos   tailEntry
}

func (s *tailSource) Read(ctx context.Context) (adapters.Batch, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if !s.connected {
		return adapters.Batch{}, adapters.ErrNotConnected
	}
	for {
		select {
		case <-s.closed:
			return adapters.Batch{}, adapters.ErrClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			return adapters.Batch{}, err
		}
		now := time.Now()
		if !s.scanned || (!s.o.res.Once && !now.Before(s.nextScan)) {
			if err := s.scan(ctx); err != nil {
				return adapters.Batch{}, err
			}
		}
		s.rewinds()
		msgs, acks := s.collect()
		if len(msgs) > 0 {
			return adapters.Batch{Messages: msgs, Ack: func(ctx context.Context, err error) error { return s.ack(ctx, acks, err) }}, nil
		}
		if changed := s.checkFiles(now); changed {
			continue
		}
		if s.o.res.Once {
			return adapters.Batch{}, adapters.ErrEndOfInput
		}
		if err := s.wait(ctx, min(s.o.pollInterval, time.Until(s.nextScan))); err != nil {
			return adapters.Batch{}, err
		}
	}
}

func (s *tailSource) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(max(d, time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return adapters.ErrClosed
	case <-s.o.notify:
	case <-t.C:
	}
	return nil
}

// scan discovers files to follow and forgets positions of files gone.
func (s *tailSource) scan(ctx context.Context) error {
	s.scanned = true
	s.nextScan = time.Now().Add(s.o.scanInterval)
	files, complete, err := filekit.ListFiles(filekit.OSFS{}, s.o.dir, s.o.matcher, nil, s.log)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, r := range sortedKeys(files) {
		if !s.o.matcher.Match(r) {
			continue
		}
		present[r] = true
		if s.followers[r] == nil {
			if err := s.follow(r); err != nil {
				s.log.Warn("cannot follow file", "path", filepath.Join(s.o.dir, r), "error", err)
			}
		}
	}
	if !complete {
		return nil
	}
	s.mu.Lock()
	var stale []string
	for rel := range s.entries {
		if !present[rel] && s.followers[rel] == nil {
			stale = append(stale, rel)
		}
	}
	s.mu.Unlock()
	for _, rel := range stale {
		if st := s.o.res.State; st != nil {
			if err := st.Delete(ctx, tailPrefix+rel); err != nil {
				return fmt.Errorf("delete state: %w", err)
			}
		}
		s.mu.Lock()
		delete(s.entries, rel)
		s.mu.Unlock()
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// follow starts following rel from its checkpoint.
func (s *tailSource) follow(rel string) error {
	f := &follower{rel: rel, name: filepath.Join(s.o.dir, filepath.FromSlash(rel))}
	s.mu.Lock()
	e, ok := s.entries[rel]
	s.mu.Unlock()
	if err := s.start(f, e, ok); err != nil {
		return err
	}
	s.followers[rel] = f
	s.order = append(s.order, rel)
	sort.Strings(s.order)
	return nil
}

// start opens the file of f at the position of checkpoint e (when has).
func (s *tailSource) start(f *follower, e tailEntry, has bool) error {
	f.close()
	fi, err := os.Stat(f.name)
	if err != nil {
		return err
	}
	dev, ino := fileID(fi)
	pos := tailEntry{Dev: dev, Ino: ino}
	name := f.name
	f.draining = false
	switch {
	case !has:
	case e.Dev == dev && e.Ino == ino:
		pos.Gen = e.Gen
		if fi.Size() >= e.Offset {
			pos.Offset, pos.Line = e.Offset, e.Line
		} else {
			pos.Gen++
			s.log.Info("file was truncated while stopped; reading it from the start", "path", f.name)
		}
	default:
		// Rotated while stopped: finish the old file if it is still here.
		if old := findInode(filepath.Dir(f.name), e.Dev, e.Ino); old != "" && e.Ino != 0 {
			name, pos, f.draining = old, e, true
		} else {
			s.log.Warn("file was replaced while stopped and the old one is gone; its unread end is lost", "path", f.name)
		}
	}
	fd, err := os.Open(name)
	if err != nil {
		return err
	}
	if _, err := fd.Seek(pos.Offset, io.SeekStart); err != nil {
		fd.Close()
		return err
	}
	f.f, f.dev, f.ino, f.gen = fd, pos.Dev, pos.Ino, pos.Gen
	f.readPos, f.pendOff, f.pendLine, f.pending, f.dec = pos.Offset, pos.Offset, pos.Line, nil, nil
	f.recEnd, f.recLine = pos.Offset, pos.Line
	f.rotatedAt = time.Time{}
	f.ids = filekit.NewIDMaker(s.o.res.Pipeline, s.o.res.Name, f.rel, strconv.FormatUint(f.dev, 10)+":"+strconv.FormatUint(f.ino, 10)+":"+strconv.FormatInt(f.gen, 10))
	s.mu.Lock()
	f.acked = pos
	s.mu.Unlock()
	return nil
}

// findInode returns the file of dir with the given device and inode.
func findInode(dir string, dev, ino uint64) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			if d, i := fileID(fi); d == dev && i == ino {
				return filepath.Join(dir, e.Name())
			}
		}
	}
	return ""
}

// collect gathers up to batchSize records from the followers, round robin.
func (s *tailSource) collect() ([]adapters.Message, []tailAck) {
	var msgs []adapters.Message
	var acks []tailAck
	var arena filekit.Arena
	now := time.Now()
	for i := 0; i < len(s.order) && len(msgs) < s.o.batchSize; i++ {
		f := s.followers[s.order[(s.rr+i)%len(s.order)]]
		n := len(msgs)
		msgs = s.pull(f, msgs, &arena, now, f.draining)
		if len(msgs) > n {
			s.mu.Lock()
			acks = append(acks, tailAck{f: f, epoch: f.epoch, pos: tailEntry{Dev: f.dev, Ino: f.ino, Gen: f.gen, Offset: f.recEnd, Line: f.recLine}})
			s.mu.Unlock()
		}
	}
	if len(s.order) > 0 {
		s.rr = (s.rr + 1) % len(s.order)
	}
	return msgs, acks
}

// pull decodes records of f into msgs until the batch is full or no complete
// line is left; final also decodes a last line without a newline.
func (s *tailSource) pull(f *follower, msgs []adapters.Message, arena *filekit.Arena, now time.Time, final bool) []adapters.Message {
	for len(msgs) < s.o.batchSize && f.f != nil {
		if f.dec == nil {
			chunk := f.readChunk(final)
			if chunk == nil {
				return msgs
			}
			f.dec = s.o.codec.NewDecoder(bytes.NewReader(chunk))
			f.chunkOff, f.chunkLine = f.pendOff-int64(len(chunk)), f.pendLine-int64(bytes.Count(chunk, nl))
			continue
		}
		rec, err := f.dec.Decode()
		if err == io.EOF {
			f.dec = nil
			continue
		}
		_, line, end := f.dec.Position()
		start := f.recEnd
		var rerr *adapters.RecordError
		if err != nil && !errors.As(err, &rerr) {
			// A line-oriented decoder gave up on this chunk: fail the rest
			// of it as one malformed record and go on after it.
			end, line = f.pendOff-f.chunkOff, f.pendLine-f.chunkLine
			rerr = &adapters.RecordError{Path: f.name, Offset: start, Line: f.recLine + 1, Err: err}
			f.dec = nil
		}
		f.recEnd, f.recLine = f.chunkOff+end, f.chunkLine+line
		m := adapters.Message{ID: f.ids.ID(start), Record: rec, Time: now, Meta: make(map[string]string, 6)}
		if rerr != nil {
			if rerr.Path == "" {
				rerr.Path = f.name
			}
			m.Record, m.Err = nil, rerr
		}
		m.Meta[adapters.MetaSource] = s.o.res.Name
		m.Meta[adapters.MetaPath] = f.name
		m.Meta[adapters.MetaLine] = arena.Int(f.recLine)
		m.Meta[adapters.MetaOffset] = arena.Int(start)
		msgs = append(msgs, m)
	}
	return msgs
}

var nl = []byte{'\n'}

// readChunk reads what f has and returns the complete lines not yet handed
// out (nil when there are none); final returns an unterminated last line too.
func (f *follower) readChunk(final bool) []byte {
	buf := make([]byte, len(f.pending), len(f.pending)+chunkSize)
	copy(buf, f.pending)
	n, _ := f.f.Read(buf[len(buf):cap(buf)])
	buf = buf[:len(buf)+n]
	f.readPos += int64(n)
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 && (final || len(buf) >= maxLine) && len(buf) > 0 {
		i = len(buf) - 1
	}
	if i < 0 {
		f.pending = buf
		return nil
	}
	chunk := buf[:i+1]
	f.pending = append([]byte(nil), buf[i+1:]...)
	f.pendOff += int64(len(chunk))
	f.pendLine += int64(bytes.Count(chunk, nl))
	if chunk[len(chunk)-1] != '\n' {
		f.pendLine++
	}
	return chunk
}

// checkFiles looks for rotation and truncation of followed files when they
// have no more data; it reports whether a follower changed.
func (s *tailSource) checkFiles(now time.Time) bool {
	changed := false
	for _, rel := range append([]string(nil), s.order...) {
		f := s.followers[rel]
		switch {
		case f.f == nil:
			continue
		case f.draining:
			// collect found nothing more in the old file: switch.
			if _, err := os.Stat(f.name); err != nil {
				s.drop(rel)
			} else {
				s.restartAt0(f, 0)
			}
		case s.truncated(f):
			s.log.Info("file was truncated; reading it from the start", "path", f.name)
			s.restartAt0(f, f.gen+1)
		default:
			if f.rotatedAt.IsZero() {
				fi, err := os.Stat(f.name)
				if dev, ino := fileIDOrZero(fi, err); err == nil && dev == f.dev && ino == f.ino {
					continue
				}
				f.rotatedAt = now
			}
			if !s.o.res.Once && now.Sub(f.rotatedAt) < s.o.pollInterval {
				continue // the writer may still add to the old file
			}
			// Read the old file to its end, its last line included.
			f.draining = true
		}
		changed = true
	}
	return changed
}

func (s *tailSource) truncated(f *follower) bool {
	fi, err := f.f.Stat()
	return err == nil && fi.Size() < f.readPos
}

// rewinds restarts the followers a failed batch left behind from their
// last checkpoint.
func (s *tailSource) rewinds() {
	for _, rel := range append([]string(nil), s.order...) {
		f := s.followers[rel]
		s.mu.Lock()
		stale, pos := f.epoch < 0, f.acked
		if stale {
			f.epoch = -f.epoch
		}
		s.mu.Unlock()
		if stale {
			if err := s.start(f, pos, true); err != nil {
				s.log.Warn("cannot reopen file", "path", f.name, "error", err)
				s.drop(rel)
			}
		}
	}
}

func fileIDOrZero(fi os.FileInfo, err error) (uint64, uint64) {
	if err != nil {
		return 0, 0
	}
	return fileID(fi)
}

// restartAt0 follows the file now at f's path from its start.
func (s *tailSource) restartAt0(f *follower, gen int64) {
	f.close()
	fi, err := os.Stat(f.name)
	if err != nil {
		s.drop(f.rel)
		return
	}
	dev, ino := fileID(fi)
	if err := s.start(f, tailEntry{Dev: dev, Ino: ino, Gen: gen}, true); err != nil {
		s.drop(f.rel)
	}
}

func (s *tailSource) drop(rel string) {
	if f := s.followers[rel]; f != nil {
		f.close()
	}
	delete(s.followers, rel)
	for i, r := range s.order {
		if r == rel {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

// ack commits the positions a batch reached, or rewinds its followers.
func (s *tailSource) ack(ctx context.Context, acks []tailAck, err error) error {
	for _, a := range acks {
		s.mu.Lock()
		current := a.epoch == a.f.epoch
		if err != nil && current {
			// Negative epoch: Read rewinds the follower to f.acked.
			a.f.epoch = -(a.f.epoch + 1)
		}
		if err != nil || !current {
			s.mu.Unlock()
			continue
		}
		a.f.acked = a.pos
		s.entries[a.f.rel] = a.pos
		s.mu.Unlock()
		if st := s.o.res.State; st != nil {
			b, _ := json.Marshal(a.pos)
			if perr := st.Put(ctx, tailPrefix+a.f.rel, b); perr != nil {
				return fmt.Errorf("save position of %q: %w", a.f.name, perr)
			}
		}
	}
	return nil
}
