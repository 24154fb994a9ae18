package sftp

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"

	"github.com/pkg/sftp"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/filekit"
)

// remoteFS is a filekit.WriteFS over the SFTP connection of a source or
// sink. Names are used as they are (the source's absolute or
// login-relative paths) or, with base set, below base (the sink's base_dir;
// filekit.Confine has kept them there lexically). It is safe for
// concurrent use; every error names the account and the path.
type remoteFS struct {
	c    *conn
	base string
	mode fs.FileMode // permissions of created files; 0: the server's default

	mu   sync.Mutex
	dirs map[string]bool // directories known to exist, to skip MkdirAll round trips
}

var (
	_ filekit.WriteFS          = (*remoteFS)(nil)
	_ filekit.NoReplaceRenamer = (*remoteFS)(nil)
	_ filekit.File             = (*remoteReader)(nil)
	_ filekit.WriteFile        = (*remoteWriter)(nil)
)

func newRemoteFS(c *conn, base string, mode fs.FileMode) *remoteFS {
	return &remoteFS{c: c, base: base, mode: mode, dirs: map[string]bool{}}
}

func (f *remoteFS) abs(name string) string {
	if f.base == "" {
		return name
	}
	if name == "" || name == "." {
		return f.base
	}
	return path.Join(f.base, name)
}

// Stat implements filekit.FS.
func (f *remoteFS) Stat(name string) (fs.FileInfo, error) {
	s, err := f.c.session()
	if err != nil {
		return nil, err
	}
	p := f.abs(name)
	fi, err := s.sftp.Stat(p)
	if err != nil {
		return nil, f.c.wrap(s, err, "stat", p)
	}
	return fi, nil
}

// ReadDir implements filekit.FS: one listing (a few requests of about a
// hundred names each) with sizes and times; only symbolic links cost a
// Stat each, to follow them as the local file source does.
func (f *remoteFS) ReadDir(name string) ([]fs.FileInfo, error) {
	s, err := f.c.session()
	if err != nil {
		return nil, err
	}
	p := f.abs(name)
	infos, err := s.sftp.ReadDir(p)
	if err != nil {
		return nil, f.c.wrap(s, err, "list", p)
	}
	for i, fi := range infos {
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		st, err := s.sftp.Stat(path.Join(p, fi.Name()))
		if err != nil {
			if werr := f.c.wrap(s, err, "stat", path.Join(p, fi.Name())); errors.Is(werr, adapters.ErrNotConnected) {
				return nil, werr
			}
			continue // a dangling link stays a link: neither file nor directory
		}
		infos[i] = renamedInfo{st, fi.Name()}
	}
	return infos, nil
}

// renamedInfo is a link target's info under the link's name.
type renamedInfo struct {
	fs.FileInfo
	name string
}

func (r renamedInfo) Name() string { return r.name }

// Open implements filekit.FS: the file starts downloading at once, in the
// background, up to readAhead bytes ahead of its reader.
func (f *remoteFS) Open(name string) (filekit.File, error) {
	s, err := f.c.session()
	if err != nil {
		return nil, err
	}
	p := f.abs(name)
	sf, err := s.sftp.Open(p)
	if err != nil {
		return nil, f.c.wrap(s, err, "open", p)
	}
	r := &remoteReader{fs: f, s: s, name: p}
	r.start(sf, 0)
	return r, nil
}

// Rename implements filekit.FS, replacing newname: atomically with
// posix-rename@openssh.com, else by removing newname first.
func (f *remoteFS) Rename(oldname, newname string) error {
	s, err := f.c.session()
	if err != nil {
		return err
	}
	o, n := f.abs(oldname), f.abs(newname)
	if s.posixRename {
		return f.c.wrap(s, s.sftp.PosixRename(o, n), "rename", o, n)
	}
	err = s.sftp.Rename(o, n)
	if err != nil {
		if _, serr := s.sftp.Stat(n); serr == nil {
			if rerr := s.sftp.Remove(n); rerr != nil {
				return f.c.wrap(s, rerr, "remove", n)
			}
			err = s.sftp.Rename(o, n)
		}
	}
	return f.c.wrap(s, err, "rename", o, n)
}

// RenameNoReplace implements filekit.NoReplaceRenamer with SFTP's own
// rename request, which the protocol makes fail when the target exists
// (OpenSSH links the new name, then unlinks the old one). Some servers
// replace instead, so a Stat comes first: with those, a file created
// between the two is replaced.
func (f *remoteFS) RenameNoReplace(oldname, newname string) error {
	s, err := f.c.session()
	if err != nil {
		return err
	}
	o, n := f.abs(oldname), f.abs(newname)
	if _, err := s.sftp.Stat(n); err == nil {
		return f.c.wrap(s, fs.ErrExist, "rename", o, n)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return f.c.wrap(s, err, "stat", n)
	}
	err = s.sftp.Rename(o, n)
	if err != nil {
		if _, serr := s.sftp.Stat(n); serr == nil {
			err = fs.ErrExist
		}
	}
	return f.c.wrap(s, err, "rename", o, n)
}

