package filekit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform"
)

// After-actions: what happens to a file once all its records are enqueued.
const (
	AfterMove   = "move"
	AfterDelete = "delete"
	AfterKeep   = "keep"
)

// AfterModes lists the after-actions, for Spec enums.
var AfterModes = []string{AfterMove, AfterDelete, AfterKeep}

// SourceOptions configure a Source.
type SourceOptions struct {
	// FS is the filesystem; Dir the directory watched on it.
	FS  FS
	Dir string
	// Matcher selects files under Dir.
	Matcher *Matcher
	// Ready is one of ReadyModes; StableFor and DoneSuffix tune it.
	Ready      string
	StableFor  time.Duration
	DoneSuffix string
	// After is one of AfterModes. ArchiveDir (AfterMove) is a template
	// rendered per file with meta.path (relative path), meta.name and
	// meta.dir; a relative result is under Dir. The file keeps its relative
	// path below it.
	After      string
	ArchiveDir *transform.Template
	// FailedDir receives files that cannot be decoded (relative: under Dir).
	// Empty: such a file stays where it is, remembered as failed until it
	// changes.
	FailedDir string
	// Codec decodes files; nil means codec "none": a whole file is one
	// message in Raw, up to MaxRawBytes.
	Codec       adapters.Codec
	BatchSize   int
	MaxRawBytes int64
	// ScanInterval is the period of full rescans.
	ScanInterval time.Duration
	// Notify, when not nil, wakes the source for an early rescan (fsnotify
	// events). Sends should not block: a buffer of one is enough.
	Notify <-chan struct{}
	// Filter, when not nil, selects files beyond Matcher by their listing
	// info (size, modification time): a file it rejects is left alone and
	// looked at again at the next scan. Done markers are not filtered. It
	// is called from Read's goroutine.
	Filter func(rel string, fi fs.FileInfo) bool
	// OpenAhead is how many queued files are opened (Stat and Open, each in
	// a goroutine of its own) while the current one is read. A remote FS
	// overlaps their round trips this way and, when its Open starts
	// fetching in the background, their transfers. 0 opens one file at a
	// time.
	OpenAhead int
	// Resources of the adapter: identity, logger, State, Once.
	Resources adapters.Resources
}

// Source is a generic, crash-safe source of complete files on an FS: the
// built-in file source (batch mode) and the SFTP source are Sources over
// different filesystems. It implements adapters.Source.
//
// Files are discovered by listing Dir every ScanInterval (and early on
// Notify), taken when ready, streamed through the codec in batches, and
// finished with the after-action once every batch was acknowledged. Progress
// (file identity = size + mtime, byte offset, record and line just past the
// last acknowledged record) is checkpointed in State with every acknowledged
// batch, so a restart resumes mid-file. Message IDs are
// adapters.NewID(pipeline, source, relative path, "SIZE-MTIMENANOS",
// record start offset): a record read again after a crash keeps its ID.
type Source struct {
	o        SourceOptions
	log      *slog.Logger
	ready    *Readiness
	skipDirs []string // relative dirs never listed: archive and failed dirs
	path     string   // Dir as shown in metadata

	closeOnce sync.Once
	closed    chan struct{}

	readMu    sync.Mutex // held by Read and Connect; by Close to release the open file
	connected bool
	cur       *task
	ahead     map[string]*opening // files opened ahead (OpenAhead), by relative path
	lost      error               // a read lost the connection: the next Read returns it
	rescan    bool                // scan again even under Once (a file was interrupted)
	queue     []candidate
	queued    map[string]bool
	nextScan  time.Time
	lastScan  time.Time
	scans     int
	onceUntil time.Time

	mu       sync.Mutex // guards entries, inflight and the task fields marked so
	entries  map[string]entry
	inflight map[string]*task
}

var _ adapters.Source = (*Source)(nil)

type candidate struct {
	rel          string
	size, mtime  int64
	finishOnly   bool // every record is in: only the after-action is due
	finishFailed bool
}

// position is where decoding stands: just past a record.
type position struct{ off, rec, line int64 }

