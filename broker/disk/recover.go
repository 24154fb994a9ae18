package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/broker/disk/internal/vfs"
)

type span struct{ from, to int64 }

// segScan is what a scan of one segment found.
type segScan struct {
	valid []span // the record spans kept, in order
	bad   []span // corrupt spans followed by valid records
	torn  int64  // where an incomplete tail starts, or -1
	last  uint64 // seq of the last valid record, 0 when none
	blobs []blobEntry
	n     int
}

// scanSegment checks every record of a segment's bytes b. Records must have
// increasing seqs of at least minSeq. After a record that fails its check
// it looks for the next valid record: the bytes in between are a corrupt
// span, or, when no valid record follows, the torn tail of an interrupted
// write. visit, when not nil, sees every valid record.
func scanSegment(b []byte, minSeq uint64, visit func(off int64, r dataRecord)) segScan {
	s := segScan{torn: -1}
	prev := minSeq - 1
	valid := func(off int) (dataRecord, int, bool) {
		body, n, ok := frameAt(b[off:])
		if !ok {
			return dataRecord{}, 0, false
		}
		r, ok := parseData(body)
		if !ok || r.seq <= prev {
			return dataRecord{}, 0, false
		}
		return r, n, true
	}
	for off := 0; off < len(b); {
		r, n, ok := valid(off)
		if !ok {
			next := -1
			for j := off + 1; j+dataHeader <= len(b); j++ {
				if frameLen(b[j:]) == 0 {
					continue
				}
				if _, _, ok := valid(j); ok {
					next = j
					break
				}
			}
			if next < 0 {
				s.torn = int64(off)
				break
			}
			s.bad = append(s.bad, span{int64(off), int64(next)})
			off = next
			continue
		}
		if k := len(s.valid); k > 0 && s.valid[k-1].to == int64(off) {
			s.valid[k-1].to += int64(n)
		} else {
			s.valid = append(s.valid, span{int64(off), int64(off + n)})
		}
		if r.kind == kindBlob {
			if ref, ok := parseBlobRef(r.payload); ok {
				s.blobs = append(s.blobs, blobEntry{seq: r.seq, name: ref.name})
			}
		}
		if visit != nil {
			visit(int64(off), r)
		}
		prev, s.last = r.seq, r.seq
		s.n++
		off += n
	}
	return s
}

type segFile struct {
	base uint64
	name string
}

func listSegments(fsys vfs.FS, dir string) ([]segFile, error) {
	es, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []segFile
	for _, e := range es {
		if base, ok := parseSegName(e.Name()); ok && !e.IsDir() {
			out = append(out, segFile{base, e.Name()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].base < out[j].base })
	return out, nil
}

// recoverLog scans and repairs the segments of q: a torn tail of the last
// segment is cut off, and corrupt spans anywhere are copied to the
// quarantine dir and removed from their segment. The log it returns starts
// after the last valid record, never after a torn tail.
func (q *queue) recoverLog() (*dataLog, error) {
	b := q.b
	l := &dataLog{q: q, fs: b.fs, dir: q.dir, maxCommit: b.opts.MaxCommitBytes}
	l.segBytes.Store(q.opts.SegmentBytes)
	files, err := listSegments(b.fs, q.dir)
	if err != nil {
		return nil, err
	}
	var pos int64
	var lastSeq uint64
	for i, sf := range files {
		p := path.Join(q.dir, sf.name)
		data, err := b.fs.ReadFile(p)
		if err != nil {
			return nil, err
		}
		s := scanSegment(data, max(lastSeq+1, sf.base), nil)
		size := int64(len(data))
		if len(s.bad) > 0 || (s.torn >= 0 && i < len(files)-1) {
			size, err = q.quarantineSpans(p, data, s)
			if err != nil {
				return nil, err
			}
		} else if s.torn >= 0 {
			b.logger.Warn("disk broker: torn tail cut off (an interrupted write that was never acknowledged)",
				"queue", q.name, "file", p, "offset", s.torn, "bytes", len(data)-int(s.torn))
			size = s.torn
			if err := truncateSync(b.fs, p, size); err != nil {
				return nil, err
			}
		}
		f, err := b.fs.OpenFile(p, true)
		if err != nil {
			return nil, err
		}
		seg := &segment{base: sf.base, startPos: pos, f: f, path: p}
		seg.size.Store(size)
		last := sf.base - 1
		if s.n > 0 {
			last = s.last
		}
		seg.last.Store(last)
		lastSeq = max(lastSeq, last)
		l.segs = append(l.segs, seg)
		l.blobs = append(l.blobs, s.blobs...)
		pos += size
	}
	l.endPos.Store(pos)
	l.wpos = pos
	l.nextSeq.Store(lastSeq + 1)
	return l, nil
}

// quarantineSpans moves the corrupt spans (and a torn tail of a segment
// that is not the last) out of the segment at p and returns its new size.
func (q *queue) quarantineSpans(p string, data []byte, s segScan) (int64, error) {
	b := q.b
	bad := s.bad
	if s.torn >= 0 {
		bad = append(bad, span{s.torn, int64(len(data))})
	}
	for _, sp := range bad {
		qf, err := b.quarantine(q.name, p, sp.from, data[sp.from:sp.to])
		if err != nil {
			return 0, fmt.Errorf("quarantine corrupt span of %s: %w", p, err)
		}
		q.quarantined.Add(1)
		b.logger.Error("disk broker: CORRUPT RECORDS QUARANTINED: a span of a segment failed its checksum; the messages in it are set aside and the queue goes on",
			"queue", q.name, "file", p, "offset", sp.from, "bytes", sp.to-sp.from, "quarantine_file", qf)
	}
	if len(s.valid) == 0 || (len(s.valid) == 1 && s.valid[0].from == 0) {
		var kept int64
		if len(s.valid) == 1 {
			kept = s.valid[0].to
		}
		return kept, truncateSync(b.fs, p, kept)
	}
	var out []byte
	for _, v := range s.valid {
		out = append(out, data[v.from:v.to]...)
	}
	tmp := p + ".tmp"
	if err := writeFileSync(b.fs, tmp, out); err != nil {
		return 0, err
	}
	if err := b.fs.Rename(tmp, p); err != nil {
		return 0, err
	}
	if err := b.fs.SyncDir(q.dir); err != nil {
		return 0, err
	}
	return int64(len(out)), nil
}

func truncateSync(fsys vfs.FS, p string, size int64) error {
	f, err := fsys.OpenFile(p, true)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", p, err)
	}
	return nil
}

// removeLeftovers deletes temporary files a crash left behind, and blobs no
// retained record refers to (written by an enqueue that never committed).
func (q *queue) removeLeftovers(l *dataLog) error {
	fsys := q.b.fs
	es, err := fsys.ReadDir(q.dir)
	if err != nil {
		return err
	}
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".tmp") {
			if err := fsys.Remove(path.Join(q.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	bdir := path.Join(q.dir, blobDir)
	bs, err := fsys.ReadDir(bdir)
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(l.blobs))
	for _, be := range l.blobs {
		known[be.name] = true
	}
	removed := false
	for _, e := range bs {
		if !known[e.Name()] {
			if err := fsys.Remove(path.Join(bdir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed = true
		}
	}
	if removed {
		return fsys.SyncDir(bdir)
	}
	return nil
}