// Remove implements filekit.FS.
func (f *remoteFS) Remove(name string) error {
	s, err := f.c.session()
	if err != nil {
		return err
	}
	p := f.abs(name)
	return f.c.wrap(s, s.sftp.Remove(p), "remove", p)
}

// MkdirAll implements filekit.FS. Directories it created or found are
// remembered; a later failure to create a file in one forgets them all.
func (f *remoteFS) MkdirAll(name string) error {
	p := f.abs(name)
	f.mu.Lock()
	known := f.dirs[p]
	f.mu.Unlock()
	if known {
		return nil
	}
	s, err := f.c.session()
	if err != nil {
		return err
	}
	if err := s.sftp.MkdirAll(p); err != nil {
		return f.c.wrap(s, err, "create directory", p)
	}
	f.mu.Lock()
	f.dirs[p] = true
	f.mu.Unlock()
	return nil
}

func (f *remoteFS) forgetDirs() {
	f.mu.Lock()
	clear(f.dirs)
	f.mu.Unlock()
}

// Create implements filekit.WriteFS: O_EXCL, then file_mode.
func (f *remoteFS) Create(name string) (filekit.WriteFile, error) {
	s, err := f.c.session()
	if err != nil {
		return nil, err
	}
	p := f.abs(name)
	sf, err := s.sftp.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		f.forgetDirs()
		// OpenSSH reports an existing file as a plain failure.
		if _, serr := s.sftp.Stat(p); serr == nil {
			err = fs.ErrExist
		}
		return nil, f.c.wrap(s, err, "create", p)
	}
	if f.mode != 0 {
		if err := sf.Chmod(f.mode); err != nil {
			sf.Close()
			return nil, f.c.wrap(s, err, "chmod", p)
		}
	}
	return &remoteWriter{fs: f, s: s, f: sf, name: p}, nil
}

// OpenWrite implements filekit.WriteFS.
func (f *remoteFS) OpenWrite(name string) (filekit.WriteFile, error) {
	s, err := f.c.session()
	if err != nil {
		return nil, err
	}
	p := f.abs(name)
	sf, err := s.sftp.OpenFile(p, os.O_WRONLY)
	if err != nil {
		return nil, f.c.wrap(s, err, "open for writing", p)
	}
	if _, err := sf.Seek(0, io.SeekEnd); err != nil {
		sf.Close()
		return nil, f.c.wrap(s, err, "seek to the end of", p)
	}
	return &remoteWriter{fs: f, s: s, f: sf, name: p}, nil
}

// Truncate implements filekit.WriteFS.
func (f *remoteFS) Truncate(name string, size int64) error {
	s, err := f.c.session()
	if err != nil {
		return err
	}
	p := f.abs(name)
	return f.c.wrap(s, s.sftp.Truncate(p, size), "truncate", p)
}

// SyncDir implements filekit.WriteFS: SFTP cannot fsync a directory.
func (f *remoteFS) SyncDir(string) error { return nil }

// Close closes the connection (the sink's Writer closes its FS).
func (f *remoteFS) Close() error {
	f.c.close()
	return nil
}

// remoteWriter is a file written over SFTP.
type remoteWriter struct {
	fs   *remoteFS
	s    *session
	f    *sftp.File
	name string
}

// Write writes p, with concurrent requests when it is larger than a
// packet; it returns once the server acknowledged every request.
func (w *remoteWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	return n, w.fs.c.wrap(w.s, err, "write", w.name)
}

// Sync fsyncs the file on the server with fsync@openssh.com; without the
// extension it returns nil, the server having acknowledged every write.
func (w *remoteWriter) Sync() error {
	if !w.s.fsync {
		return nil
	}
	return w.fs.c.wrap(w.s, w.f.Sync(), "fsync", w.name)
}

// Close closes the remote handle.
func (w *remoteWriter) Close() error {
	return w.fs.c.wrap(w.s, w.f.Close(), "close", w.name)
}

// readAhead bounds how far a download runs ahead of its reader.
const readAhead = 512 << 10

// smallFile is the size up to which a file is fetched as soon as it is
// opened, with one ReadAt of the size its handle reports (its chunks
// requested at once): no request is spent on finding the end, and files
// opened ahead are ready when their turn comes. A larger file streams
// once it is read (Read or WriteTo).
const smallFile = 1 << 20