// task is one file being read.
type task struct {
	rel, name string
	size      int64
	mtime     int64
	f         File
	dec       adapters.Decoder
	ids       *IDMaker
	// Read's own progress.
	pos    position
	base   position // added to the decoder's record numbers after SetStart
	skipTo int64    // records ending at or before this offset were acked before a restart
	// seeked: the decoder started mid-file (SetStart) and has returned
	// nothing yet; a fatal error then means it cannot resume there.
	seeked bool
	fatal  error // the file cannot be decoded
	raw    bool
	rd     *readErrs // what the decoder reads: f, remembering read errors
	// interrupted: the FS lost its connection while the file was read; it
	// is read again from its checkpoint once it is picked up again.
	interrupted error

	// Guarded by Source.mu.
	outstanding int
	eof         bool // Read is done with the file
	complete    bool // ... because it read all of it: finish when acked
	ackFailed   bool // a batch was not enqueued: read again from the checkpoint
	finished    bool
	acked       position
}

// NewSource checks opts and returns a Source. It does no I/O.
func NewSource(o SourceOptions) (*Source, error) {
	if o.FS == nil || o.Matcher == nil {
		return nil, errors.New("filekit: SourceOptions needs FS and Matcher")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = 10 * time.Second
	}
	if o.After == "" {
		o.After = AfterKeep
	}
	if o.After == AfterMove && o.ArchiveDir == nil {
		return nil, errors.New("after: move needs archive_dir")
	}
	r, err := NewReadiness(o.Ready, o.StableFor, o.DoneSuffix)
	if err != nil {
		return nil, err
	}
	log := o.Resources.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		o: o, log: log, ready: r, path: o.Dir,
		closed: make(chan struct{}), queued: map[string]bool{}, ahead: map[string]*opening{},
		entries: map[string]entry{}, inflight: map[string]*task{},
	}
	if o.ArchiveDir != nil {
		s.addSkipDir(StaticDir(o.ArchiveDir.String()))
	}
	s.addSkipDir(o.FailedDir)
	return s, nil
}

// DefaultBatchSize is the number of records per batch unless configured:
// large enough that the per-batch costs (one durable enqueue, one State
// checkpoint) vanish beside the per-record work, small enough that a batch
// of typical records stays around a megabyte.
const DefaultBatchSize = 1000

// StaticDir returns the directory part of a template that does not depend
// on its holes: "archive/{{ now().Format(\"2006\") }}" gives "archive".
func StaticDir(tmpl string) string {
	if i := strings.Index(tmpl, "{{"); i >= 0 {
		tmpl = tmpl[:i]
		if j := strings.LastIndex(tmpl, "/"); j >= 0 {
			return tmpl[:j]
		}
		return ""
	}
	return tmpl
}

func (s *Source) addSkipDir(dir string) {
	if dir == "" {
		return
	}
	if !path.IsAbs(dir) {
		s.skipDirs = append(s.skipDirs, path.Clean(dir))
		return
	}
	base := path.Clean(s.o.Dir)
	if rel, ok := strings.CutPrefix(path.Clean(dir), base+"/"); ok {
		s.skipDirs = append(s.skipDirs, rel)
	}
}

// Connect checks that Dir is a directory and loads the checkpoints.
func (s *Source) Connect(ctx context.Context) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.isClosed() {
		return adapters.ErrClosed
	}
	fi, err := s.o.FS.Stat(s.o.Dir)
	if err != nil {
		return fmt.Errorf("source directory %q: %w", s.o.Dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("source path %q is not a directory", s.o.Dir)
	}
	if s.connected {
		return nil
	}
	kv, err := store{s.o.Resources.State}.load(ctx, entryPrefix)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for rel, b := range kv {
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			s.log.Warn("ignoring unreadable checkpoint", "path", rel, "error", err)
			continue
		}
		s.entries[rel] = e
	}
	s.mu.Unlock()
	s.connected = true
	return nil
}

func (s *Source) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Close stops the source and closes the open file. Batches still in flight
// may be acknowledged afterwards: their checkpoints and after-actions are
// still carried out.
func (s *Source) Close(context.Context) error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if t := s.cur; t != nil {
		s.cur = nil
		s.stop(t, false)
	}
	s.dropAhead()
	return nil
}

