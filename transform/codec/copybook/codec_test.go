package copybook

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
	"go.yaml.in/yaml/v3"
)

func buildCodec(yamlText, file string) (adapters.Codec, error) {
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(yamlText), &raw); err != nil {
		return nil, err
	}
	raw["type"] = Name
	return adapters.NewCodec(raw, adapters.DecodeOptions{File: file, Path: "codec"})
}

func newTestCodec(t testing.TB, yamlText string) adapters.Codec {
	t.Helper()
	c, err := buildCodec(yamlText, "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func decodeAll(c adapters.Codec, input []byte) []codectest.Item {
	return codectest.DecodeAll(c.NewDecoder(bytes.NewReader(input)), 100000)
}

type goldenCase struct {
	dir   string
	codec adapters.Codec
	input []byte
}

func goldenCases(t *testing.T) []goldenCase {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	var out []goldenCase
	for _, dir := range dirs {
		conf, err := os.ReadFile(filepath.Join(dir, "codec.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		gc := goldenCase{dir: dir, codec: newTestCodec(t, string(conf))}
		for _, name := range []string{"input.bin", "input.txt"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				gc.input = b
			}
		}
		if gc.input == nil {
			t.Fatalf("%s: no input", dir)
		}
		out = append(out, gc)
	}
	return out
}

// TestGolden decodes inputs built by testdata/gen_inputs.py (byte by byte,
// without this package's encoder) and compares with want.jsonl.
func TestGolden(t *testing.T) {
	for _, gc := range goldenCases(t) {
		t.Run(filepath.Base(gc.dir), func(t *testing.T) {
			got := codectest.Render(decodeAll(gc.codec, gc.input))
			codectest.Golden(t, filepath.Join(gc.dir, "want.jsonl"), got)
		})
	}
}

// TestRoundTrip encodes the good records of each golden case and decodes
// them again.
func TestRoundTrip(t *testing.T) {
	for _, gc := range goldenCases(t) {
		t.Run(filepath.Base(gc.dir), func(t *testing.T) {
			first := decodeAll(gc.codec, gc.input)
			var out bytes.Buffer
			enc := gc.codec.NewEncoder(&out, adapters.EncoderOptions{})
			var want []codectest.Item
			var wantBytes []byte // the input bytes of the good records
			var start int64
			for _, it := range first {
				if it.Err != nil {
					start = it.Offset
					continue
				}
				wantBytes = append(wantBytes, gc.input[start:it.Offset]...)
				start = it.Offset
				if err := enc.Encode(it.Record); err != nil {
					t.Fatalf("encode %v: %v", it.Record, err)
				}
				want = append(want, codectest.Item{Record: it.Record})
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			// Binary formats come back byte for byte (text lines may have
			// been short or ended with CRLF).
			if gc.codec.(*codec).format != fmtText && !bytes.Equal(out.Bytes(), wantBytes) {
				t.Errorf("encoded bytes differ from the input\n got % X\nwant % X", out.Bytes(), wantBytes)
			}
			second := decodeAll(gc.codec, out.Bytes())
			for i := range second {
				second[i].Rec, second[i].Line, second[i].Offset = 0, 0, 0
			}
			if g, w := codectest.Render(second), codectest.Render(want); !bytes.Equal(g, w) {
				t.Errorf("round trip differs\n--- got\n%s--- want\n%s", g, w)
			}
		})
	}
}
