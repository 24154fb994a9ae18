package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/broker/disk/internal/vfs"
)

// The consumer state of a queue (every group's cursor, out-of-order acks
// and retry schedule) lives in an append-only ack log, _acks.<gen>, and a
// snapshot, _cursors, that says which generation of the log follows it. One
// goroutine owns the log; Ack, Nack and Consumer hand it operations and it
// writes and fsyncs all it has at once (group commit), like the data log.
// When the log grows past compactBytes the goroutine starts generation
// gen+1, writes a snapshot of the state with gen+1 (temp file, fsync,
// rename, directory fsync), and removes the old log. Open replays the
// snapshot and every log of its generation or later.

const (
	cursorsFile  = "_cursors"
	compactBytes = 4 << 20
)

const (
	opAck   byte = 1 // ranges of seqs acked
	opRetry byte = 2 // a nacked seq: attempts, first failure, due time
	opAdd   byte = 3 // a group created at floor seq
	opDrop  byte = 4 // a group removed
	opPurge byte = 5 // every group past seq
)

type rng struct{ lo, hi uint64 } // [lo, hi)

type retryInfo struct {
	attempts int32
	first    int64 // Unix ns
	due      int64 // Unix ns
}

type stateOp struct {
	typ    byte
	group  string
	ranges []rng
	seq    uint64
	retry  retryInfo
}

// groupState is a group's durable cursor: every seq below floor and every
// seq in acked is acked.
type groupState struct {
	floor   uint64
	acked   []rng // sorted, disjoint, above floor
	retries map[uint64]retryInfo
}

func (g *groupState) ack(lo, hi uint64) {
	if hi <= g.floor || lo >= hi {
		return
	}
	if lo <= g.floor {
		g.floor = hi
	} else {
		i := sort.Search(len(g.acked), func(i int) bool { return g.acked[i].hi >= lo })
		j := i
		for j < len(g.acked) && g.acked[j].lo <= hi {
			lo = min(lo, g.acked[j].lo)
			hi = max(hi, g.acked[j].hi)
			j++
		}
		g.acked = append(g.acked[:i], append([]rng{{lo, hi}}, g.acked[j:]...)...)
	}
	for len(g.acked) > 0 && g.acked[0].lo <= g.floor {
		g.floor = max(g.floor, g.acked[0].hi)
		g.acked = g.acked[1:]
	}
	for seq := range g.retries {
		if seq < g.floor || (seq >= lo && seq < hi) {
			delete(g.retries, seq)
		}
	}
}

// isAcked reports whether seq is acked.
func (g *groupState) isAcked(seq uint64) bool {
	if seq < g.floor {
		return true
	}
	i := sort.Search(len(g.acked), func(i int) bool { return g.acked[i].hi > seq })
	return i < len(g.acked) && g.acked[i].lo <= seq
}

// cursors is the consumer state of a queue.
type cursors struct {
	groups map[string]*groupState
	purged uint64
}

func newCursors() *cursors { return &cursors{groups: map[string]*groupState{}} }

func (c *cursors) group(name string) *groupState {
	g := c.groups[name]
	if g == nil {
		g = &groupState{floor: c.purged}
		c.groups[name] = g
	}
	return g
}

func (c *cursors) apply(op *stateOp) {
	switch op.typ {
	case opAdd:
		if _, ok := c.groups[op.group]; !ok {
			c.groups[op.group] = &groupState{floor: max(op.seq, c.purged)}
		}
	case opDrop:
		delete(c.groups, op.group)
	case opAck:
		g := c.group(op.group)
		for _, r := range op.ranges {
			g.ack(r.lo, r.hi)
		}
	case opRetry:
		g := c.group(op.group)
		if !g.isAcked(op.seq) {
			if g.retries == nil {
				g.retries = map[uint64]retryInfo{}
			}
			g.retries[op.seq] = op.retry
		}
	case opPurge:
		c.purged = max(c.purged, op.seq)
		for _, g := range c.groups {
			g.ack(0, op.seq)
		}
	}
}