// remoteReader is a file read over SFTP. Its handle is stat'ed at once; a
// small file downloads at once into a bounded buffer that Read drains. A
// large one streams from the first Read or WriteTo (pkg/sftp's WriteTo,
// max_inflight bytes of requests in flight, feeding a buffer of at most
// readAhead bytes), so a decoder reading small pieces still gets the
// throughput of pipelined requests. Each download
// owns its remote handle and closes it when it ends, so Close never waits
// for the network. It is used by one goroutine at a time.
type remoteReader struct {
	fs   *remoteFS
	s    *session
	name string
	off  int64 // offset of the next byte Read returns
	buf  *pipe // the current download

	stat    chan struct{} // closed once the first download stat'ed the handle
	fi      fs.FileInfo
	statErr error
}

// start stats the handle and, for a small file, downloads it from off;
// a large file's handle is handed back through the pipe (errHandoff).
func (r *remoteReader) start(sf *sftp.File, off int64) {
	p := newPipe(readAhead)
	r.buf, r.off = p, off
	first := r.stat == nil
	if first {
		r.stat = make(chan struct{})
	}
	sess := r.s
	go func() {
		fi, err := sf.Stat()
		if first {
			r.fi, r.statErr = fi, err
			close(r.stat)
		}
		if err == nil && fi.Size()-off > smallFile {
			if !p.handOff(sf) {
				sf.Close()
			}
			return
		}
		if err == nil {
			err = readSmall(sf, off, fi.Size()-off, p)
		}
		sf.Close()
		p.finish(r.fs.c, sess, r.name, err)
	}()
}

// readSmall writes n bytes of sf from off to p, in one ReadAt: the
// snapshot of the size the handle reported.
func readSmall(sf *sftp.File, off, n int64, p *pipe) error {
	if n <= 0 {
		return nil
	}
	b := make([]byte, n)
	got, err := sf.ReadAt(b, off)
	if got > 0 {
		if _, werr := p.Write(b[:got]); werr != nil {
			return werr
		}
	}
	if err == io.EOF {
		err = nil // the file shrank
	}
	return err
}

// stream turns a handed-off large file into a download feeding a new
// buffer, for Read.
func (r *remoteReader) stream() {
	sf := r.buf.take()
	p := newPipe(readAhead)
	r.buf = p
	off, sess := r.off, r.s
	go func() {
		var err error
		if off > 0 {
			_, err = sf.Seek(off, io.SeekStart)
		}
		if err == nil {
			_, err = sf.WriteTo(p)
		}
		sf.Close()
		p.finish(r.fs.c, sess, r.name, err)
	}()
}

// Stat returns the file's info from its open handle (filekit's Source
// prefers it to a Stat of the path: no round trip of its own).
func (r *remoteReader) Stat() (fs.FileInfo, error) {
	<-r.stat
	if r.statErr != nil {
		return nil, r.fs.c.wrap(r.s, r.statErr, "stat", r.name)
	}
	return r.fi, nil
}

// Read implements io.Reader.
func (r *remoteReader) Read(b []byte) (int, error) {
	for {
		if r.buf == nil {
			return 0, os.ErrClosed
		}
		n, err := r.buf.Read(b)
		if err == errHandoff {
			r.stream()
			continue
		}
		r.off += int64(n)
		return n, err
	}
}

// WriteTo implements io.WriterTo, for io.Copy: what the download
// buffered goes to w in large writes, without another copy. The buffer
// stays between the download and w (a slow write does not stall the
// requests in flight).
func (r *remoteReader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for {
		if r.buf == nil {
			return n, os.ErrClosed
		}
		m, err := r.buf.WriteTo(w)
		r.off += m
		n += m
		if err == errHandoff {
			r.stream()
			continue
		}
		return n, err
	}
}

// Seek implements io.Seeker. Moving elsewhere than the current offset
// stops the download and starts another there, on a new handle.
func (r *remoteReader) Seek(offset int64, whence int) (int64, error) {
	if r.buf == nil {
		return 0, os.ErrClosed
	}
	target := offset
	switch whence {
	case io.SeekCurrent:
		target = r.off + offset
	case io.SeekEnd:
		s, err := r.fs.c.session()
		if err != nil {
			return 0, err
		}
		fi, err := s.sftp.Stat(r.name)
		if err != nil {
			return 0, r.fs.c.wrap(s, err, "stat", r.name)
		}
		target = fi.Size() + offset
	}
	if target < 0 {
		return 0, fmt.Errorf("seek %q: negative offset %d", r.name, target)
	}
	if target == r.off {
		return target, nil
	}
	if r.buf.handedOff() {
		// A large file not streaming yet: it will start at the new offset.
		r.off = target
		return target, nil
	}
	r.buf.closeRead()
	r.buf = nil
	s, err := r.fs.c.session()
	if err != nil {
		return 0, err
	}
	sf, err := s.sftp.Open(r.name)
	if err != nil {
		return 0, r.fs.c.wrap(s, err, "open", r.name)
	}
	r.s = s
	r.start(sf, target)
	return target, nil
}

