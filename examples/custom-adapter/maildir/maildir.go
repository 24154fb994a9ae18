// Package maildir is a Sluice sink that drops each message as a file into a
// maildir-style pickup directory, the way many legacy systems (mail
// gateways, EDI translators, print servers) take their input: a file is
// written under tmp/, synced, then renamed into new/, so the reader never
// sees a partial file. The file is named after the message ID, so a message
// delivered twice replaces its own file: delivery is effectively once.
package maildir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/sluicehq/sluice/adapters"
)

func init() { adapters.RegisterSink("maildir", Spec, New) }

// Spec is the configuration of the maildir sink.
var Spec = &adapters.Spec{
	Summary:     "Drop each message as a file into a maildir-style pickup directory (tmp/ then new/).",
	Description: "Files are named MESSAGE_ID.EXT, written to DIR/tmp, synced and renamed into DIR/new. With `format: json` the file holds the record as JSON; with `format: text` it holds the record field `text_field`, or the raw body.",
	Fields: []adapters.Field{
		{Name: "dir", Type: adapters.TypeString, Description: "The maildir; tmp/ and new/ are created in it.", Example: "/var/spool/edi/inbound"},
		{Name: "format", Type: adapters.TypeString, Default: "json", Enum: []string{"json", "text"}, Description: "What each file holds."},
		{Name: "text_field", Type: adapters.TypeString, Default: "text", Description: "With format text: the record field written."},
		{Name: "mode", Type: adapters.TypeString, Default: "0640", Description: "Permission bits of the files, in octal."},
	},
	Example: "type: maildir\ndir: /var/spool/edi/inbound\nformat: text\n",
	Check: func(c *adapters.Config) error {
		var m uint32
		if _, err := fmt.Sscanf(c.String("mode"), "%o", &m); err != nil || m > 0o777 {
			return c.Errorf("mode", "want octal permission bits like 0640, got %q", c.String("mode"))
		}
		return nil
	},
}

type sink struct {
	dir, format, field string
	mode               os.FileMode
	mu                 sync.Mutex
	closed             bool
}

var _ adapters.Sink = (*sink)(nil)

// New builds a maildir sink. It does no I/O.
func New(c *adapters.Config, res adapters.Resources) (adapters.Sink, error) {
	var m uint32
	fmt.Sscanf(c.String("mode"), "%o", &m)
	return &sink{dir: c.String("dir"), format: c.String("format"), field: c.String("text_field"), mode: os.FileMode(m)}, nil
}

// Connect creates tmp/ and new/.
func (s *sink) Connect(ctx context.Context) error {
	for _, d := range []string{"tmp", "new"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o750); err != nil {
			return adapters.UnavailableError(fmt.Errorf("maildir: %w", err))
		}
	}
	return nil
}

// Write publishes one file per message. It is safe for concurrent use:
// messages write distinct files.
func (s *sink) Write(ctx context.Context, msgs []adapters.Message) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return adapters.ErrClosed
	}
	be := adapters.NewBatchError(0)
	for i, m := range msgs {
		if err := ctx.Err(); err != nil {
			be.Fail(i, err)
			continue
		}
		body, ext, err := s.body(m)
		if err != nil {
			be.Fail(i, adapters.PermanentError(fmt.Errorf("maildir: message %s: %w", m.ID, err)))
			continue
		}
		if err := s.publish(m.ID+ext, body); err != nil {
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist) {
				err = adapters.UnavailableError(err)
			}
			be.Fail(i, err)
		}
	}
	if len(be.Failed) > 0 {
		if err := syncDir(filepath.Join(s.dir, "new")); err != nil {
			return err
		}
		return be
	}
	return syncDir(filepath.Join(s.dir, "new"))
}

func (s *sink) body(m adapters.Message) ([]byte, string, error) {
	if s.format == "text" {
		if v, ok := m.Record[s.field]; ok {
			return []byte(fmt.Sprint(v)), ".txt", nil
		}
		if m.Raw != nil {
			return m.Raw, ".txt", nil
		}
		return nil, "", fmt.Errorf("no field %q and no raw body", s.field)
	}
	if m.Record == nil {
		return nil, "", errors.New("no record to write as JSON")
	}
	b, err := json.Marshal(m.Record)
	return append(b, '\n'), ".json", err
}

// publish writes tmp/NAME, syncs it and renames it to new/NAME.
func (s *sink) publish(name string, body []byte) error {
	tmp := filepath.Join(s.dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, s.mode)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	_, werr := f.Write(body)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("maildir: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "new", name)); err != nil {
		return fmt.Errorf("maildir: publish %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("maildir: sync %s: %w", dir, err)
	}
	return nil
}

// Close is idempotent; nothing is buffered.
func (s *sink) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}