// minFloor is the seq below which every group has acked, or purged when
// there is no group.
func (c *cursors) minFloor() uint64 {
	if len(c.groups) == 0 {
		return c.purged
	}
	m := uint64(math.MaxUint64)
	for _, g := range c.groups {
		m = min(m, g.floor)
	}
	return m
}

// Encoding of operations and snapshots.

func appendOp(dst []byte, op *stateOp) []byte {
	dst, start := beginFrame(dst)
	dst = append(dst, op.typ)
	dst = binary.AppendUvarint(dst, uint64(len(op.group)))
	dst = append(dst, op.group...)
	switch op.typ {
	case opAck:
		dst = appendRanges(dst, op.ranges)
	case opRetry:
		dst = binary.AppendUvarint(dst, op.seq)
		dst = appendRetry(dst, op.retry)
	case opAdd, opPurge:
		dst = binary.AppendUvarint(dst, op.seq)
	}
	endFrame(dst, start)
	return dst
}

func appendRanges(dst []byte, rs []rng) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(rs)))
	var prev uint64
	for _, r := range rs {
		dst = binary.AppendUvarint(dst, r.lo-prev)
		dst = binary.AppendUvarint(dst, r.hi-r.lo)
		prev = r.lo
	}
	return dst
}

func appendRetry(dst []byte, r retryInfo) []byte {
	dst = binary.AppendUvarint(dst, uint64(r.attempts))
	dst = binary.AppendVarint(dst, r.first)
	return binary.AppendVarint(dst, r.due)
}

// reader decodes the bodies of state records.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad = true
		r.b = nil
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.count()
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) ranges() []rng {
	n := r.count()
	out := make([]rng, 0, n)
	var prev uint64
	for i := 0; i < n && !r.bad; i++ {
		lo := prev + r.uvarint()
		out = append(out, rng{lo, lo + r.uvarint()})
		prev = lo
	}
	return out
}

func (r *reader) retry() retryInfo {
	a := r.uvarint()
	if a > math.MaxInt32 {
		r.bad = true
	}
	return retryInfo{attempts: int32(a), first: r.varint(), due: r.varint()}
}

func parseOp(body []byte) (stateOp, bool) {
	if len(body) == 0 {
		return stateOp{}, false
	}
	op := stateOp{typ: body[0]}
	r := reader{b: body[1:]}
	op.group = r.string()
	switch op.typ {
	case opAck:
		op.ranges = r.ranges()
	case opRetry:
		op.seq = r.uvarint()
		op.retry = r.retry()
	case opAdd, opPurge:
		op.seq = r.uvarint()
	case opDrop:
	default:
		return stateOp{}, false
	}
	return op, !r.bad && len(r.b) == 0
}

const snapshotMagic = 'S'

func appendSnapshot(dst []byte, gen uint64, c *cursors) []byte {
	dst, start := beginFrame(dst)
	dst = append(dst, snapshotMagic)
	dst = binary.AppendUvarint(dst, gen)
	dst = binary.AppendUvarint(dst, c.purged)
	names := make([]string, 0, len(c.groups))
	for n := range c.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, n := range names {
		g := c.groups[n]
		dst = binary.AppendUvarint(dst, uint64(len(n)))
		dst = append(dst, n...)
		dst = binary.AppendUvarint(dst, g.floor)
		dst = appendRanges(dst, g.acked)
		seqs := make([]uint64, 0, len(g.retries))
		for s := range g.retries {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		dst = binary.AppendUvarint(dst, uint64(len(seqs)))
		for _, s := range seqs {
			dst = binary.AppendUvarint(dst, s)
			dst = appendRetry(dst, g.retries[s])
		}
	}
	endFrame(dst, start)
	return dst
}

func parseSnapshot(b []byte) (gen uint64, c *cursors, err error) {
	body, n, ok := frameAt(b)
	if !ok || n != len(b) || body[0] != snapshotMagic {
		return 0, nil, errors.New("bad checksum or length")
	}
	r := reader{b: body[1:]}
	gen = r.uvarint()
	c = newCursors()
	c.purged = r.uvarint()
	ng := r.count()
	for i := 0; i < ng && !r.bad; i++ {
		name := r.string()
		g := &groupState{floor: r.uvarint()}
		g.acked = r.ranges()
		nr := r.count()
		for j := 0; j < nr && !r.bad; j++ {
			if g.retries == nil {
				g.retries = map[uint64]retryInfo{}
			}
			s := r.uvarint()
			g.retries[s] = r.retry()
		}
		c.groups[name] = g
	}
	if r.bad || len(r.b) != 0 {
		return 0, nil, errors.New("malformed content")
	}
	return gen, c, nil
}

func ackLogName(gen uint64) string { return "_acks." + strconv.FormatUint(gen, 10) }

func parseAckLogName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "_acks.")
	if !ok {
		return 0, false
	}
	g, err := strconv.ParseUint(s, 10, 64)
	return g, err == nil
}