// Close stops the download; its goroutine closes the remote handle.
func (r *remoteReader) Close() error {
	if r.buf != nil {
		r.buf.closeRead()
		r.buf = nil
	}
	return nil
}

var (
	errReaderGone = errors.New("sftp: reader closed")
	// errHandoff tells the reader of a pipe to take the large file's
	// handle instead (take).
	errHandoff = errors.New("sftp: large file handed off")
)

// pipe is a bounded in-memory pipe: Write blocks while limit bytes wait
// to be read. Its buffer grows with what waits, so a small file costs
// little memory.
type pipe struct {
	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte
	spare   []byte     // WriteTo's other buffer
	handoff *sftp.File // a large file's handle for the reader (errHandoff)
	r       int        // read position in buf
	limit   int
	werr    error // the writer is done: io.EOF or why it failed
	rdone   bool  // the reader is gone
}

func newPipe(limit int) *pipe {
	p := &pipe{limit: limit}
	p.cond.L = &p.mu
	return p
}

func (p *pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for len(b) > 0 {
		for !p.rdone && len(p.buf)-p.r >= p.limit {
			p.cond.Wait()
		}
		if p.rdone {
			return n, errReaderGone
		}
		k := min(p.limit-(len(p.buf)-p.r), len(b))
		if p.r > 0 && cap(p.buf)-len(p.buf) < k {
			m := copy(p.buf, p.buf[p.r:])
			p.buf, p.r = p.buf[:m], 0
		}
		p.buf = append(p.buf, b[:k]...)
		b, n = b[k:], n+k
		p.cond.Broadcast()
	}
	return n, nil
}

func (p *pipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.r == len(p.buf) && p.werr == nil && !p.rdone {
		p.cond.Wait()
	}
	if p.rdone {
		return 0, os.ErrClosed
	}
	if p.r == len(p.buf) {
		return 0, p.werr
	}
	n := copy(b, p.buf[p.r:])
	p.r += n
	if p.r == len(p.buf) {
		p.buf, p.r = p.buf[:0], 0
	}
	p.cond.Broadcast()
	return n, nil
}

// WriteTo hands what is buffered to w in one write, while the writer
// fills a second buffer: no copy beyond the one into the pipe.
func (p *pipe) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for {
		p.mu.Lock()
		for p.r == len(p.buf) && p.werr == nil && !p.rdone {
			p.cond.Wait()
		}
		if p.rdone {
			p.mu.Unlock()
			return n, os.ErrClosed
		}
		if p.r == len(p.buf) {
			err := p.werr
			p.mu.Unlock()
			if err == io.EOF {
				err = nil
			}
			return n, err
		}
		full, r := p.buf, p.r
		p.buf, p.spare, p.r = p.spare[:0], nil, 0
		p.cond.Broadcast()
		p.mu.Unlock()
		m, err := w.Write(full[r:])
		n += int64(m)
		if err != nil {
			return n, err
		}
		p.mu.Lock()
		if !p.rdone {
			p.spare = full[:0]
		}
		p.mu.Unlock()
	}
}

// handOff gives the reader a large file's handle to stream itself; it
// reports false when the reader is gone (the caller closes sf).
func (p *pipe) handOff(sf *sftp.File) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rdone {
		return false
	}
	p.handoff, p.werr = sf, errHandoff
	p.cond.Broadcast()
	return true
}

// handedOff waits for the download's first result and reports whether it
// is a handle handed off.
func (p *pipe) handedOff() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.r == len(p.buf) && p.werr == nil && !p.rdone {
		p.cond.Wait()
	}
	return p.werr == errHandoff && p.handoff != nil
}

// take returns the handle handOff left.
func (p *pipe) take() *sftp.File {
	p.mu.Lock()
	defer p.mu.Unlock()
	sf := p.handoff
	p.handoff = nil
	return sf
}

// finish ends the stream with the download's outcome.
func (p *pipe) finish(c *conn, s *session, name string, err error) {
	if err != nil && !errors.Is(err, errReaderGone) {
		p.closeWrite(c.wrap(s, err, "read", name))
		return
	}
	p.closeWrite(io.EOF)
}

// closeWrite ends the stream: readers get err (io.EOF at the end) once
// the buffer is drained.
func (p *pipe) closeWrite(err error) {
	p.mu.Lock()
	p.werr = err
	p.cond.Broadcast()
	p.mu.Unlock()
}

// closeRead tells the writer nobody reads any more.
func (p *pipe) closeRead() {
	p.mu.Lock()
	p.rdone = true
	p.buf, p.spare = nil, nil
	if p.handoff != nil {
		go p.handoff.Close()
		p.handoff = nil
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}
