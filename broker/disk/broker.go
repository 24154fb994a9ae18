// Package disk is Sluice's default queue backend: every queue is an
// append-only log of segment files under the data dir, and Enqueue returns
// only once its messages are on disk. Concurrent enqueues share one write
// and one fdatasync (group commit), and so do acks, so durability stays
// cheap. docs/broker.md describes the files, the commit protocol, recovery
// and what survives a restart.
//
// A data dir belongs to one process at a time: Open takes a lock on
// dir/LOCK and refuses a dir another process holds (broker.ErrLocked).
// OpenReadOnly reads a dir without the lock, also while an agent runs on it,
// for listing, statistics and browsing.
package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/disk/internal/vfs"
)

// Options configure a disk broker.
type Options struct {
	// Logger receives warnings about recovery (torn tails, quarantined
	// records, corrupt cursor files) and fatal errors. Nil means
	// slog.Default().
	Logger *slog.Logger
	// OnFatal is called once, from the goroutine that met it, with the first
	// error that makes the data dir unusable: a failed write or fsync. The
	// broker never retries an fsync (after a failure the kernel may have
	// dropped the dirty pages, so a retry could succeed and lie); every
	// later call returns the same error. The agent should stop.
	OnFatal func(error)
	// OnCommit, when set, is called after every commit of a data log with
	// how long the write and fdatasync took, how many records and bytes they
	// carried. It runs on the commit path: keep it short.
	OnCommit func(latency time.Duration, records, bytes int)
	// Defaults fill the zero fields of the options each queue is opened
	// with, before broker.Defaults fill what is still zero.
	Defaults broker.Options
	// MaxCommitBytes bounds what one commit writes, so a commit's latency
	// stays bounded under load. Zero means 16 MiB.
	MaxCommitBytes int
	// FS is the file system; nil means the operating system's. Tests use
	// an in-memory one that simulates crashes.
	FS vfs.FS
}

// ErrReadOnly is returned by calls that would change a broker opened with
// OpenReadOnly.
var ErrReadOnly = errors.New("the data dir is open read-only")

var errClosedQueue = fmt.Errorf("queue: %w", broker.ErrClosed)

// Broker is a disk broker. It implements broker.Broker.
type Broker struct {
	dir      string
	opts     Options
	fs       vfs.FS
	logger   *slog.Logger
	readOnly bool
	lock     io.Closer

	mu     sync.Mutex
	queues map[string]*queue
	closed bool

	fatalOnce sync.Once
	fatalErr  atomic.Pointer[error]
	dead      chan struct{} // closed on a fatal error
}

var _ broker.Broker = (*Broker)(nil)

const (
	lockFile      = "LOCK"
	queuesDir     = "queues"
	quarantineDir = "quarantine"
	blobDir       = "_blobs"
)

// Open opens the data dir dir, creating it when needed, and locks it.
func Open(dir string, opts Options) (*Broker, error) {
	b := newBroker(dir, opts)
	if err := b.fs.MkdirAll(path.Join(dir, queuesDir)); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	l, err := b.fs.Lock(path.Join(dir, lockFile))
	if err != nil {
		if errors.Is(err, vfs.ErrLocked) {
			return nil, fmt.Errorf("data dir %s: %w (%v)", dir, broker.ErrLocked, err)
		}
		return nil, fmt.Errorf("data dir %s: lock: %w", dir, err)
	}
	b.lock = l
	return b, nil
}

// OpenReadOnly opens the data dir dir for reading only. It takes no lock,
// writes nothing, and works while another process has the dir open: queues
// are read afresh by each Peek and Stats, and a tail being written is
// ignored up to its last complete record.
func OpenReadOnly(dir string, opts Options) (*Broker, error) {
	b := newBroker(dir, opts)
	b.readOnly = true
	if _, err := b.fs.ReadDir(path.Join(dir, queuesDir)); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	return b, nil
}

func newBroker(dir string, opts Options) *Broker {
	b := &Broker{dir: filepath.ToSlash(dir), opts: opts, fs: opts.FS, logger: opts.Logger, queues: map[string]*queue{}, dead: make(chan struct{})}
	if b.fs == nil {
		b.fs = vfs.OS{}
	}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	if b.opts.MaxCommitBytes <= 0 {
		b.opts.MaxCommitBytes = 16 << 20
	}
	return b
}

// fatal records the first fatal error and reports it.
func (b *Broker) fatal(err error) {
	b.fatalOnce.Do(func() {
		b.fatalErr.Store(&err)
		close(b.dead)
		b.logger.Error("disk broker: fatal storage error, the data dir can no longer be trusted; stopping", "dir", b.dir, "error", err)
		if b.opts.OnFatal != nil {
			b.opts.OnFatal(err)
		}
	})
}

// Err returns the fatal error the broker met, or nil.
func (b *Broker) Err() error {
	if p := b.fatalErr.Load(); p != nil {
		return *p
	}
	return nil
}