// Read returns the next batch of the current file, opening the next ready
// file when needed; it blocks while nothing is ready. Under Resources.Once
// it returns adapters.ErrEndOfInput once the files present now are done.
func (s *Source) Read(ctx context.Context) (adapters.Batch, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if !s.connected {
		return adapters.Batch{}, adapters.ErrNotConnected
	}
	for {
		if s.isClosed() {
			return adapters.Batch{}, adapters.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return adapters.Batch{}, err
		}
		if err := s.lost; err != nil {
			s.lost = nil
			return adapters.Batch{}, err
		}
		if s.cur == nil {
			t, err := s.next(ctx)
			if err != nil {
				return adapters.Batch{}, err
			}
			s.cur = t
		}
		b, err := s.readBatch(ctx, s.cur)
		if err != nil || len(b.Messages) > 0 {
			return b, err
		}
	}
}

// next returns the next file to read, scanning and waiting as needed.
func (s *Source) next(ctx context.Context) (*task, error) {
	for {
		for len(s.queue) > 0 {
			s.startAhead()
			c := s.queue[0]
			var r opened
			p := s.ahead[c.rel]
			if p != nil {
				select {
				case <-p.done:
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-s.closed:
					return nil, adapters.ErrClosed
				}
				delete(s.ahead, c.rel)
				r = p.res
			}
			s.queue = s.queue[1:]
			delete(s.queued, c.rel)
			if c.finishOnly {
				s.afterActions(ctx, c.rel, c.finishFailed)
				continue
			}
			if p == nil {
				r = s.openIO(c)
			}
			t, err := s.open(c, r)
			if err != nil {
				s.dropAhead()
				return nil, err
			}
			if t != nil {
				return t, nil
			}
		}
		now := time.Now()
		if s.o.Resources.Once && s.scans > 0 && !s.rescan && !s.lastScan.Before(s.onceUntil) {
			return nil, adapters.ErrEndOfInput
		}
		if !now.Before(s.nextScan) {
			if err := s.scan(ctx, now); err != nil {
				return nil, err
			}
			continue
		}
		if err := s.wait(ctx, s.nextScan.Sub(now)); err != nil {
			return nil, err
		}
	}
}

// minScanGap bounds how often notifications trigger a rescan.
const minScanGap = 100 * time.Millisecond

func (s *Source) wait(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return adapters.ErrClosed
	case <-s.o.Notify:
		if at := s.lastScan.Add(minScanGap); at.Before(s.nextScan) {
			s.nextScan = at
		}
	case <-timer.C:
	}
	return nil
}

// scan lists Dir and queues the files that are ready.
func (s *Source) scan(ctx context.Context, now time.Time) error {
	files, complete, err := s.list()
	if err != nil {
		return err
	}
	s.scans++
	s.lastScan = now
	s.rescan = false
	if s.scans == 1 {
		s.onceUntil = now
		if s.ready.Mode() == ReadyStable {
			s.onceUntil = now.Add(s.o.StableFor)
		}
	}
	s.nextScan = now.Add(s.o.ScanInterval)
	if s.o.Resources.Once && now.Before(s.onceUntil) {
		s.nextScan = s.onceUntil
	}
	var ready []candidate
	s.ready.BeginScan()
	s.mu.Lock()
	for rel, fi := range files {
		if s.ready.IsMarker(rel) || !s.o.Matcher.Match(rel) || s.inflight[rel] != nil || s.queued[rel] {
			continue
		}
		size, mtime := fi.Size(), fi.ModTime().UnixNano()
		if e, ok := s.entries[rel]; ok && e.Done && e.same(size, mtime) {
			failed := e.Failed != ""
			if (failed && s.o.FailedDir != "") || (!failed && s.o.After != AfterKeep) {
				ready = append(ready, candidate{rel: rel, size: size, mtime: mtime, finishOnly: true, finishFailed: failed})
			}
			continue
		}
		if s.o.Filter != nil && !s.o.Filter(rel, fi) {
			continue
		}
		_, marker := files[s.ready.Marker(rel)]
		ok, retry := s.ready.Observe(rel, size, mtime, marker, now)
		if ok {
			ready = append(ready, candidate{rel: rel, size: size, mtime: mtime})
		} else if !retry.IsZero() && retry.Before(s.nextScan) && !(s.o.Resources.Once && retry.After(s.onceUntil)) {
			s.nextScan = retry
		}
	}
	var stale []string
	if complete {
		for rel := range s.entries {
			if _, ok := files[rel]; !ok && s.inflight[rel] == nil {
				stale = append(stale, rel)
			}
		}
	}
	s.mu.Unlock()
	s.ready.EndScan()
	for _, rel := range stale {
		if err := s.deleteEntry(ctx, rel); err != nil {
			return err
		}
	}
	sort.Slice(ready, func(i, j int) bool {
		if ready[i].mtime != ready[j].mtime {
			return ready[i].mtime < ready[j].mtime
		}
		return ready[i].rel < ready[j].rel
	})
	for _, c := range ready {
		s.queued[c.rel] = true
		s.queue = append(s.queue, c)
	}
	return nil
}

