package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker/disk/internal/vfs"
)

// segment is one file of a queue's log. Positions are offsets in the
// concatenation of the retained segments, counted from the oldest segment
// at open: they order records and measure retained bytes.
type segment struct {
	base     uint64 // the seq in the file name: every record's seq is >= base
	startPos int64
	size     atomic.Int64 // committed (durable) bytes
	last     atomic.Uint64
	f        vfs.File
	path     string
}

func segName(base uint64) string { return fmt.Sprintf("_%020d.seg", base) }

func parseSegName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, "_") || !strings.HasSuffix(name, ".seg") || len(name) != 25 {
		return 0, false
	}
	n, err := strconv.ParseUint(name[1:21], 10, 64)
	return n, err == nil
}

type blobEntry struct {
	seq  uint64
	name string
}

// appendReq is one Enqueue's frames on their way to the log writer.
type appendReq struct {
	buf   []byte
	n     int
	bytes int64
	roll  bool // Purge: start a new segment; seq receives its base
	seq   uint64
	done  chan error
}

// dataLog is a queue's segments. One goroutine, the writer, owns the
// active segment's file and the assignment of seqs: Enqueue hands it frames
// over reqs, and it writes and fsyncs every request it has at once (group
// commit). Readers see a record only once it is durable.
type dataLog struct {
	q   *queue
	fs  vfs.FS
	dir string

	mu    sync.RWMutex // guards segs and blobs
	segs  []*segment
	blobs []blobEntry // sorted by seq

	endPos  atomic.Int64  // end of the durable log
	nextSeq atomic.Uint64 // seq after the last durable record
	failed  atomic.Pointer[error]

	segBytes  atomic.Int64
	maxCommit int
	gate      sync.RWMutex // submit holds it for reading; stop for writing
	closed    bool         // guarded by gate
	reqs      chan *appendReq
	quit      chan struct{}
	syncs     chan *syncItem // from the writer to the syncer
	stopped   chan struct{}

	// owned by the writer goroutine
	active *segment
	wseq   uint64
	wpos   int64 // end of what was written, durable or not
	wbuf   []byte
	batch  []*appendReq
}

// syncItem is a write the syncer makes durable: n bytes appended to seg,
// ending before seq end, on behalf of reqs.
type syncItem struct {
	seg     *segment
	n       int64
	end     uint64
	records int
	blobs   []blobEntry
	reqs    []*appendReq
}

func (l *dataLog) start() {
	l.reqs = make(chan *appendReq, 16384)
	l.quit = make(chan struct{})
	l.syncs = make(chan *syncItem, 64)
	l.stopped = make(chan struct{})
	go l.run()
	go l.syncer()
}

func (l *dataLog) stop() {
	l.gate.Lock()
	l.closed = true // no send after this: the writer's final drain sees them all
	l.gate.Unlock()
	close(l.quit)
	<-l.stopped
	l.mu.Lock()
	for _, s := range l.segs {
		_ = s.f.Close()
	}
	l.segs = nil
	l.mu.Unlock()
}

// submit hands r to the writer. It fails once the writer has stopped.
func (l *dataLog) submit(r *appendReq) error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	l.gate.RLock()
	defer l.gate.RUnlock()
	if l.closed {
		return errClosedQueue
	}
	l.reqs <- r
	return nil
}

func (l *dataLog) run() {
	defer close(l.syncs) // the syncer finishes what was written, then stops
	for {
		var first *appendReq
		select {
		case first = <-l.reqs:
		case <-l.quit:
			// fail what raced with the stop
			for {
				select {
				case r := <-l.reqs:
					r.done <- errClosedQueue
				default:
					return
				}
			}
		}
		batch := append(l.batch[:0], first)
		size := len(first.buf)
	gather:
		for size < l.maxCommit && !first.roll {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
				size += len(r.buf)
				if r.roll {
					break gather
				}
			default:
				break gather
			}
		}
		l.commit(batch)
		clear(batch)
		l.batch = batch[:0]
	}
}

