package filekit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/adapters"
)

// entry is the durable progress of one file of a Source, stored in
// adapters.State under entryPrefix + relative path.
type entry struct {
	// Identity of the file version the progress is about.
	Size  int64 `json:"size"`
	MTime int64 `json:"mtime"` // Unix nanoseconds
	// Position just past the last acknowledged record.
	Offset int64 `json:"offset"`
	Record int64 `json:"record"`
	Line   int64 `json:"line"`
	// Done: every record was acknowledged. With after: keep the entry stays
	// as the memory of the processed file; otherwise it tells a restarted
	// source to finish the after-action without reading the file again.
	Done bool `json:"done,omitempty"`
	// Failed is why the file could not be decoded (Done is then set too).
	Failed string `json:"failed,omitempty"`
}

const entryPrefix = "file/"

func (e entry) same(size, mtime int64) bool { return e.Size == size && e.MTime == mtime }

// store is a typed view of a State; a nil State stores nothing (validation,
// tests of custom adapters without persistence).
type store struct{ st adapters.State }

func (s store) load(ctx context.Context, prefix string) (map[string][]byte, error) {
	if s.st == nil {
		return map[string][]byte{}, nil
	}
	kv, err := s.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	out := make(map[string][]byte, len(kv))
	for k, v := range kv {
		out[strings.TrimPrefix(k, prefix)] = v
	}
	return out, nil
}

func (s store) put(ctx context.Context, key string, v any) error {
	if s.st == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.st.Put(ctx, key, b); err != nil {
		return fmt.Errorf("save state %q: %w", key, err)
	}
	return nil
}

func (s store) del(ctx context.Context, key string) error {
	if s.st == nil {
		return nil
	}
	if err := s.st.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete state %q: %w", key, err)
	}
	return nil
}