// list walks Dir and returns its regular files by relative path. complete is
// false when a subdirectory could not be listed.
func (s *Source) list() (map[string]fs.FileInfo, bool, error) {
	return ListFiles(s.o.FS, s.o.Dir, s.o.Matcher, s.skipped, s.log)
}

// ListFiles walks dir on fsys and returns its regular files by relative
// path, descending where m allows and skip does not object. A subdirectory
// that cannot be listed is logged and makes complete false; dir itself
// failing, or a lost connection, is an error.
func ListFiles(fsys FS, dir string, m *Matcher, skip func(rel string) bool, log *slog.Logger) (files map[string]fs.FileInfo, complete bool, err error) {
	files = map[string]fs.FileInfo{}
	complete = true
	dirs := []string{""}
	for len(dirs) > 0 {
		rel := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		name := dir
		if rel != "" {
			name = path.Join(dir, rel)
		}
		infos, err := fsys.ReadDir(name)
		if err != nil {
			if rel == "" {
				return nil, false, fmt.Errorf("list source directory %q: %w", dir, err)
			}
			if errors.Is(err, adapters.ErrNotConnected) {
				return nil, false, err
			}
			log.Warn("cannot list directory", "path", name, "error", err)
			complete = false
			continue
		}
		for _, fi := range infos {
			r := fi.Name()
			if rel != "" {
				r = rel + "/" + r
			}
			switch {
			case fi.IsDir():
				if m.Descend(r) && (skip == nil || !skip(r)) {
					dirs = append(dirs, r)
				}
			case fi.Mode().IsRegular():
				files[r] = fi
			}
		}
	}
	return files, complete, nil
}

