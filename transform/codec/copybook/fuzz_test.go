package copybook

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
)

// FuzzCopybookParse feeds arbitrary copybook text to the parser and the
// layout compiler. Whatever compiles must encode an empty record (unless a
// table's minimum makes it invalid) that then decodes without error.
func FuzzCopybookParse(f *testing.F) {
	for _, name := range []string{"custmast_fixed.cpy", "custmast_free.cpy", "tranrec.cpy", "display.cpy", "multi.cpy"} {
		b, err := os.ReadFile("testdata/copybooks/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("01 R.\n  05 N PIC 9.\n  05 T OCCURS 1 TO 3 DEPENDING ON N.\n    10 A PIC X.\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		roots, err := parseCopybook("fuzz.cpy", src, formatAuto)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, root := range roots {
			for _, keep := range []bool{false, true} {
				l, err := compile("fuzz.cpy", root, keep)
				if err != nil {
					if _, ok := err.(*SyntaxError); !ok {
						t.Fatalf("error of type %T: %v", err, err)
					}
					continue
				}
				if l.maxSize > 1<<16 {
					continue
				}
				checkEmptyRecord(t, l)
			}
		}
	})
}

func checkEmptyRecord(t *testing.T, l *layout) {
	o := testOptions("cp037")
	b, err := newWriter(l, o).record(adapters.Record{})
	if err != nil {
		return // e.g. a table whose minimum is above the zero counter
	}
	if len(b) > l.maxSize {
		t.Fatalf("encoded %d bytes, max %d", len(b), l.maxSize)
	}
	if _, n, err := newReader(l, o).record(b); err != nil || n != len(b) {
		t.Fatalf("empty record % X: decoded %d bytes: %v", b, n, err)
	}
}

func testOptions(cp string) *valueOptions {
	c := newTestCodec(&testing.T{}, "copybook: testdata/copybooks/display.cpy\nencoding: "+cp).(*codec)
	return c.o
}

var fuzzDecodeConfigs = []string{
	"copybook: testdata/copybooks/custmast_fixed.cpy\nrecord_format: fixed",
	"copybook: testdata/copybooks/custmast_free.cpy\nrecord_format: variable\nkeep_fillers: true",
	"copybook: testdata/copybooks/tranrec.cpy\nrecord_format: variable\nrdw: little",
	"copybook: testdata/copybooks/display.cpy\nrecord_format: text\nencoding: cp273",
	"copybook: testdata/copybooks/display.cpy\nrecord_format: fixed\nencoding: ascii",
}

// FuzzCopybookDecode decodes arbitrary bytes with the test copybooks (the
// first byte picks one). Offsets must grow within the input; every decoded
// record must encode, and, for layouts without REDEFINES, decode to the
// same values.
func FuzzCopybookDecode(f *testing.F) {
	for _, name := range []string{"custmast_fixed", "custmast_free_rdw", "tranrec", "display_cp273_text", "display_text"} {
		for _, in := range []string{"input.bin", "input.txt"} {
			if b, err := os.ReadFile("testdata/golden/" + name + "/" + in); err == nil {
				for i := range fuzzDecodeConfigs {
					f.Add(append([]byte{byte(i)}, b...))
				}
			}
		}
	}
	codecs := make([]*codec, len(fuzzDecodeConfigs))
	for i, conf := range fuzzDecodeConfigs {
		codecs[i] = newTestCodec(f, conf).(*codec)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 {
			checkDecode(t, codecs[int(data[0])%len(codecs)], int(data[0])%len(codecs), data[1:])
		}
	})
}

// checkDecode is the property FuzzCopybookDecode and TestMutations check.
func checkDecode(t *testing.T, c *codec, which int, input []byte) {
	t.Helper()
	items := decodeAll(c, input)
	codectest.CheckOffsets(t, items, len(input))
	ascii := c.o.table.Name() == "ascii" // bytes above 0x7F decode to U+FFFD, which ASCII cannot encode
	_, again, want := codectest.RoundTrip(t, c, items, func(error) bool { return ascii })
	if len(again) != len(want) {
		t.Fatalf("re-decoded %d records, encoded %d", len(again), len(want))
	}
	for i := range again {
		if again[i].Err != nil {
			t.Fatalf("re-decode: %v", again[i].Err)
		}
	}
	if which == 2 {
		return // tranrec has REDEFINES: views are recomputed from the written one
	}
	if g, w := codectest.Render(again), codectest.Render(want); !bytes.Equal(g, w) {
		t.Fatalf("round trip differs\n--- got\n%s--- want\n%s", g, w)
	}
}

// TestMutations runs the fuzz property over golden inputs with random bytes
// changed, a deterministic complement to the fuzzer.
func TestMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for which, conf := range fuzzDecodeConfigs {
		c := newTestCodec(t, conf).(*codec)
		for _, gc := range goldenCases(t) {
			for i := 0; i < 100; i++ {
				input := codectest.Mutate(rng, gc.input)
				checkDecode(t, c, which, input)
			}
		}
	}
}
