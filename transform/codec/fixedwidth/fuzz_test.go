package fixedwidth

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/sluicehq/sluice/adapters"

	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
)

// Two layouts: UTF-8 lines with record types, and EBCDIC fixed-length
// records. The first input byte picks one.
var fuzzConfigs = []string{`
record_types:
  - name: h
    when: {start: 1, length: 1, value: H}
    fields:
      - {name: d, start: 2, length: 8, type: date}
      - {name: s, width: 5, trim: false}
  - name: d
    fields:
      - {name: i, start: 2, length: 6, type: int, sign: trailing}
      - {name: m, width: 9, type: decimal, scale: 2, pad: " ", justify: left}
      - {name: b, width: 1, type: bool}
      - {name: t, width: 10, type: date, format: YYYY-MM-DD}
      - {name: x, width: 4, justify: right, pad: "*"}
`, `
charset: cp037
record_length: 24
fields:
  - {name: s, width: 4}
  - {name: i, width: 5, type: int}
  - {name: m, width: 7, type: decimal, scale: 3, explicit_point: true}
  - {name: t, width: 8, type: date, format: DDMMYYYY}
`}

func FuzzFixedWidthDecode(f *testing.F) {
	f.Add([]byte("\x00H20240101abcde\n 000012     1.5Y2024-02-29**ab\nXX\n"))
	f.Add([]byte("\x01\xC1\xC2\xC3\xC4\xF0\xF0\xF0\xF1\xF2\xF1\x4B\xF2\xF5\xF0\xF0\xF0\xF2\xF9\xF0\xF2\xF2\xF0\xF2\xF4"))
	codecs := make([]adapters.Codec, len(fuzzConfigs))
	for i, conf := range fuzzConfigs {
		codecs[i] = newTestCodec(f, conf)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 {
			checkDecode(t, codecs[int(data[0])%len(codecs)], data[0]%2 == 0, data[1:])
		}
	})
}

// checkDecode is the property FuzzFixedWidthDecode and TestMutations check:
// offsets grow within the input; whatever decoded encodes and decodes to
// the same records.
func checkDecode(t *testing.T, c adapters.Codec, isUTF8 bool, input []byte) {
	t.Helper()
	items := decodeAll(c, input)
	codectest.CheckOffsets(t, items, len(input))
	// UTF-8 repairs invalid bytes, which may then not fit.
	_, again, want := codectest.RoundTrip(t, c, items, func(error) bool { return isUTF8 })
	if g, w := codectest.Render(again), codectest.Render(want); !bytes.Equal(g, w) {
		t.Fatalf("round trip differs\n--- got\n%s--- want\n%s", g, w)
	}
}

// TestMutations runs the fuzz property over the golden inputs with random
// bytes changed, a deterministic complement to the fuzzer.
func TestMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i, conf := range fuzzConfigs {
		c := newTestCodec(t, conf)
		for _, dir := range goldenDirs(t) {
			for j := 0; j < 100; j++ {
				checkDecode(t, c, i == 0, codectest.Mutate(rng, readInput(t, dir)))
			}
		}
	}
}