func (s *Source) skipped(rel string) bool {
	for _, d := range s.skipDirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

func (s *Source) join(rel string) string {
	if rel == "" {
		return s.o.Dir
	}
	return path.Join(s.o.Dir, rel)
}

// opening is a file being opened ahead by a goroutine of its own.
type opening struct {
	done      chan struct{} // closed once res is set
	mu        sync.Mutex
	abandoned bool // nobody will take res: the goroutine closes what it opened
	res       opened
}

// opened is the outcome of the I/O that opens a candidate.
type opened struct {
	fi         fs.FileInfo
	f          File  // nil when the file changed, is too large, or Open failed
	err        error // Stat or Open failed
	statFailed bool  // the file went away, or cannot be stat'ed
}

// openIO opens the file of c and stats it through the open file when the
// File can (one round trip fewer on a remote FS, and the info is that of
// the very file read); it does not keep open a file that changed since it
// was found ready, and does not open one too large for codec none. It
// touches no Source state but the options: it runs in Read's goroutine or,
// with OpenAhead, in one of its own.
func (s *Source) openIO(c candidate) opened {
	name := s.join(c.rel)
	if s.o.Codec == nil && c.size > s.o.MaxRawBytes {
		fi, err := s.o.FS.Stat(name)
		return opened{fi: fi, err: err, statFailed: err != nil}
	}
	f, err := s.o.FS.Open(name)
	if err != nil {
		// A file that went away is not worth a warning: as if Stat failed.
		return opened{err: err, statFailed: errors.Is(err, fs.ErrNotExist)}
	}
	var fi fs.FileInfo
	if sf, ok := f.(interface{ Stat() (fs.FileInfo, error) }); ok {
		fi, err = sf.Stat()
	} else {
		fi, err = s.o.FS.Stat(name)
	}
	if err != nil {
		f.Close()
		return opened{err: err, statFailed: true}
	}
	if fi.Size() != c.size || fi.ModTime().UnixNano() != c.mtime {
		f.Close()
		f = nil
	}
	return opened{fi: fi, f: f}
}

// startAhead starts opening the first OpenAhead+1 files of the queue that
// are to be read.
func (s *Source) startAhead() {
	if s.o.OpenAhead <= 0 {
		return
	}
	n := 0
	for _, c := range s.queue {
		if n > s.o.OpenAhead {
			return
		}
		if c.finishOnly {
			continue
		}
		n++
		if s.ahead[c.rel] != nil {
			continue
		}
		p := &opening{done: make(chan struct{})}
		s.ahead[c.rel] = p
		go func(c candidate) {
			r := s.openIO(c)
			p.mu.Lock()
			if p.abandoned {
				if r.f != nil {
					r.f.Close()
				}
			} else {
				p.res = r
			}
			p.mu.Unlock()
			close(p.done)
		}(c)
	}
}

// dropAhead abandons the files opened ahead (after Close, or when the
// connection was lost): what they opened is closed, and their candidates
// stay queued, to be opened afresh.
func (s *Source) dropAhead() {
	for rel, p := range s.ahead {
		p.mu.Lock()
		p.abandoned = true
		f := p.res.f
		p.res.f = nil
		p.mu.Unlock()
		if f != nil {
			f.Close()
		}
		delete(s.ahead, rel)
	}
}

// open turns the opened file of a queued candidate into a task; it returns
// nil when the file changed or went away since it was found ready.
func (s *Source) open(c candidate, r opened) (*task, error) {
	name := s.join(c.rel)
	if r.err != nil {
		if errors.Is(r.err, adapters.ErrNotConnected) {
			return nil, r.err
		}
		if !r.statFailed {
			s.log.Warn("cannot open file", "path", name, "error", r.err)
		}
		return nil, nil
	}
	size, mtime := r.fi.Size(), r.fi.ModTime().UnixNano()
	if size != c.size || mtime != c.mtime {
		if r.f != nil {
			r.f.Close()
		}
		return nil, nil
	}
	t := &task{rel: c.rel, name: name, size: size, mtime: mtime, raw: s.o.Codec == nil}
	t.ids = NewIDMaker(s.o.Resources.Pipeline, s.o.Resources.Name, c.rel, strconv.FormatInt(size, 10)+"-"+strconv.FormatInt(mtime, 10))
	s.mu.Lock()
	e, ok := s.entries[c.rel]
	s.inflight[c.rel] = t
	s.mu.Unlock()
	var resume position
	if ok && !e.Done && e.same(size, mtime) && e.Offset > 0 {
		resume = position{off: e.Offset, rec: e.Record, line: e.Line}
	}
	t.acked = resume
	if t.raw {
		if size > s.o.MaxRawBytes {
			if r.f != nil {
				r.f.Close()
			}
			t.fatal = fmt.Errorf("file is %d bytes, larger than max_raw_bytes (%d) of codec none", size, s.o.MaxRawBytes)
			return t, nil
		}
	}
	f := r.f
	t.f = f
	if t.raw {
		return t, nil
	}
	t.pos = resume
	if resume.off > 0 {
		if _, err := f.Seek(resume.off, io.SeekStart); err == nil {
			dec := s.o.Codec.NewDecoder(t.reader())
			if ra, ok := dec.(adapters.ReaderAtOffset); ok {
				ra.SetStart(resume.off, resume.line)
				t.dec, t.base, t.seeked = dec, position{rec: resume.rec}, true
				return t, nil
			}
		}
		if err := t.decodeFromStart(s.o.Codec, resume.off); err != nil {
			s.stop(t, false)
			return nil, fmt.Errorf("rewind %q: %w", name, err)
		}
		return t, nil
	}
	t.dec = s.o.Codec.NewDecoder(t.reader())
	return t, nil
}

// readErrs is what a decoder reads: the task's file, with the last read
// error remembered, so that a lost connection is told apart from content
// that cannot be decoded, whatever the decoder makes of the error.
type readErrs struct {
	r   io.Reader
	err error
}

func (e *readErrs) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// reader returns a fresh readErrs over t's file for a new decoder.
func (t *task) reader() io.Reader {
	t.rd = &readErrs{r: t.f}
	return t.rd
}

// connLost returns the error wrapping adapters.ErrNotConnected behind a
// result of t's decoder, or nil: once a read of the file lost the
// connection, even a record decoded without error may be cut short.
func (t *task) connLost(err error) error {
	if errors.Is(err, adapters.ErrNotConnected) {
		return err
	}
	if t.rd != nil && errors.Is(t.rd.err, adapters.ErrNotConnected) {
		return t.rd.err
	}
	return nil
}

// decodeFromStart decodes t from its first byte, skipping records that end
// at or before skipTo: for decoders that cannot start mid-stream (a CSV
// header, an XML root element).
func (t *task) decodeFromStart(c adapters.Codec, skipTo int64) error {
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	t.dec, t.skipTo, t.seeked = c.NewDecoder(t.reader()), skipTo, false
	t.pos, t.base = position{}, position{}
	return nil
}

// readBatch decodes up to BatchSize records of t.
func (s *Source) readBatch(ctx context.Context, t *task) (adapters.Batch, error) {
	s.mu.Lock()
	failed := t.ackFailed
	s.mu.Unlock()
	if failed {
		s.cur = nil
		s.stop(t, true)
		return adapters.Batch{}, nil
	}
	var msgs []adapters.Message
	eof := t.fatal != nil
	if t.raw && !eof {
		msgs, eof = s.readRaw(t), true
	} else if !eof {
		msgs, eof = s.decode(t)
	}
	if len(msgs) == 0 && !eof {
		return adapters.Batch{}, nil
	}
	end := t.pos
	if eof {
		t.close()
		s.cur = nil
	}
	if t.interrupted != nil {
		s.log.Warn("connection lost while reading a file; it is read again from its checkpoint after the reconnection",
			"path", t.name, "error", t.interrupted)
		// The files opened ahead share the lost connection. The next Read
		// reports it, so that the engine reconnects, then rescans at once.
		s.dropAhead()
		s.lost = t.interrupted
		s.nextScan, s.rescan = time.Now(), true
	}
	s.mu.Lock()
	if len(msgs) > 0 {
		t.outstanding++
	}
	t.eof, t.complete = eof, eof && t.interrupted == nil
	finishNow := t.complete && t.outstanding == 0 && !t.ackFailed
	if eof && !t.complete && t.outstanding == 0 {
		delete(s.inflight, t.rel)
	}
	s.mu.Unlock()
	if finishNow {
		if err := s.finish(ctx, t); err != nil {
			return adapters.Batch{}, err
		}
	}
	if len(msgs) == 0 {
		return adapters.Batch{}, nil
	}
	return adapters.Batch{Messages: msgs, Ack: func(ctx context.Context, err error) error {
		return s.ack(ctx, t, end, err)
	}}, nil
}

func (s *Source) readRaw(t *task) []adapters.Message {
	b, err := io.ReadAll(io.LimitReader(t.f, s.o.MaxRawBytes+1))
	if errors.Is(err, adapters.ErrNotConnected) {
		t.interrupted = err
		return nil
	}
	if err == nil && int64(len(b)) > s.o.MaxRawBytes {
		err = fmt.Errorf("file grew past max_raw_bytes (%d) of codec none", s.o.MaxRawBytes)
	}
	if err != nil {
		t.fatal = err
		return nil
	}
	t.pos = position{off: int64(len(b)), rec: 1, line: 1}
	m := adapters.Message{ID: t.ids.ID(0), Raw: b, Time: time.Now(), Meta: make(map[string]string, 6)}
	m.Meta[adapters.MetaSource] = s.o.Resources.Name
	m.Meta[adapters.MetaPath] = t.name
	m.Meta[adapters.MetaLine] = "1"
	m.Meta[adapters.MetaOffset] = "0"
	return []adapters.Message{m}
}

// decode reads up to BatchSize records; eof reports the end of the file
// (or a fatal decoding error, left in t.fatal).
func (s *Source) decode(t *task) (msgs []adapters.Message, eof bool) {
	msgs = make([]adapters.Message, 0, s.o.BatchSize)
	var arena Arena
	now := time.Now()
	for len(msgs) < s.o.BatchSize {
		rec, err := t.dec.Decode()
		if lost := t.connLost(err); lost != nil {
			// Whatever the decoder made of the failed read (a short last
			// record, an end of input), nothing decoded since is trusted:
			// the file is read again from t.pos.
			t.interrupted = lost
			return msgs, true
		}
		if err == io.EOF {
			return msgs, true
		}
		n, line, end := t.dec.Position()
		start := t.pos.off
		p := position{off: end, rec: t.base.rec + n, line: line}
		var rerr *adapters.RecordError
		if err != nil && !errors.As(err, &rerr) {
			if t.seeked {
				if ferr := t.decodeFromStart(s.o.Codec, t.pos.off); ferr == nil {
					continue
				}
			}
			t.fatal = fmt.Errorf("record %d (byte offset %d): %w", p.rec, start, err)
			return msgs, true
		}
		t.seeked = false
		t.pos = p
		if end <= t.skipTo {
			continue
		}
		m := adapters.Message{ID: t.ids.ID(start), Record: rec, Time: now, Meta: make(map[string]string, 6)}
		if rerr != nil {
			m.Record = nil
			if rerr.Path == "" {
				rerr.Path = t.name
			}
			m.Err = rerr
		}
		m.Meta[adapters.MetaSource] = s.o.Resources.Name
		m.Meta[adapters.MetaPath] = t.name
		ln := line
		if ln <= 0 {
			ln = p.rec
		}
		m.Meta[adapters.MetaLine] = arena.Int(ln)
		m.Meta[adapters.MetaOffset] = arena.Int(start)
		msgs = append(msgs, m)
	}
	return msgs, false
}

func (t *task) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

// stop ends reading t before its end. Acknowledgements of its outstanding
// batches still advance the checkpoint (unless failed is set: a batch was
// not enqueued), and once they are settled the file may be picked up again,
// resuming from the checkpoint.
func (s *Source) stop(t *task, failed bool) {
	t.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	t.eof = true
	t.ackFailed = t.ackFailed || failed
	if t.outstanding == 0 {
		delete(s.inflight, t.rel)
	}
}

// ack settles one batch of t that ended at end.
func (s *Source) ack(ctx context.Context, t *task, end position, err error) error {
	s.mu.Lock()
	t.outstanding--
	if err != nil {
		t.ackFailed = true
	}
	settled := t.eof && t.outstanding == 0
	if t.ackFailed {
		if settled {
			delete(s.inflight, t.rel)
		}
		s.mu.Unlock()
		return nil
	}
	t.acked = end
	complete := t.complete
	s.mu.Unlock()
	if settled && complete {
		return s.finish(ctx, t)
	}
	err = s.putEntry(ctx, t.rel, entry{Size: t.size, MTime: t.mtime, Offset: end.off, Record: end.rec, Line: end.line})
	if settled {
		// Stopped early (Close): the file may be picked up again.
		s.mu.Lock()
		delete(s.inflight, t.rel)
		s.mu.Unlock()
	}
	return err
}

// finish records that every record of t is in, then runs the after-action.
func (s *Source) finish(ctx context.Context, t *task) error {
	s.mu.Lock()
	if t.finished {
		s.mu.Unlock()
		return nil
	}
	t.finished = true
	p := t.acked
	s.mu.Unlock()
	e := entry{Size: t.size, MTime: t.mtime, Offset: p.off, Record: p.rec, Line: p.line, Done: true}
	if t.fatal != nil {
		e.Failed = t.fatal.Error()
	}
	err := s.putEntry(ctx, t.rel, e)
	if err == nil {
		s.afterActions(ctx, t.rel, t.fatal != nil)
	}
	s.mu.Lock()
	delete(s.inflight, t.rel)
	s.mu.Unlock()
	return err
}

// afterActions moves, deletes or keeps a file whose records are all in, and
// removes its done marker. A failure is logged and the file stays
// remembered as done, so it is not read again; the action is retried at the
// next scan.
func (s *Source) afterActions(ctx context.Context, rel string, failed bool) {
	name := s.join(rel)
	var err error
	forget := true
	switch {
	case failed:
		s.mu.Lock()
		reason := s.entries[rel].Failed
		s.mu.Unlock()
		if s.o.FailedDir == "" {
			s.log.Error("file cannot be decoded; it stays in place and is skipped until it changes", "path", name, "reason", reason)
			forget = false
			break
		}
		var dst string
		dst, err = s.moveTo(s.o.FailedDir, rel)
		if err == nil {
			s.log.Error("file cannot be decoded; moved to failed_dir", "path", name, "to", dst, "reason", reason)
		}
	case s.o.After == AfterDelete:
		if err = s.o.FS.Remove(name); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	case s.o.After == AfterMove:
		var dir string
		if dir, err = s.archiveDir(rel); err == nil {
			_, err = s.moveTo(dir, rel)
		}
	default:
		forget = false
	}
	if err != nil {
		s.log.Warn("after-action failed; the file will not be read again, the action is retried at the next scan",
			"path", name, "after", s.o.After, "error", err)
		return
	}
	if m := s.ready.Marker(name); m != "" {
		if err := s.o.FS.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot remove done marker", "path", m, "error", err)
		}
	}
	if forget {
		if err := s.deleteEntry(ctx, rel); err != nil {
			s.log.Warn("cannot forget processed file", "path", name, "error", err)
		}
	}
}

