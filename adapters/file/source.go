package file

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"

	"github.com/sluicehq/sluice/adapters"
)

// source is the file source: a filekit.Source (batch) or a tailSource, plus
// the fsnotify watcher that wakes it early.
type source struct {
	inner     adapters.Source
	dir       string
	recursive bool
	watch     bool
	log       *slog.Logger
	notify    chan struct{}

	mu      sync.Mutex
	watcher *fsnotify.Watcher
	done    chan struct{}
	closed  bool
}

var _ adapters.Source = (*source)(nil)

// Connect starts the watcher (a failure only costs latency: the rescan
// still finds files) and connects the reader.
func (s *source) Connect(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return adapters.ErrClosed
	}
	if s.watch && s.watcher == nil {
		if err := s.startWatch(); err != nil && s.log != nil {
			s.log.Warn("filesystem notifications unavailable; relying on the periodic rescan", "path", s.dir, "error", err)
		}
	}
	s.mu.Unlock()
	return s.inner.Connect(ctx)
}

func (s *source) Read(ctx context.Context) (adapters.Batch, error) { return s.inner.Read(ctx) }

// Close stops the watcher and the reader; it is idempotent.
func (s *source) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	w, done := s.watcher, s.done
	s.watcher = nil
	s.mu.Unlock()
	if w != nil {
		w.Close()
		<-done
	}
	return s.inner.Close(ctx)
}

func (s *source) startWatch() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(s.dir); err != nil {
		w.Close()
		return err
	}
	if s.recursive {
		filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != s.dir {
				if werr := w.Add(p); werr != nil && s.log != nil {
					s.log.Debug("cannot watch directory", "path", p, "error", werr)
				}
			}
			return nil
		})
	}
	s.watcher, s.done = w, make(chan struct{})
	go s.forward(w, s.done)
	return nil
}

// forward turns events into wake-ups; new directories are watched too.
func (s *source) forward(w *fsnotify.Watcher, done chan struct{}) {
	defer close(done)
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if s.recursive && ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					if err := w.Add(ev.Name); err != nil && s.log != nil {
						s.log.Debug("cannot watch directory", "path", ev.Name, "error", err)
					}
				}
			}
			select {
			case s.notify <- struct{}{}:
			default:
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if s.log != nil {
				s.log.Warn("filesystem notification error; the rescan covers it", "path", s.dir, "error", err)
			}
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}
}
