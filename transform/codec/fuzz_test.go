package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/adapters"
)

// fuzzConf is one configuration a fuzz target runs: resume says whether
// resuming at a reported offset must give the same results, roundTrip
// whether re-encoding the good records must give them back.
type fuzzConf struct {
	conf      map[string]any
	resume    bool
	roundTrip bool
}

// fatalOK tells errors that may end decoding of arbitrary input.
var fatalOK = []string{"csv: header row", "declares encoding"}

// addSeeds adds the golden inputs whose names start with prefix.
func addSeeds(f *testing.F, prefix string, confs int) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", prefix+"*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, ".golden") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for i := 0; i < confs; i++ {
			f.Add(data, uint8(i))
		}
	}
}

func fuzzDecode(t *testing.T, fc fuzzConf, data []byte) {
	// A hung decoder crashes the worker, so that the fuzzer keeps the input.
	watchdog := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("decoding %v hangs on %q", fc.conf, data)) })
	defer watchdog.Stop()
	codec := newCodec(t, fc.conf)
	all, err := decodeAll(t, codec.NewDecoder(bytes.NewReader(data)), 2*len(data)+10)
	if err != nil {
		for _, ok := range fatalOK {
			if strings.Contains(err.Error(), ok) {
				return
			}
		}
		t.Fatalf("decode: %v", err)
	}
	var prev int64
	broken := false
	for i, r := range all {
		if r.Pos[0] != int64(i+1) {
			t.Fatalf("result %d: Position record %d", i, r.Pos[0])
		}
		if r.Pos[2] < prev || r.Pos[2] > int64(len(data)) {
			t.Fatalf("result %d: offset %d after %d, input %d bytes", i, r.Pos[2], prev, len(data))
		}
		if r.Err != nil && (r.Err.Offset < 0 || r.Err.Offset > int64(len(data))) {
			t.Fatalf("result %d: error offset %d out of the input: %v", i, r.Err.Offset, r.Err)
		}
		if r.Err != nil && errors.Is(r.Err, ErrNotWellFormed) {
			broken = true
		}
		prev = r.Pos[2]
	}
	if fc.resume && !broken && len(all) > 1 {
		i := len(all) / 2
		off, line := all[i].Pos[2], all[i].Pos[1]
		dec := codec.NewDecoder(bytes.NewReader(data[off:]))
		dec.(adapters.ReaderAtOffset).SetStart(off, line)
		rest, err := decodeAll(t, dec, 2*len(data)+10)
		if err != nil {
			t.Fatalf("resume at %d: %v", off, err)
		}
		if got, want := renderShifted(rest, int64(i+1)), renderResults(all[i+1:]); got != want {
			t.Fatalf("resume after result %d at offset %d line %d:\ngot:\n%s\nwant:\n%s", i, off, line, got, want)
		}
	}
	if !fc.roundTrip {
		return
	}
	recs := records(all)
	for _, r := range recs {
		if !validUTF8(r) {
			return // invalid UTF-8 and bytes a charset does not define are not kept
		}
	}
	// Encoding may lengthen a record (1e3 becomes 1000): no size limits.
	conf := maps.Clone(fc.conf)
	for k := range conf {
		if strings.HasPrefix(k, "max_") {
			delete(conf, k)
		}
	}
	codec = newCodec(t, conf)
	for _, r := range recs {
		var buf bytes.Buffer
		if err := codec.NewEncoder(io.Discard, adapters.EncoderOptions{}).Encode(r); err != nil && strings.Contains(err.Error(), "XML 1.0 cannot carry") {
			continue // the decoder is lenient with control characters, the encoder is not
		}
		encodeAll(t, codec, &buf, []adapters.Record{r}, adapters.EncoderOptions{})
		got := records(mustDecodeAll(t, codec, buf.Bytes()))
		checkRecords(t, got, []adapters.Record{r}, buf.Bytes())
	}
}

func validUTF8(v any) bool {
	switch x := v.(type) {
	case string:
		return utf8.ValidString(x) && !strings.ContainsRune(x, utf8.RuneError)
	case map[string]any:
		for k, e := range x {
			if !validUTF8(k) || !validUTF8(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !validUTF8(e) {
				return false
			}
		}
	}
	return true
}

func runFuzz(f *testing.F, prefix string, confs []fuzzConf) {
	addSeeds(f, prefix, len(confs))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		fuzzDecode(t, confs[int(mode)%len(confs)], data)
	})
}

func FuzzLines(f *testing.F) {
	runFuzz(f, "lines", []fuzzConf{
		{conf: map[string]any{"type": "lines", "max_line_bytes": 64}, resume: true},
		{conf: map[string]any{"type": "lines", "charset": "utf-16", "skip_empty": true}, resume: true, roundTrip: true},
		{conf: map[string]any{"type": "lines", "charset": "windows-1252"}, resume: true, roundTrip: true},
	})
}

func FuzzJSONL(f *testing.F) {
	runFuzz(f, "jsonl", []fuzzConf{
		{conf: map[string]any{"type": "jsonl"}, resume: true, roundTrip: true},
		{conf: map[string]any{"type": "jsonl", "decimal_numbers": true, "max_line_bytes": 100}, resume: true, roundTrip: true},
	})
}

func FuzzJSON(f *testing.F) {
	runFuzz(f, "json", []fuzzConf{
		{conf: map[string]any{"type": "json"}, resume: true, roundTrip: true},
		{conf: map[string]any{"type": "json", "decimal_numbers": true, "max_record_bytes": 64}, resume: true, roundTrip: true},
	})
}

func FuzzCSV(f *testing.F) {
	runFuzz(f, "csv", []fuzzConf{
		{conf: map[string]any{"type": "csv", "header": false}, resume: true, roundTrip: true},
		{conf: map[string]any{"type": "csv"}, roundTrip: true},
		{conf: map[string]any{"type": "csv", "dialect": "excel", "delimiter": ";", "columns": []any{"a", "b", "c"}, "strict_columns": true}, resume: true, roundTrip: true},
		{conf: map[string]any{"type": "csv", "header": false, "escape": `\`, "quote": "'", "comment": "#", "trim": true, "lazy_quotes": true, "max_record_bytes": 64}, resume: true},
		{conf: map[string]any{"type": "csv", "header": false, "charset": "utf-16", "lazy_quotes": true}, resume: true, roundTrip: true},
		{conf: map[string]any{"type": "csv", "header": false, "charset": "windows-1252", "escape": `\`, "quote": ""}, resume: true, roundTrip: true},
	})
}

func FuzzXML(f *testing.F) {
	runFuzz(f, "xml", []fuzzConf{
		{conf: map[string]any{"type": "xml"}, resume: true, roundTrip: true},
		{conf: map[string]any{"type": "xml", "path": "//Item", "max_record_bytes": 128}, resume: true},
		{conf: map[string]any{"type": "xml", "path": "/*/*", "namespaces": "keep", "trim": true}, resume: true, roundTrip: true},
	})
}
