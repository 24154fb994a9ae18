// Package spool is a Sluice source for print-spool files: the reports a
// legacy system "prints" to a directory instead of a printer. A spool file
// is text whose pages are separated by form feeds (\f); each page becomes
// one message with the page's title (its first non-blank line), its lines
// and its text.
//
// A file is read once it has not changed for min_age (the system finished
// printing it). Its pages go to the engine in one batch; only when the
// engine acks that batch, that is when every page is durably queued, is the
// file remembered as done (in the source's State) and, with after: delete,
// removed. A crash in between means the file is read again, with the same
// message IDs.
package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

func init() { adapters.RegisterSource("spool", Spec, New) }

// Spec is the configuration of the spool source.
var Spec = &adapters.Spec{
	Summary:     "Read a legacy system's print-spool files, one message per page.",
	Description: "Pages are separated by form feeds. Each message holds `file`, `page`, `title` (the first non-blank line), `lines` and `text`. A file is done once every page is durably queued.",
	Fields: []adapters.Field{
		{Name: "dir", Type: adapters.TypeString, Description: "Directory the legacy system prints to.", Example: "/var/spool/legacy/reports"},
		{Name: "include", Type: adapters.TypeStrings, Default: []any{"*.spl", "*.SPL"}, Description: "File name patterns to read."},
		{Name: "min_age", Type: adapters.TypeDuration, Default: "2s", Description: "Read a file only when it has not changed for this long."},
		{Name: "poll_interval", Type: adapters.TypeDuration, Default: "2s", Description: "Pause between directory scans when there is nothing to read."},
		{Name: "after", Type: adapters.TypeString, Default: "keep", Enum: []string{"keep", "delete"}, Description: "What to do with a file once it is done."},
		{Name: "skip_blank_pages", Type: adapters.TypeBool, Default: true, Description: "Emit no message for pages with no text."},
	},
	Example: "type: spool\ndir: /var/spool/legacy/reports\ninclude: [\"*.spl\"]\nafter: delete\n",
	Check: func(c *adapters.Config) error {
		for _, p := range c.Strings("include") {
			if _, err := filepath.Match(p, "x"); err != nil {
				return c.Errorf("include", "bad pattern %q: %v", p, err)
			}
		}
		return nil
	},
}

type source struct {
	name     string
	dir      string
	include  []string
	minAge   time.Duration
	poll     time.Duration
	delete   bool
	skip     bool
	once     bool
	state    adapters.State
	closed   chan struct{}
	closeOne sync.Once

	mu       sync.Mutex
	inflight map[string]bool // files read but not yet acked
}

var _ adapters.Source = (*source)(nil)

// New builds a spool source. It does no I/O.
func New(c *adapters.Config, res adapters.Resources) (adapters.Source, error) {
	return &source{
		name: res.Name, dir: c.String("dir"), include: c.Strings("include"),
		minAge: c.Duration("min_age"), poll: c.Duration("poll_interval"),
		delete: c.String("after") == "delete", skip: c.Bool("skip_blank_pages"),
		once: res.Once, state: res.State, closed: make(chan struct{}), inflight: map[string]bool{},
	}, nil
}

// Connect checks that the directory is there.
func (s *source) Connect(ctx context.Context) error {
	st, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("spool %q: %w", s.name, err)
	}
	if !st.IsDir() {
		return adapters.PermanentError(fmt.Errorf("spool %q: %s is not a directory", s.name, s.dir))
	}
	return nil
}

// Read returns the pages of the next file that is ready, waiting for one.
func (s *source) Read(ctx context.Context) (adapters.Batch, error) {
	for {
		b, found, err := s.next(ctx)
		if err != nil || found {
			return b, err
		}
		if s.once {
			return adapters.Batch{}, adapters.ErrEndOfInput
		}
		t := time.NewTimer(s.poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return adapters.Batch{}, ctx.Err()
		case <-s.closed:
			t.Stop()
			return adapters.Batch{}, adapters.ErrClosed
		}
	}
}

// next reads the first ready file that is not done nor in flight.
func (s *source) next(ctx context.Context) (adapters.Batch, bool, error) {
	select {
	case <-s.closed:
		return adapters.Batch{}, false, adapters.ErrClosed
	default:
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return adapters.Batch{}, false, fmt.Errorf("spool %q: %w", s.name, adapters.ErrNotConnected)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if e.IsDir() || !s.matches(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < s.minAge {
			continue
		}
		version := strconv.FormatInt(info.Size(), 10) + "@" + strconv.FormatInt(info.ModTime().UnixNano(), 10)
		key := "done/" + e.Name()
		if v, ok, err := s.state.Get(ctx, key); err != nil {
			return adapters.Batch{}, false, err
		} else if ok && string(v) == version {
			continue
		}
		s.mu.Lock()
		busy := s.inflight[e.Name()]
		s.mu.Unlock()
		if busy {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			continue // gone or unreadable; the next scan tries again
		}
		msgs := s.pages(e.Name(), version, data)
		s.mu.Lock()
		s.inflight[e.Name()] = true
		s.mu.Unlock()
		return adapters.Batch{Messages: msgs, Ack: s.ack(e.Name(), key, version)}, true, nil
	}
	return adapters.Batch{}, false, nil
}

func (s *source) matches(name string) bool {
	for _, p := range s.include {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

// pages splits a spool file into one message per page.
func (s *source) pages(file, version string, data []byte) []adapters.Message {
	var msgs []adapters.Message
	for i, page := range bytes.Split(data, []byte("\f")) {
		text := strings.ReplaceAll(string(page), "\r\n", "\n")
		text = strings.Trim(text, "\n")
		if s.skip && strings.TrimSpace(text) == "" {
			continue
		}
		lines := strings.Split(text, "\n")
		title := ""
		list := make([]any, len(lines))
		for j, l := range lines {
			l = strings.TrimRight(l, " ")
			list[j] = l
			if title == "" && strings.TrimSpace(l) != "" {
				title = strings.TrimSpace(l)
			}
		}
		n := int64(i + 1)
		msgs = append(msgs, adapters.Message{
			ID:     adapters.NewID(s.name, file, version, strconv.FormatInt(n, 10)),
			Record: adapters.Record{"file": file, "page": n, "title": title, "lines": list, "text": text},
			Meta:   map[string]string{adapters.MetaPath: filepath.Join(s.dir, file), "page": strconv.FormatInt(n, 10)},
			Time:   time.Now(),
		})
	}
	return msgs // none for an empty file: the engine acks it at once
}

// ack commits a file once every page is durably queued.
func (s *source) ack(file, key, version string) func(context.Context, error) error {
	return func(ctx context.Context, err error) error {
		defer func() {
			s.mu.Lock()
			delete(s.inflight, file)
			s.mu.Unlock()
		}()
		if err != nil {
			return nil // not committed: the next scan reads the file again
		}
		if err := s.state.Put(ctx, key, []byte(version)); err != nil {
			return fmt.Errorf("spool %q: remember %s: %w", s.name, file, err)
		}
		if s.delete {
			if err := os.Remove(filepath.Join(s.dir, file)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("spool %q: %w", s.name, err)
			}
			return s.state.Delete(ctx, key)
		}
		return nil
	}
}

// Close unblocks Read; it is idempotent.
func (s *source) Close(ctx context.Context) error {
	s.closeOne.Do(func() { close(s.closed) })
	return nil
}