func (s *Source) archiveDir(rel string) (string, error) {
	var r transform.Runner
	dir, err := r.Render(s.o.ArchiveDir, nil, map[string]string{"path": rel, "name": path.Base(rel), "dir": path.Dir(rel)})
	if err != nil {
		return "", fmt.Errorf("archive_dir: %w", err)
	}
	if dir == "" {
		return "", fmt.Errorf("archive_dir %q rendered empty", s.o.ArchiveDir.String())
	}
	return dir, nil
}

// moveTo moves the file rel below dir (relative dirs are under Dir), keeping
// its relative path; an existing target gets a numbered name.
func (s *Source) moveTo(dir, rel string) (string, error) {
	if !path.IsAbs(dir) {
		dir = path.Join(s.o.Dir, dir)
	}
	dst := path.Join(dir, rel)
	if err := s.o.FS.MkdirAll(path.Dir(dst)); err != nil {
		return "", err
	}
	dst, err := freeName(s.o.FS, dst, nil)
	if err != nil {
		return "", err
	}
	return dst, s.o.FS.Rename(s.join(rel), dst)
}

// freeName returns name when it does not exist, else the first free
// "base.N.ext" (N from 1, or from next[name] when next is given).
func freeName(fsys FS, name string, next map[string]int) (string, error) {
	if _, err := fsys.Stat(name); errors.Is(err, fs.ErrNotExist) {
		return name, nil
	} else if err != nil {
		return "", err
	}
	dir, base := path.Split(name)
	ext := path.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	n := 1
	if next != nil && next[name] > 0 {
		n = next[name]
	}
	for ; ; n++ {
		cand := dir + stem + "." + strconv.Itoa(n) + ext
		_, err := fsys.Stat(cand)
		if errors.Is(err, fs.ErrNotExist) {
			if next != nil {
				next[name] = n + 1
			}
			return cand, nil
		}
		if err != nil {
			return "", err
		}
	}
}

func (s *Source) putEntry(ctx context.Context, rel string, e entry) error {
	if err := (store{s.o.Resources.State}).put(ctx, entryPrefix+rel, e); err != nil {
		return err
	}
	s.mu.Lock()
	s.entries[rel] = e
	s.mu.Unlock()
	return nil
}

func (s *Source) deleteEntry(ctx context.Context, rel string) error {
	s.mu.Lock()
	_, ok := s.entries[rel]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	if err := (store{s.o.Resources.State}).del(ctx, entryPrefix+rel); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.entries, rel)
	s.mu.Unlock()
	return nil
}
