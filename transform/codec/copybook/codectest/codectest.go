// Package codectest holds test helpers shared by the fixed_width and
// copybook codecs: decoding a whole stream, rendering records as
// type-tagged JSON, and golden files (rewritten with `go test -update`).
package codectest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/sluicehq/sluice/adapters"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Item is one result of a decoder: a record, or the error of one record.
type Item struct {
	Record adapters.Record
	Err    error
	// Position after the item.
	Rec, Line, Offset int64
}

// DecodeAll decodes until io.EOF, continuing after *adapters.RecordError;
// any other error ends the list as its last item. It gives up after limit
// items, which guards against decoders that never end.
func DecodeAll(dec adapters.Decoder, limit int) []Item {
	var out []Item
	for len(out) < limit {
		rec, err := dec.Decode()
		if err == io.EOF {
			break
		}
		it := Item{Record: rec, Err: err}
		it.Rec, it.Line, it.Offset = dec.Position()
		out = append(out, it)
		var re *adapters.RecordError
		if err != nil && !errors.As(err, &re) {
			break
		}
	}
	return out
}

// Value renders a record value with its type visible: decimals keep their
// scale ({"decimal": "123.40"}), times are RFC 3339, uint64 and []byte are
// tagged; int64, float64, bool, string and nil are plain JSON.
func Value(v any) any {
	switch x := v.(type) {
	case adapters.Record:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = Value(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = Value(e)
		}
		return l
	case decimal.Decimal:
		if x.Exponent() < 0 {
			return map[string]any{"decimal": x.StringFixed(-x.Exponent())}
		}
		return map[string]any{"decimal": x.StringFixed(0)}
	case time.Time:
		return map[string]any{"time": x.Format(time.RFC3339Nano)}
	case uint64:
		return map[string]any{"uint64": fmt.Sprint(x)}
	case []byte:
		return map[string]any{"bytes": fmt.Sprintf("% X", x)}
	case nil, int64, float64, bool, string:
		return x
	}
	return map[string]any{"UNEXPECTED TYPE": fmt.Sprintf("%T %v", v, v)}
}

// Render returns one JSON line per item: {"record": ...} or {"error": ...},
// with the position after it.
func Render(items []Item) []byte {
	var b bytes.Buffer
	for _, it := range items {
		m := map[string]any{"position": []int64{it.Rec, it.Line, it.Offset}}
		if it.Err != nil {
			m["error"] = it.Err.Error()
		} else {
			m["record"] = Value(it.Record)
		}
		line, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Golden compares got with the file at path, or writes it with -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// CPUTime returns the CPU time the process has used (user and system, all
// threads). Benchmarks report throughput per CPU second with it, a figure
// that other load on a shared machine disturbs less than wall time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportThroughput adds records/s and, per CPU second, MB/cpu-s and
// records/cpu-s to a benchmark that processed records records of size
// bytes in each of b.N iterations since cpuStart.
func ReportThroughput(b *testing.B, records, size int64, cpuStart time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(records)*n/b.Elapsed().Seconds(), "records/s")
	if cpu := (CPUTime() - cpuStart).Seconds(); cpu > 0 {
		b.ReportMetric(float64(size)*n/cpu/1e6, "MB/cpu-s")
		b.ReportMetric(float64(records)*n/cpu, "records/cpu-s")
	}
}

// Build decodes a codec configuration written in YAML (without the type
// key) for the codec typ, as a pipeline file named file would hold it.
func Build(typ, yamlText, file string) (adapters.Codec, error) {
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(yamlText), &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		raw = map[string]any{}
	}
	raw["type"] = typ
	return adapters.NewCodec(raw, adapters.DecodeOptions{File: file, Path: "codec"})
}

// BenchDecode decodes input, which holds records records, b.N times and
// reports its throughput.
func BenchDecode(b *testing.B, c adapters.Codec, input []byte, records int64) {
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := CPUTime()
	for i := 0; i < b.N; i++ {
		dec := c.NewDecoder(bytes.NewReader(input))
		for {
			_, err := dec.Decode()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	ReportThroughput(b, records, int64(len(input)), cpu)
}

// BenchEncode encodes recs b.N times; size is the bytes they take.
func BenchEncode(b *testing.B, c adapters.Codec, recs []Item, size int64) {
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := CPUTime()
	for i := 0; i < b.N; i++ {
		enc := c.NewEncoder(io.Discard, adapters.EncoderOptions{})
		for _, it := range recs {
			if err := enc.Encode(it.Record); err != nil {
				b.Fatal(err)
			}
		}
		if err := enc.Close(); err != nil {
			b.Fatal(err)
		}
	}
	ReportThroughput(b, int64(len(recs)), size, cpu)
}

// RoundTrip encodes the records among items (skipping errors) and decodes
// the output again. It returns the output, the records decoded from it and
// the records that were encoded, both without positions, for comparison.
// An encoding error fails the test unless tolerate returns true for it;
// such records are left out.
func RoundTrip(t testing.TB, c adapters.Codec, items []Item, tolerate func(error) bool) (out []byte, again, want []Item) {
	t.Helper()
	var buf bytes.Buffer
	enc := c.NewEncoder(&buf, adapters.EncoderOptions{})
	for _, it := range items {
		if it.Err != nil {
			continue
		}
		if err := enc.Encode(it.Record); err != nil {
			if tolerate != nil && tolerate(err) {
				continue
			}
			t.Fatalf("encode %v: %v", it.Record, err)
		}
		want = append(want, Item{Record: it.Record})
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	again = DecodeAll(c.NewDecoder(bytes.NewReader(buf.Bytes())), len(want)+10)
	for i := range again {
		again[i].Rec, again[i].Line, again[i].Offset = 0, 0, 0
	}
	return buf.Bytes(), again, want
}

// CheckOffsets fails the test unless the items' offsets never go back and
// stay within an input of n bytes.
func CheckOffsets(t testing.TB, items []Item, n int) {
	t.Helper()
	var last int64
	for _, it := range items {
		if it.Offset < last || it.Offset > int64(n) {
			t.Fatalf("offset %d after %d (input %d bytes)", it.Offset, last, n)
		}
		last = it.Offset
	}
}

// Mutate returns a copy of b with a few random bytes replaced, inserted or
// removed.
func Mutate(rng *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	for n := 1 + rng.IntN(4); n > 0 && len(out) > 0; n-- {
		i := rng.IntN(len(out))
		switch rng.IntN(4) {
		case 0:
			out = append(out[:i], out[i+1:]...)
		case 1:
			out = append(out[:i], append([]byte{byte(rng.IntN(256))}, out[i:]...)...)
		default:
			out[i] = byte(rng.IntN(256))
		}
	}
	return out
}