// loadCursors reads the snapshot and the ack logs of a queue directory. A
// missing or corrupt snapshot is reported through warn and replaced by
// what the logs say: groups restart at the oldest retained message unless
// the logs know better, so messages may come again but none is lost.
func loadCursors(fsys vfs.FS, dir string, warn func(msg string, args ...any)) (c *cursors, maxGen uint64, logs []string, err error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, 0, nil, err
	}
	snapGen := uint64(0)
	b, err := fsys.ReadFile(path.Join(dir, cursorsFile))
	switch {
	case err == nil:
		snapGen, c, err = parseSnapshot(b)
		if err != nil {
			warn("cursor file is corrupt; consumer groups fall back to the last safe point, messages may be delivered again",
				"file", path.Join(dir, cursorsFile), "error", err)
			c, snapGen = nil, 0
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, 0, nil, err
	}
	hadSnapshot := c != nil
	if c == nil {
		c = newCursors()
	}
	type genFile struct {
		gen  uint64
		name string
	}
	var gens []genFile
	for _, e := range entries {
		if g, ok := parseAckLogName(e.Name()); ok {
			logs = append(logs, e.Name())
			maxGen = max(maxGen, g)
			if g >= snapGen {
				gens = append(gens, genFile{g, e.Name()})
			}
		}
	}
	maxGen = max(maxGen, snapGen)
	if !hadSnapshot && len(gens) > 0 {
		warn("cursor snapshot is missing; rebuilding consumer state from the ack logs, messages may be delivered again",
			"dir", dir)
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i].gen < gens[j].gen })
	for _, g := range gens {
		b, err := fsys.ReadFile(path.Join(dir, g.name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // compacted away while we read
			}
			return nil, 0, nil, err
		}
		for off := 0; off < len(b); {
			body, n, ok := frameAt(b[off:])
			if !ok {
				break // torn tail: later acks are lost, their messages come again
			}
			op, ok := parseOp(body)
			if !ok {
				break
			}
			c.apply(&op)
			off += n
		}
	}
	return c, maxGen, logs, nil
}

// stateReq is a batch of operations for the state writer; done (when not
// nil) receives the outcome once they are durable.
type stateReq struct {
	ops  []stateOp
	done chan error
}

// stateLog owns a queue's ack log. Its goroutine is the only one to touch
// cur (the durable cursors), the log file and the snapshot.
type stateLog struct {
	q   *queue
	fs  vfs.FS
	dir string

	cur  *cursors
	gen  uint64
	f    vfs.File
	size int64
	wbuf []byte

	gate    sync.RWMutex // send holds it for reading; stop for writing
	closed  bool         // guarded by gate
	reqs    chan *stateReq
	quit    chan struct{}
	stopped chan struct{}
	failed  atomic.Pointer[error]
}

