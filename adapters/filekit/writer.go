package filekit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform"
)

// What to do when a published name already exists.
const (
	// IfExistsRenameNew publishes under the first free "stem.N.ext" (N from
	// 1): nothing published is ever replaced. It is what rolling needs, as
	// every roll of a constant path publishes the same name again.
	IfExistsRenameNew = "rename_new"
	// IfExistsOverwrite replaces the existing file atomically.
	IfExistsOverwrite = "overwrite"
	// IfExistsFail publishes a file only under its own name: while the
	// name exists, publishing fails with an error wrapping fs.ErrExist and
	// the data waits in its temp file, published (before any new write)
	// once the name is free. Atomic with a WriteFS that is a
	// NoReplaceRenamer; otherwise a Stat precedes the rename.
	IfExistsFail = "fail"
	// IfExistsAppend appends a file's content to the existing file of the
	// same name (a file that does not exist yet is published by rename).
	// It is not atomic: a receiver may see part of an append, and a crash
	// during an append repeats what was appended of it. The codec's header
	// is left out when the file exists when the temp file is created.
	IfExistsAppend = "append"
)

// IfExistsModes lists the if_exists policies every file-like sink offers,
// for Spec enums (SinkFields).
var IfExistsModes = []string{IfExistsRenameNew, IfExistsOverwrite}

// IfExistsMoreModes lists the policies a sink may offer beyond
// IfExistsModes; the Writer implements them all.
var IfExistsMoreModes = []string{IfExistsFail, IfExistsAppend}

// NoReplaceRenamer is an optional capability of a WriteFS whose rename can
// refuse to replace: RenameNoReplace renames oldname to newname atomically
// and fails, with an error wrapping fs.ErrExist, when newname exists. SFTP's
// own rename request does that.
type NoReplaceRenamer interface {
	RenameNoReplace(oldname, newname string) error
}

// WriterOptions configure a Writer.
type WriterOptions struct {
	// Open returns the filesystem, rooted at the base directory; it is
	// called by Connect (the first time, and again after a failure). A
	// returned FS that is an io.Closer is closed by Close.
	Open func(ctx context.Context) (WriteFS, error)
	// Path is rendered per message and must stay under the root (Confine).
	Path *transform.Template
	// Codec encodes records; nil means codec "none": Raw payloads are
	// written as they are.
	Codec adapters.Codec
	// Rolling: a file is published once it holds MaxRecords records or
	// MaxBytes bytes (checked after each record, so a file may pass
	// MaxBytes by one record), or MaxAge after it was opened, even when no
	// more writes come. Zero disables a limit.
	MaxRecords int64
	MaxBytes   int64
	MaxAge     time.Duration
	// IfExists is one of IfExistsModes (default rename_new).
	IfExists string
	// DoneSuffix, when not empty, makes the writer create an empty marker
	// NAME+DoneSuffix after publishing NAME.
	DoneSuffix string
	// Resources of the adapter: identity (in temp names), logger, State
	// (committed lengths of temp files).
	Resources adapters.Resources
}

// Writer is a generic sink of files published atomically on a WriteFS: the
// built-in file sink and the SFTP sink are Writers over different
// filesystems. It implements adapters.Sink.
//
// Records are appended to a temp file in the directory of their target
// (".sluice-TAG-UNIQUE-NAME.tmp", hidden from receivers, TAG identifying the
// pipeline and sink); Write returns nil only after the data is fsynced and
// its length is recorded in State. Publishing writes the codec's trailer,
// fsyncs, renames the temp file to its name and fsyncs the directory.
// Connect recovers the temp files a crash left behind: each is cut back to
// its last committed length (dropping records whose Write never returned
// nil), finished with the codec's trailer (EncoderOptions.Append) and
// published.
//
// Errors: a path that cannot be rendered or escapes the root, and a record
// the codec cannot encode fail that message as Permanent; a full disk or
// quota (ENOSPC, EDQUOT) is Unavailable; every other I/O error (permission
// denied, read-only filesystem) is transient, since an operator can fix it.
type Writer struct {
	o    WriterOptions
	log  *slog.Logger
	tag  string
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex // one owner of the open files
	fs      WriteFS
	files   map[string]*outFile // by final path
	orphans map[string]tmpEntry // by temp path: to recover
	next    map[string]int      // next rename_new number by final path
	runner  transform.Runner
	seq     uint64
	closed  bool
	ticking bool
}