// validName checks a queue name: slash-separated parts, none empty, "."
// or "..", none starting with "_" (reserved for the queue's own files).
func validName(name string) error {
	if name == "" {
		return errors.New("queue name is empty")
	}
	for _, p := range strings.Split(name, "/") {
		if p == "" || p == "." || p == ".." || strings.HasPrefix(p, "_") || strings.ContainsAny(p, "\\\x00") {
			return fmt.Errorf("queue name %q: each /-separated part must be non-empty, not . or .., and not start with _", name)
		}
	}
	return nil
}

func (b *Broker) queueDir(name string) string { return path.Join(b.dir, queuesDir, name) }

// Open opens (creating it when needed) the queue called name and, unless it
// is itself a dead-letter queue, its dead-letter queue, which always has
// the consumer group broker.ReplayGroup.
func (b *Broker) Open(name string, opts broker.Options) (broker.Queue, error) {
	if b.readOnly {
		if err := validName(name); err != nil {
			return nil, err
		}
		return openReadOnlyQueue(b, name)
	}
	q, err := b.open(name, opts)
	if err != nil {
		return nil, err
	}
	return q, nil
}

func (b *Broker) open(name string, opts broker.Options) (*queue, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("broker: %w", broker.ErrClosed)
	}
	if err := b.Err(); err != nil {
		return nil, err
	}
	q, err := b.openLocked(name, opts)
	if err != nil {
		return nil, err
	}
	if !broker.IsDLQ(name) {
		dopts := opts
		dopts.MaxBytes, dopts.MaxMessages = 0, 0
		dopts.MaxAttempts = -1
		dopts.Groups = nil
		d, err := b.openLocked(name+broker.DLQSuffix, dopts)
		if err != nil {
			return nil, err
		}
		q.dlq = d
		if _, err := d.Consumer(broker.ReplayGroup); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func (b *Broker) withDefaults(o broker.Options) broker.Options {
	d := b.opts.Defaults
	if o.MaxBytes == 0 {
		o.MaxBytes = d.MaxBytes
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = d.MaxMessages
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.Backoff == (broker.Backoff{}) {
		o.Backoff = d.Backoff
	}
	if o.VisibilityTimeout == 0 {
		o.VisibilityTimeout = d.VisibilityTimeout
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = d.SegmentBytes
	}
	if o.InlineMax == 0 {
		o.InlineMax = d.InlineMax
	}
	return o.WithDefaults()
}

func (b *Broker) openLocked(name string, opts broker.Options) (*queue, error) {
	opts = b.withDefaults(opts)
	if q, ok := b.queues[name]; ok {
		if err := q.setOptions(opts); err != nil {
			return nil, err
		}
		return q, nil
	}
	q, err := openQueue(b, name, opts)
	if err != nil {
		return nil, fmt.Errorf("open queue %s in %s: %w", name, b.dir, err)
	}
	b.queues[name] = q
	return q, nil
}

// List returns the names of the queues in the data dir, sorted.
func (b *Broker) List() ([]string, error) {
	var names []string
	var walk func(rel string) error
	walk = func(rel string) error {
		es, err := b.fs.ReadDir(path.Join(b.dir, queuesDir, rel))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && rel != "" {
				return nil // removed meanwhile
			}
			return err
		}
		isQueue := false
		for _, e := range es {
			n := e.Name()
			if _, ok := parseSegName(n); ok {
				isQueue = true
			}
			if e.IsDir() && !strings.HasPrefix(n, "_") {
				if err := walk(path.Join(rel, n)); err != nil {
					return err
				}
			}
		}
		if isQueue {
			names = append(names, rel)
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, fmt.Errorf("list queues in %s: %w", b.dir, err)
	}
	sort.Strings(names)
	return names, nil
}

// Close closes every open queue and releases the data dir.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	qs := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, q)
	}
	b.mu.Unlock()
	var errs []error
	for _, q := range qs {
		if err := q.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if b.lock != nil {
		if err := b.lock.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// forget drops a closed queue, so that Open reads it afresh.
func (b *Broker) forget(q *queue) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.queues[q.name] == q {
		delete(b.queues, q.name)
	}
}

// quarantine copies a corrupt span of a queue's file to dir/quarantine.
func (b *Broker) quarantine(queue, file string, off int64, data []byte) (string, error) {
	qdir := path.Join(b.dir, quarantineDir)
	if err := b.fs.MkdirAll(qdir); err != nil {
		return "", err
	}
	name := path.Join(qdir, fmt.Sprintf("%s-%s-%d-%d.bad", url.PathEscape(queue), path.Base(file), off, time.Now().UnixNano()))
	if err := writeFileSync(b.fs, name, data); err != nil {
		return "", err
	}
	return name, b.fs.SyncDir(qdir)
}