// reset writes a fresh generation: a new empty log and a snapshot of cur
// naming it, then removes the older logs. Open and compaction use it.
func (s *stateLog) reset(old []string) error {
	gen := s.gen + 1
	name := path.Join(s.dir, ackLogName(gen))
	f, err := s.fs.Create(name)
	if err != nil {
		return fmt.Errorf("create ack log: %w", err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		f.Close()
		return fmt.Errorf("fsync directory after creating %s: %w", name, err)
	}
	snap := appendSnapshot(nil, gen, s.cur)
	tmp := path.Join(s.dir, cursorsFile+".tmp")
	if err := writeFileSync(s.fs, tmp, snap); err != nil {
		f.Close()
		return err
	}
	if err := s.fs.Rename(tmp, path.Join(s.dir, cursorsFile)); err != nil {
		f.Close()
		return fmt.Errorf("rename cursor snapshot: %w", err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		f.Close()
		return fmt.Errorf("fsync directory after renaming %s: %w", tmp, err)
	}
	if s.f != nil {
		_ = s.f.Close()
	}
	s.f, s.gen, s.size = f, gen, 0
	for _, o := range old {
		if o != ackLogName(gen) {
			_ = s.fs.Remove(path.Join(s.dir, o))
		}
	}
	return nil
}

func writeFileSync(fsys vfs.FS, name string, b []byte) error {
	f, err := fsys.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	return f.Close()
}

func (s *stateLog) start() {
	s.reqs = make(chan *stateReq, 16384)
	s.quit = make(chan struct{})
	s.stopped = make(chan struct{})
	go s.run()
}

func (s *stateLog) stop() {
	s.gate.Lock()
	s.closed = true
	s.gate.Unlock()
	close(s.quit)
	<-s.stopped
	if s.f != nil {
		_ = s.f.Close()
	}
}

// persist makes ops durable and waits for it.
func (s *stateLog) persist(ops ...stateOp) error {
	r := &stateReq{ops: ops, done: make(chan error, 1)}
	if err := s.send(r); err != nil {
		return err
	}
	return <-r.done
}

// send hands r to the writer without waiting for the outcome.
func (s *stateLog) send(r *stateReq) error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.closed {
		return errClosedQueue
	}
	s.reqs <- r
	return nil
}

func (s *stateLog) run() {
	defer close(s.stopped)
	var batch []*stateReq
	for {
		select {
		case r := <-s.reqs:
			batch = append(batch[:0], r)
		case <-s.quit:
			for {
				select {
				case r := <-s.reqs:
					if r.done != nil {
						r.done <- errClosedQueue
					}
				default:
					return
				}
			}
		}
	gather:
		for len(batch) < 4096 {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		err := s.commit(batch)
		for _, r := range batch {
			if r.done != nil {
				r.done <- err
			}
		}
		clear(batch)
	}
}

func (s *stateLog) commit(batch []*stateReq) error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	s.wbuf = s.wbuf[:0]
	for _, r := range batch {
		for i := range r.ops {
			s.wbuf = appendOp(s.wbuf, &r.ops[i])
		}
	}
	if len(s.wbuf) == 0 {
		return nil
	}
	if _, err := s.f.Write(s.wbuf); err != nil {
		return s.fail(fmt.Errorf("write %s: %w", s.f.Name(), err))
	}
	if err := s.f.Sync(); err != nil {
		return s.fail(fmt.Errorf("fsync %s: %w", s.f.Name(), err))
	}
	s.size += int64(len(s.wbuf))
	for _, r := range batch {
		for i := range r.ops {
			s.cur.apply(&r.ops[i])
		}
	}
	if s.size > compactBytes {
		if err := s.reset([]string{ackLogName(s.gen)}); err != nil {
			return s.fail(fmt.Errorf("compact ack log: %w", err))
		}
	}
	// retention: only what the durable cursors are past may go
	if _, err := s.q.log.retain(s.cur.minFloor()); err != nil {
		s.q.b.logger.Warn("could not remove consumed segments", "queue", s.q.name, "error", err)
	}
	return nil
}

func (s *stateLog) fail(err error) error {
	s.failed.CompareAndSwap(nil, &err)
	s.q.b.fatal(err)
	return err
}