var _ adapters.Sink = (*Writer)(nil)

// tmpEntry is the durable record of a temp file, in State under tmpPrefix
// + temp path.
type tmpEntry struct {
	Final string `json:"final"`
	Len   int64  `json:"len"` // committed length; -1: unknown (no State)
}

const tmpPrefix = "tmp/"

type outFile struct {
	final, temp string
	f           WriteFile
	enc         adapters.Encoder
	encOpts     adapters.EncoderOptions
	stage       bytes.Buffer // encoded, not yet written
	written     int64        // bytes written to f
	committed   int64        // durable and recorded
	records     int64
	opened      time.Time
	err         error // I/O failure: the file was sealed
}

func (of *outFile) size() int64 { return of.written + int64(of.stage.Len()) }

// NewWriter checks opts and returns a Writer. It does no I/O.
func NewWriter(o WriterOptions) (*Writer, error) {
	if o.Open == nil || o.Path == nil {
		return nil, errors.New("filekit: WriterOptions needs Open and Path")
	}
	if o.IfExists == "" {
		o.IfExists = IfExistsRenameNew
	}
	switch o.IfExists {
	case IfExistsRenameNew, IfExistsOverwrite, IfExistsFail, IfExistsAppend:
	default:
		return nil, fmt.Errorf("unknown if_exists %q (known: %s)", o.IfExists, strings.Join(append(IfExistsModes, IfExistsMoreModes...), ", "))
	}
	log := o.Resources.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Writer{
		o: o, log: log, tag: adapters.NewID(o.Resources.Pipeline, o.Resources.Name)[:8],
		stop: make(chan struct{}), files: map[string]*outFile{}, orphans: map[string]tmpEntry{}, next: map[string]int{},
	}, nil
}

// TempPrefix returns the name prefix of this writer's temp files.
func (w *Writer) TempPrefix() string { return ".sluice-" + w.tag + "-" }

// Connect opens the filesystem, recovers the temp files of an earlier run
// and starts the max_age timer.
func (w *Writer) Connect(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return adapters.ErrClosed
	}
	if w.fs == nil {
		fsys, err := w.o.Open(ctx)
		if err != nil {
			return classify(err)
		}
		w.fs = fsys
		if err := w.findOrphans(ctx); err != nil {
			return err
		}
	}
	if err := w.recoverOrphans(ctx); err != nil {
		return err
	}
	if w.o.MaxAge > 0 && !w.ticking {
		w.ticking = true
		w.wg.Add(1)
		go w.tick()
	}
	return nil
}

// findOrphans lists the temp files of an earlier run: from State, or, when
// there is none, by walking the tree for this writer's temp names.
func (w *Writer) findOrphans(ctx context.Context) error {
	if w.o.Resources.State != nil {
		kv, err := store{w.o.Resources.State}.load(ctx, tmpPrefix)
		if err != nil {
			return err
		}
		for temp, b := range kv {
			var e tmpEntry
			if err := json.Unmarshal(b, &e); err != nil || e.Final == "" {
				w.log.Warn("ignoring unreadable temp-file record", "temp", temp, "error", err)
				continue
			}
			w.orphans[temp] = e
		}
		return nil
	}
	dirs := []string{""}
	for len(dirs) > 0 {
		dir := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		infos, err := w.fs.ReadDir(dir)
		if err != nil {
			return classify(fmt.Errorf("list %q: %w", dir, err))
		}
		for _, fi := range infos {
			rel := path.Join(dir, fi.Name())
			if fi.IsDir() {
				dirs = append(dirs, rel)
			} else if final, ok := w.parseTemp(rel); ok {
				w.orphans[rel] = tmpEntry{Final: final, Len: -1}
			}
		}
	}
	return nil
}

func (w *Writer) tempName(final string) string {
	w.seq++
	dir, base := path.Split(final)
	if len(base) > maxTempBase {
		// Stay under NAME_MAX; State holds the full final name.
		base = strings.ToValidUTF8(base[:maxTempBase], "")
	}
	return dir + w.TempPrefix() + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatUint(w.seq, 36) + "-" + base + ".tmp"
}

// maxTempBase bounds the part of the final name copied into a temp name.
const maxTempBase = 160

