package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// newCodec builds a registered codec from a config block.
func newCodec(t testing.TB, conf map[string]any) adapters.Codec {
	t.Helper()
	c, err := adapters.NewCodec(conf, adapters.DecodeOptions{Path: "codec"})
	if err != nil {
		t.Fatalf("codec %v: %v", conf, err)
	}
	return c
}

// result is one Decode call: a record or a malformed-record error, and the
// position after it.
type result struct {
	Rec adapters.Record
	Err *adapters.RecordError
	Pos [3]int64
}

// decodeAll decodes everything, failing the test on an error that is not a
// RecordError. It stops after limit results to catch endless loops.
func decodeAll(t testing.TB, dec adapters.Decoder, limit int) ([]result, error) {
	t.Helper()
	var out []result
	for len(out) < limit {
		rec, err := dec.Decode()
		if err == io.EOF {
			return out, nil
		}
		var re *adapters.RecordError
		if err != nil && !errors.As(err, &re) {
			return out, err
		}
		r, l, o := dec.Position()
		out = append(out, result{Rec: rec, Err: re, Pos: [3]int64{r, l, o}})
	}
	t.Fatalf("more than %d results: endless loop?", limit)
	return nil, nil
}

func mustDecodeAll(t testing.TB, c adapters.Codec, in []byte) []result {
	t.Helper()
	res, err := decodeAll(t, c.NewDecoder(bytes.NewReader(in)), len(in)+10)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return res
}

func records(res []result) []adapters.Record {
	var out []adapters.Record
	for _, r := range res {
		if r.Err == nil {
			out = append(out, r.Rec)
		}
	}
	return out
}

// render writes a value as JSON in which every non-string scalar is tagged
// with its Go type, so golden files pin types as well as values.
func render(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		b.Write(appendJSONString(nil, x))
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.Write(appendJSONString(nil, k))
			b.WriteString(": ")
			render(b, x[k])
		}
		b.WriteString("}")
	case []any:
		b.WriteString("[")
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			render(b, e)
		}
		b.WriteString("]")
	case decimal.Decimal:
		fmt.Fprintf(b, `{"decimal": "%s"}`, appendDecimal(nil, x))
	case time.Time:
		fmt.Fprintf(b, `{"time": "%s"}`, x.Format(time.RFC3339Nano))
	case []byte:
		fmt.Fprintf(b, `{"bytes": %q}`, x)
	default:
		fmt.Fprintf(b, `{"%T": %v}`, x, x)
	}
}

func renderResults(res []result) string {
	var b strings.Builder
	for _, r := range res {
		fmt.Fprintf(&b, "pos %d %d %d: ", r.Pos[0], r.Pos[1], r.Pos[2])
		if r.Err != nil {
			fmt.Fprintf(&b, "error: %v\n", r.Err)
			continue
		}
		render(&b, r.Rec)
		b.WriteString("\n")
	}
	return b.String()
}

// equalValues compares record values, decimals by value and exponent.
func equalValues(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalValues(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValues(x[i], y[i]) {
				return false
			}
		}
		return true
	case decimal.Decimal:
		y, ok := b.(decimal.Decimal)
		return ok && x.Equal(y) && x.Exponent() == y.Exponent()
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	}
	return a == b
}

func show(v any) string {
	var b strings.Builder
	render(&b, v)
	return b.String()
}

// encodeAll encodes records with a new encoder and closes it.
func encodeAll(t testing.TB, c adapters.Codec, w io.Writer, recs []adapters.Record, opts adapters.EncoderOptions) {
	t.Helper()
	enc := c.NewEncoder(w, opts)
	for i, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatalf("encode record %d %s: %v", i, show(r), err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