// commit writes batch, with one write per segment it touches, and hands
// the writes to the syncer. The writer does not wait for the fsync: while
// the syncer makes one write durable, the writer already writes the next,
// and the next fsync covers it.
func (l *dataLog) commit(batch []*appendReq) {
	if p := l.failed.Load(); p != nil {
		for _, r := range batch {
			r.done <- *p
		}
		return
	}
	from := 0 // batch[from:i] are in wbuf
	l.wbuf = l.wbuf[:0]
	records := 0
	var blobs []blobEntry
	flush := func(upto int) bool {
		item := &syncItem{seg: l.active, n: int64(len(l.wbuf)), end: l.wseq, records: records, blobs: blobs,
			reqs: append([]*appendReq(nil), batch[from:upto]...)}
		if len(l.wbuf) > 0 {
			if _, err := l.active.f.Write(l.wbuf); err != nil {
				err = fmt.Errorf("write %s: %w", l.active.path, err)
				l.fail(err)
				for _, r := range batch[from:] {
					r.done <- err
				}
				return false
			}
			l.wpos += item.n
		}
		l.syncs <- item
		from = upto
		l.wbuf = l.wbuf[:0]
		records = 0
		blobs = nil
		return true
	}
	rollOrFail := func(i int) bool {
		if err := l.roll(); err != nil {
			l.fail(err)
			for _, r := range batch[i:] {
				r.done <- err
			}
			return false
		}
		return true
	}
	for i, r := range batch {
		if r.roll {
			if !flush(i) || !rollOrFail(i) {
				return
			}
			r.seq = l.wseq
			continue
		}
		if size := l.wpos - l.active.startPos; size+int64(len(l.wbuf)) > 0 &&
			size+int64(len(l.wbuf)+len(r.buf)) > l.segBytes.Load() {
			if !flush(i) || !rollOrFail(i) {
				return
			}
		}
		// assign seqs and seal the frames
		b := r.buf
		for off := 0; off < len(b); {
			n := frameLen(b[off:])
			if b[off+frameHeader] == kindBlob {
				if ref, ok := parseBlobRef(b[off+dataHeader : off+n]); ok {
					blobs = append(blobs, blobEntry{seq: l.wseq, name: ref.name})
				}
			}
			patchSeq(b[off:], l.wseq)
			l.wseq++
			off += n
		}
		records += r.n
		l.wbuf = append(l.wbuf, b...)
	}
	flush(len(batch))
}

// syncer makes the writer's writes durable: it takes every write waiting,
// fsyncs their segments once, publishes the new durable end to readers, and
// answers the requests. It stops when the writer closes syncs.
func (l *dataLog) syncer() {
	defer close(l.stopped)
	var items []*syncItem
	for item := range l.syncs {
		items = append(items[:0], item)
	gather:
		for {
			select {
			case it, ok := <-l.syncs:
				if !ok {
					break gather
				}
				items = append(items, it)
			default:
				break gather
			}
		}
		l.syncBatch(items)
		clear(items)
	}
}

func (l *dataLog) syncBatch(items []*syncItem) {
	fail := func(err error) {
		for _, it := range items {
			for _, r := range it.reqs {
				r.done <- err
			}
		}
	}
	if p := l.failed.Load(); p != nil {
		fail(*p)
		return
	}
	start := time.Now()
	var synced *segment
	var bytes int64
	records := 0
	for _, it := range items {
		if it.n == 0 || it.seg == synced {
			continue
		}
		if err := it.seg.f.Sync(); err != nil {
			err = fmt.Errorf("fsync %s: %w", it.seg.path, err)
			l.fail(err)
			fail(err)
			return
		}
		synced = it.seg
	}
	var reqs []*appendReq
	for _, it := range items {
		if it.n > 0 {
			it.seg.size.Add(it.n)
			it.seg.last.Store(it.end - 1)
			l.endPos.Add(it.n)
			bytes += it.n
			records += it.records
		}
		if len(it.blobs) > 0 {
			l.mu.Lock()
			l.blobs = append(l.blobs, it.blobs...)
			l.mu.Unlock()
		}
		l.nextSeq.Store(max(l.nextSeq.Load(), it.end))
		reqs = append(reqs, it.reqs...)
	}
	if bytes > 0 {
		if cb := l.q.b.opts.OnCommit; cb != nil {
			cb(time.Since(start), records, int(bytes))
		}
	}
	l.q.committed(reqs)
	for _, r := range reqs {
		r.done <- nil
	}
}

