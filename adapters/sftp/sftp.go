package sftp

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/filekit"
)

func init() {
	adapters.RegisterSource("sftp", sourceSpec(), newSource)
	adapters.RegisterSink("sftp", sinkSpec(), newSink)
}

// FS is the remote filesystem the sftp source and sink work on: a
// filekit.WriteFS over one SFTP connection, for tools and custom adapters
// that need the remote files themselves. Open starts downloading in the
// background with max_requests reads in flight. Close closes the
// connection.
type FS interface {
	filekit.WriteFS
	io.Closer
}

// OpenFS connects with the connection settings of conf, a configuration
// decoded with the sftp source's or sink's spec, and returns the server's
// filesystem: names are used as they are when root is "", else below root.
// Once the connection is lost, calls fail with errors wrapping
// adapters.ErrNotConnected; open another FS then.
func OpenFS(ctx context.Context, conf *adapters.Config, root string, log *slog.Logger) (FS, error) {
	c := newConn(dialOptionsFrom(conf, log))
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return newRemoteFS(c, root, 0), nil
}

// source is a filekit.Source over the remote directory, with the
// connection it reads through.
type source struct {
	conn  *conn
	inner *filekit.Source
}

var (
	_ adapters.Source        = (*source)(nil)
	_ adapters.HealthChecker = (*source)(nil)
)

func newSource(conf *adapters.Config, res adapters.Resources) (adapters.Source, error) {
	c := newConn(dialOptionsFrom(conf, res.Logger))
	o, err := filekit.SourceOptionsFrom(conf, res, newRemoteFS(c, "", 0))
	if err != nil {
		return nil, err
	}
	o.Filter = sizeAgeFilter(conf)
	o.OpenAhead = conf.Int("concurrency") - 1
	inner, err := filekit.NewSource(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", conf.Path(), err)
	}
	return &source{conn: c, inner: inner}, nil
}

// Connect dials when there is no live connection, then checks the
// directory and loads the checkpoints.
func (s *source) Connect(ctx context.Context) error {
	if err := s.conn.connect(ctx); err != nil {
		return err
	}
	return s.inner.Connect(ctx)
}

// Read implements adapters.Source.
func (s *source) Read(ctx context.Context) (adapters.Batch, error) { return s.inner.Read(ctx) }

// Close stops reading and closes the connection; it is idempotent.
func (s *source) Close(ctx context.Context) error {
	err := s.inner.Close(ctx)
	s.conn.close()
	return err
}

// Health reports whether the server answers a keepalive now.
func (s *source) Health(ctx context.Context) error { return s.conn.health(ctx) }

// sink is a filekit.Writer over base_dir on the server, with a watcher
// that dials again as soon as the connection is lost.
type sink struct {
	conn *conn
	w    *filekit.Writer
	log  *slog.Logger

	mu       sync.Mutex
	watching bool
	stopped  context.Context // done once Close began
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

var (
	_ adapters.Sink          = (*sink)(nil)
	_ adapters.HealthChecker = (*sink)(nil)
)

func newSink(conf *adapters.Config, res adapters.Resources) (adapters.Sink, error) {
	c := newConn(dialOptionsFrom(conf, res.Logger))
	var mode fs.FileMode
	if m := conf.String("file_mode"); m != "" {
		mode, _ = parseMode(m)
	}
	fsys := newRemoteFS(c, conf.String("base_dir"), mode)
	open := func(ctx context.Context) (filekit.WriteFS, error) {
		if err := c.connect(ctx); err != nil {
			return nil, err
		}
		if err := fsys.MkdirAll(""); err != nil {
			return nil, fmt.Errorf("base_dir: %w", err)
		}
		return fsys, nil
	}
	o, err := filekit.WriterOptionsFrom(conf, res, open)
	if err != nil {
		return nil, err
	}
	w, err := filekit.NewWriter(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", conf.Path(), err)
	}
	stopped, stop := context.WithCancel(context.Background())
	return &sink{conn: c, w: w, log: c.o.log, stopped: stopped, stop: stop}, nil
}

// Connect dials when there is no live connection (the Writer keeps its
// FS, whose connection this replaces), then lets the Writer publish the
// temp files a lost connection or a crash left.
func (s *sink) Connect(ctx context.Context) error {
	if err := s.conn.connect(ctx); err != nil {
		return err
	}
	if err := s.w.Connect(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.watching && s.stopped.Err() == nil {
		s.watching = true
		s.wg.Add(1)
		go s.watch()
	}
	return nil
}

// watch dials again, with backoff, whenever the connection is lost, and
// lets the Writer publish what the loss left: a file due at max_age while
// the server was away is published once it is back, without waiting for
// the next Write.
func (s *sink) watch() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stopped.Done():
			return
		case <-s.conn.ended():
		}
		wait := 100 * time.Millisecond
		for {
			select {
			case <-s.stopped.Done():
				return
			case <-time.After(wait):
			}
			ctx, cancel := context.WithTimeout(s.stopped, s.conn.o.timeout)
			err := s.Connect(ctx)
			cancel()
			if err == nil {
				break
			}
			if wait == 100*time.Millisecond {
				s.log.Warn("connection lost; dialling again in the background", "address", s.conn.o.addr, "error", err)
			}
			wait = min(2*wait, time.Minute)
		}
	}
}

// Write implements adapters.Sink.
func (s *sink) Write(ctx context.Context, msgs []adapters.Message) error { return s.w.Write(ctx, msgs) }

// Close publishes the open files and closes the connection; it is
// idempotent.
func (s *sink) Close(ctx context.Context) error {
	s.mu.Lock()
	s.stop()
	s.mu.Unlock()
	s.wg.Wait()
	err := s.w.Close(ctx)
	s.conn.close()
	return err
}

// Health reports whether the server answers a keepalive now.
func (s *sink) Health(ctx context.Context) error { return s.conn.health(ctx) }