// parseTemp returns the final name of one of this writer's temp files.
func (w *Writer) parseTemp(rel string) (string, bool) {
	dir, base := path.Split(rel)
	rest, ok := strings.CutPrefix(base, w.TempPrefix())
	if !ok || !strings.HasSuffix(rest, ".tmp") {
		return "", false
	}
	_, name, ok := strings.Cut(strings.TrimSuffix(rest, ".tmp"), "-")
	if !ok || name == "" {
		return "", false
	}
	return dir + name, true
}

// recoverOrphans finishes and publishes every leftover temp file.
func (w *Writer) recoverOrphans(ctx context.Context) error {
	var errs []error
	for temp, e := range w.orphans {
		if err := w.recoverTemp(ctx, temp, e); err != nil {
			errs = append(errs, fmt.Errorf("recover temp file %q: %w", temp, err))
			continue
		}
		delete(w.orphans, temp)
	}
	if len(errs) > 0 {
		return classify(errors.Join(errs...))
	}
	return nil
}

// recoverTemp cuts a temp file back to its committed length, appends the
// codec's trailer and publishes it; an empty one is removed.
func (w *Writer) recoverTemp(ctx context.Context, temp string, e tmpEntry) error {
	fi, err := w.fs.Stat(temp)
	if errors.Is(err, fs.ErrNotExist) {
		return w.forget(ctx, temp)
	}
	if err != nil {
		return err
	}
	if e.Len >= 0 && fi.Size() > e.Len {
		if err := w.fs.Truncate(temp, e.Len); err != nil {
			return err
		}
	}
	if e.Len == 0 || fi.Size() == 0 {
		if err := w.fs.Remove(temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return w.forget(ctx, temp)
	}
	f, err := w.fs.OpenWrite(temp)
	if err != nil {
		return err
	}
	if w.o.Codec != nil {
		if err := w.o.Codec.NewEncoder(f, adapters.EncoderOptions{Append: true}).Close(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	final, err := w.rename(temp, e.Final)
	if err != nil {
		return err
	}
	w.log.Info("published a file left by an earlier run", "path", final)
	return w.forget(ctx, temp)
}

// renameNoReplace renames temp to final unless final exists: then it fails
// with an error wrapping fs.ErrExist.
func (w *Writer) renameNoReplace(temp, final string) error {
	nr, atomic := w.fs.(NoReplaceRenamer)
	if !atomic {
		if _, err := w.fs.Stat(final); err == nil {
			return &existsError{final}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return w.fs.Rename(temp, final)
	}
	err := nr.RenameNoReplace(temp, final)
	if errors.Is(err, fs.ErrExist) {
		return &existsError{final}
	}
	return err
}

type existsError struct{ name string }

func (e *existsError) Error() string {
	return "cannot publish " + quote(e.name) + ": the file exists (if_exists: fail)"
}
func (e *existsError) Unwrap() error { return fs.ErrExist }

// appendTo appends the content of temp to final, makes it durable and
// removes temp.
func (w *Writer) appendTo(temp, final string) error {
	dst, err := w.fs.OpenWrite(final)
	if err != nil {
		return err
	}
	src, err := w.fs.Open(temp)
	if err != nil {
		dst.Close()
		return err
	}
	_, err = io.Copy(dst, src)
	src.Close()
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append to %q: %w", final, err)
	}
	return w.fs.Remove(temp)
}

func (w *Writer) forget(ctx context.Context, temp string) error {
	return store{w.o.Resources.State}.del(ctx, tmpPrefix+temp)
}

// rename publishes temp as final (or the next free name) and makes it
// durable, with its done marker.
func (w *Writer) rename(temp, final string) (string, error) {
	var err error
	switch w.o.IfExists {
	case IfExistsRenameNew:
		if final, err = freeName(w.fs, final, w.next); err == nil {
			err = w.fs.Rename(temp, final)
		}
	case IfExistsFail:
		err = w.renameNoReplace(temp, final)
	case IfExistsAppend:
		err = w.renameNoReplace(temp, final)
		if errors.Is(err, fs.ErrExist) {
			err = w.appendTo(temp, final)
		}
	default:
		err = w.fs.Rename(temp, final)
	}
	if err != nil {
		return "", err
	}
	if w.o.DoneSuffix != "" {
		m, err := w.fs.Create(final + w.o.DoneSuffix)
		if err == nil {
			err = m.Close()
		}
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return final, fmt.Errorf("create done marker: %w", err)
		}
	}
	if err := w.fs.SyncDir(path.Dir(final)); err != nil {
		return final, err
	}
	return final, nil
}

// Write appends msgs to their files and returns once they are durable.
func (w *Writer) Write(ctx context.Context, msgs []adapters.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return adapters.ErrClosed
	}
	if w.fs == nil {
		return adapters.ErrNotConnected
	}
	if len(w.orphans) > 0 {
		if err := w.recoverOrphans(ctx); err != nil {
			return err
		}
	}
	be := adapters.NewBatchError(0)
	dest := make([]*outFile, len(msgs))
	failed := map[string]error{}
	var touched []*outFile
	for i := range msgs {
		if err := ctx.Err(); err != nil {
			be.Fail(i, err)
			continue
		}
		m := &msgs[i]
		final, err := w.target(m)
		if err != nil {
			be.Fail(i, adapters.PermanentError(err))
			continue
		}
		if err := failed[final]; err != nil {
			be.Fail(i, err)
			continue
		}
		of := w.files[final]
		if of == nil {
			if of, err = w.create(ctx, final); err != nil {
				err = classify(fmt.Errorf("create temp file for %q: %w", final, err))
				failed[final] = err
				be.Fail(i, err)
				continue
			}
			w.files[final] = of
		}
		if err := w.encode(of, m); err != nil {
			be.Fail(i, adapters.PermanentError(fmt.Errorf("encode for %q: %w", final, err)))
			continue
		}
		dest[i] = of
		if len(touched) == 0 || touched[len(touched)-1] != of {
			touched = append(touched, of)
		}
		switch {
		case w.full(of):
			if err := w.publish(ctx, of); err != nil {
				w.fail(ctx, of, err)
			}
		case of.stage.Len() >= stageLimit:
			if err := w.flushStage(of); err != nil {
				w.fail(ctx, of, err)
			}
		}
		if of.err != nil {
			failed[final] = of.err
		}
	}
	for _, of := range touched {
		if of.err == nil && w.files[of.final] == of {
			if err := w.commit(ctx, of); err != nil {
				w.fail(ctx, of, err)
			}
		}
	}
	for i, of := range dest {
		if of != nil && of.err != nil {
			be.Fail(i, of.err)
		}
	}
	return collapse(be, len(msgs))
}

// stageLimit is how much encoded output is buffered before it is written.
const stageLimit = 256 << 10

// collapse returns the one error of a batch whose messages all failed the
// same way, so that the engine sees an Unavailable target as a whole.
func collapse(be *adapters.BatchError, n int) error {
	if len(be.Failed) == 0 {
		return nil
	}
	if len(be.Failed) == n {
		first := be.Failed[0]
		same := true
		for _, err := range be.Failed {
			if err != first {
				same = false
				break
			}
		}
		if same {
			return first
		}
	}
	return be
}

// target renders and confines the path of m.
func (w *Writer) target(m *adapters.Message) (string, error) {
	p, err := w.runner.Render(w.o.Path, m.Record, m.Meta)
	if err != nil {
		return "", fmt.Errorf("path: %w", err)
	}
	return Confine(p)
}

func (w *Writer) create(ctx context.Context, final string) (*outFile, error) {
	if err := w.fs.MkdirAll(path.Dir(final)); err != nil {
		return nil, err
	}
	temp := w.tempName(final)
	if err := (store{w.o.Resources.State}).put(ctx, tmpPrefix+temp, tmpEntry{Final: final}); err != nil {
		return nil, err
	}
	f, err := w.fs.Create(temp)
	if err != nil {
		if ferr := w.forget(ctx, temp); ferr != nil {
			w.log.Warn("cannot forget temp-file record", "temp", temp, "error", ferr)
		}
		return nil, err
	}
	of := &outFile{final: final, temp: temp, f: f, opened: time.Now()}
	if w.o.IfExists == IfExistsAppend {
		// Appended to an existing file: no second header.
		if fi, err := w.fs.Stat(final); err == nil && fi.Size() > 0 {
			of.encOpts.Append = true
		}
	}
	if w.o.Codec != nil {
		of.enc = w.o.Codec.NewEncoder(&of.stage, of.encOpts)
	}
	return of, nil
}

// encode appends one message to the stage; a failure leaves no trace of it.
func (w *Writer) encode(of *outFile, m *adapters.Message) error {
	if of.enc == nil {
		if m.Raw == nil {
			return errors.New("codec none writes Raw payloads and the message has none")
		}
		of.stage.Write(m.Raw)
		of.records++
		return nil
	}
	if m.Record == nil {
		return errors.New("the message has no record to encode (use codec: none for raw payloads)")
	}
	mark := of.stage.Len()
	err := of.enc.Encode(m.Record)
	if err == nil {
		err = of.enc.Flush()
	}
	if err != nil {
		of.stage.Truncate(mark)
		if of.size() == 0 {
			// The encoder may believe it wrote a header that was just cut.
			of.enc = w.o.Codec.NewEncoder(&of.stage, of.encOpts)
		}
		return err
	}
	of.records++
	return nil
}

func (w *Writer) full(of *outFile) bool {
	return (w.o.MaxRecords > 0 && of.records >= w.o.MaxRecords) || (w.o.MaxBytes > 0 && of.size() >= w.o.MaxBytes)
}

func (w *Writer) flushStage(of *outFile) error {
	if of.stage.Len() == 0 {
		return nil
	}
	n, err := of.f.Write(of.stage.Bytes())
	of.written += int64(n)
	of.stage.Reset()
	return err
}

// commit makes what was written to of durable and records its length.
func (w *Writer) commit(ctx context.Context, of *outFile) error {
	if err := w.flushStage(of); err != nil {
		return err
	}
	if of.written == of.committed {
		return nil
	}
	if err := of.f.Sync(); err != nil {
		return err
	}
	if err := (store{w.o.Resources.State}).put(ctx, tmpPrefix+of.temp, tmpEntry{Final: of.final, Len: of.written}); err != nil {
		return err
	}
	of.committed = of.written
	return nil
}

// publish finishes of and gives it its name.
func (w *Writer) publish(ctx context.Context, of *outFile) error {
	delete(w.files, of.final)
	if of.enc != nil {
		if err := of.enc.Close(); err != nil {
			return err
		}
	}
	if err := w.flushStage(of); err != nil {
		return err
	}
	if err := of.f.Sync(); err != nil {
		return err
	}
	err := of.f.Close()
	of.f = nil
	if err != nil {
		return err
	}
	if _, err := w.rename(of.temp, of.final); err != nil {
		return err
	}
	if err := w.forget(ctx, of.temp); err != nil {
		w.log.Warn("cannot forget temp-file record", "temp", of.temp, "error", err)
	}
	return nil
}

// fail records an I/O failure of of and seals it: cut back to its committed
// length and published, or left for recovery when that fails too.
func (w *Writer) fail(ctx context.Context, of *outFile, err error) {
	of.err = classify(fmt.Errorf("write %q: %w", of.final, err))
	if w.files[of.final] == of {
		delete(w.files, of.final)
	}
	if of.f != nil {
		of.f.Close()
		of.f = nil
	}
	e := tmpEntry{Final: of.final, Len: of.committed}
	if rerr := w.recoverTemp(ctx, of.temp, e); rerr != nil {
		w.log.Warn("cannot publish a file after a write error; retrying later", "temp", of.temp, "error", rerr)
		w.orphans[of.temp] = e
	}
}

// tick publishes files older than MaxAge.
func (w *Writer) tick() {
	defer w.wg.Done()
	every := w.o.MaxAge / 4
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			w.mu.Lock()
			for _, of := range w.files {
				if now.Sub(of.opened) >= w.o.MaxAge && of.records > 0 {
					if err := w.publish(context.Background(), of); err != nil {
						w.fail(context.Background(), of, err)
						w.log.Warn("cannot publish file at max_age", "path", of.final, "error", err)
					}
				}
			}
			w.mu.Unlock()
		}
	}
}

// Close publishes the open files and releases the filesystem. It is
// idempotent.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.stop)
	w.mu.Unlock()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, of := range w.files {
		if of.records == 0 {
			delete(w.files, of.final)
			of.f.Close()
			if err := w.fs.Remove(of.temp); err != nil {
				errs = append(errs, err)
			} else if err := w.forget(ctx, of.temp); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := w.publish(ctx, of); err != nil {
			w.fail(ctx, of, err)
			errs = append(errs, of.err)
		}
	}
	if c, ok := w.fs.(io.Closer); ok {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	w.fs = nil
	return errors.Join(errs...)
}
