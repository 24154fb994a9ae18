package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/statestore"
	_ "github.com/sluicehq/sluice/transform/codec"
)

// These tests run the source with the production codecs, whose resume and
// line-number behaviour the source relies on.

func openSource(t *testing.T, raw map[string]any, st adapters.State, once bool) adapters.Source {
	t.Helper()
	spec, _ := adapters.SourceSpec("file")
	conf, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "test"})
	if err != nil {
		t.Fatal(err)
	}
	src, err := adapters.NewSource("file", conf, adapters.Resources{Pipeline: "p", Name: "f", State: st, Once: once})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	return src
}

// TestCSVHeaderResume: csv with a header row cannot start mid-file; the
// source must fall back to decoding from the start and skipping.
func TestCSVHeaderResume(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "o.csv"), []byte("id,name\n1,a\n2,b\n3,c\n4,d\n5,e\n"), 0o644)
	st := statestore.Memory()
	raw := map[string]any{"path": dir, "codec": map[string]any{"type": "csv", "header": true}, "ready": "immediate", "watch": false, "batch_size": 2}
	ctx := context.Background()
	src := openSource(t, raw, st, true)
	b, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	src.Close(ctx)
	src = openSource(t, raw, st, true)
	var names []any
	for {
		b, err := src.Read(ctx)
		if errors.Is(err, adapters.ErrEndOfInput) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range b.Messages {
			if m.Err != nil {
				t.Fatalf("record error after resume: %v", m.Err)
			}
			names = append(names, m.Record["name"])
		}
		b.Ack(ctx, nil)
	}
	if len(names) != 3 || names[0] != "c" || names[2] != "e" {
		t.Fatalf("after resume read names %v, want c d e", names)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("directory changed: %v", entries)
	}
}

func TestTailWithLinesCodec(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "app.log")
	os.WriteFile(name, []byte("alpha\nbeta\n"), 0o644)
	raw := map[string]any{"path": dir, "mode": "tail", "codec": "lines", "watch": false, "poll_interval": "20ms", "scan_interval": "20ms"}
	src := openSource(t, raw, statestore.Memory(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []adapters.Message
	for len(got) < 3 {
		b, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Messages...)
		b.Ack(ctx, nil)
		if len(got) == 2 {
			f, _ := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("gamma\n")
			f.Close()
		}
	}
	want := []struct{ line, off, text string }{{"1", "0", "alpha"}, {"2", "6", "beta"}, {"3", "11", "gamma"}}
	for i, w := range want {
		m := got[i]
		if m.Record["line"] != w.text || m.Meta[adapters.MetaLine] != w.line || m.Meta[adapters.MetaOffset] != w.off {
			t.Errorf("message %d = %v %v, want %+v", i, m.Record, m.Meta, w)
		}
	}
}