// roll starts a new segment at the writer's next seq, unless the active one
// is still empty and already starts there.
func (l *dataLog) roll() error {
	if l.active != nil && l.wpos == l.active.startPos && l.active.base == l.wseq {
		return nil
	}
	s, err := l.createSegment(l.wseq)
	if err != nil {
		return err
	}
	l.active = s
	return nil
}

func (l *dataLog) createSegment(base uint64) (*segment, error) {
	p := path.Join(l.dir, segName(base))
	f, err := l.fs.Create(p)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("fsync directory after creating %s: %w", p, err)
	}
	s := &segment{base: base, startPos: l.wpos, f: f, path: p}
	s.last.Store(base - 1)
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	return s, nil
}

func (l *dataLog) fail(err error) {
	l.failed.CompareAndSwap(nil, &err)
	l.q.b.fatal(err)
}

// segmentAt returns the segment holding pos (the last that starts at or
// before it) and its committed size. Callers hold l.mu for reading.
func (l *dataLog) segmentAtLocked(pos int64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].startPos > pos })
	if i == 0 {
		return nil
	}
	return l.segs[i-1]
}

// readAt reads durable log bytes at pos into p, never across a segment
// end, and returns how many it read (0 at the durable end).
func (l *dataLog) readAt(pos int64, p []byte) (int, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := l.segmentAtLocked(pos)
	if s == nil {
		return 0, fmt.Errorf("position %d is before the retained log", pos)
	}
	off := pos - s.startPos
	avail := s.size.Load() - off
	if avail <= 0 {
		return 0, nil
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, err := s.f.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("read %s at %d: %w", s.path, off, err)
	}
	return n, nil
}

// segmentEnd returns the log position where the durable part of the
// segment holding pos ends.
func (l *dataLog) segmentEnd(pos int64) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := l.segmentAtLocked(pos)
	if s == nil {
		return pos
	}
	return s.startPos + s.size.Load()
}

// first returns the position and base seq of the oldest retained segment.
func (l *dataLog) first() (pos int64, seq uint64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segs) == 0 {
		return l.endPos.Load(), l.nextSeq.Load()
	}
	return l.segs[0].startPos, l.segs[0].base
}

// posOfSeq returns the position of the segment that holds seq, from which
// a reader skips records below seq.
func (l *dataLog) posOfSeq(seq uint64) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > seq })
	if i == 0 {
		if len(l.segs) == 0 {
			return l.endPos.Load()
		}
		return l.segs[0].startPos
	}
	return l.segs[i-1].startPos
}

// retain deletes the segments and blobs that hold only seqs below floor,
// never the active segment, and returns how many files it removed.
func (l *dataLog) retain(floor uint64) (int, error) {
	l.mu.RLock()
	work := (len(l.segs) > 1 && l.segs[1].base <= floor && l.segs[0].last.Load() < floor) ||
		(len(l.blobs) > 0 && l.blobs[0].seq < floor)
	l.mu.RUnlock()
	if !work {
		return 0, nil
	}
	l.mu.Lock()
	var dead []*segment
	for len(l.segs) > 1 && l.segs[1].base <= floor && l.segs[0].last.Load() < floor {
		dead = append(dead, l.segs[0])
		l.segs = l.segs[1:]
	}
	var blobs []blobEntry
	i := 0
	for i < len(l.blobs) && l.blobs[i].seq < floor {
		i++
	}
	blobs = append(blobs, l.blobs[:i]...)
	l.blobs = l.blobs[i:]
	l.mu.Unlock()
	if len(dead) == 0 && len(blobs) == 0 {
		return 0, nil
	}
	var errs []error
	for _, s := range dead {
		_ = s.f.Close()
		if err := l.fs.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(dead) > 0 {
		if err := l.fs.SyncDir(l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	for _, b := range blobs {
		if err := l.fs.Remove(path.Join(l.dir, blobDir, b.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(blobs) > 0 {
		if err := l.fs.SyncDir(path.Join(l.dir, blobDir)); err != nil {
			errs = append(errs, err)
		}
	}
	return len(dead) + len(blobs), errors.Join(errs...)
}
