package transform

import (
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	defaultLookupPoll = 5 * time.Second
	// lookupSettle lets a writer finish before a changed file is read;
	// further events within it restart the wait.
	lookupSettle = 100 * time.Millisecond
)

// startWatch watches the directories of the tables' files (so that a file
// replaced by rename is seen). It runs before the tables are first loaded,
// so that no change after the load can be missed.
func (l *Lookups) startWatch() *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		l.log.Warn("lookup tables: file notifications unavailable; relying on polling", "error", err)
		return nil
	}
	dirs := map[string]bool{}
	for _, t := range l.tables {
		dirs[filepath.Dir(t.path)] = true
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			l.log.Warn("lookup tables: cannot watch directory; relying on polling", "dir", d, "error", err)
		}
	}
	return w
}

// watch reloads tables whose files change, until Close: file system events
// trigger a reload after lookupSettle; polling catches what events miss.
func (l *Lookups) watch(w *fsnotify.Watcher) {
	defer close(l.done)
	byPath := make(map[string]*lookupTable, len(l.tables))
	for _, t := range l.tables {
		byPath[t.path] = t
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}

	poll := l.opts.Poll
	if poll == 0 {
		poll = defaultLookupPoll
	}
	var tick <-chan time.Time
	if poll > 0 {
		ticker := time.NewTicker(poll)
		defer ticker.Stop()
		tick = ticker.C
	}

	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	pending := map[*lookupTable]bool{}
	for {
		select {
		case <-l.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if t := byPath[filepath.Clean(ev.Name)]; t != nil && !ev.Has(fsnotify.Chmod) {
				pending[t] = true
				settle.Reset(lookupSettle)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			l.log.Warn("lookup tables: file notification error", "error", err)
		case <-settle.C:
			for t := range pending {
				delete(pending, t)
				_ = l.reloadLogged(t)
			}
		case <-tick:
			for _, name := range l.names {
				if t := l.tables[name]; !pending[t] && t.changed() {
					_ = l.reloadLogged(t)
				}
			}
		}
	}
}
