package copybook

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
)

func buildCodec(yamlText, file string) (adapters.Codec, error) {
	return codectest.Build(Name, yamlText, file)
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
			var wantBytes []byte // the input bytes of the good records
			var start int64
			for _, it := range first {
				if it.Err == nil {
					wantBytes = append(wantBytes, gc.input[start:it.Offset]...)
				}
				start = it.Offset
			}
			out, second, want := codectest.RoundTrip(t, gc.codec, first, nil)
			// Binary formats come back byte for byte (text lines may have
			// been short or ended with CRLF).
			if gc.codec.(*codec).format != fmtText && !bytes.Equal(out, wantBytes) {
				t.Errorf("encoded bytes differ from the input\n got % X\nwant % X", out, wantBytes)
			}
			if g, w := codectest.Render(second), codectest.Render(want); !bytes.Equal(g, w) {
				t.Errorf("round trip differs\n--- got\n%s--- want\n%s", g, w)
			}
		})
	}
}
