package broker

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// sameValue compares decoded values exactly: floats by bits, decimals by
// coefficient and exponent, times by instant, offset and zone name.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case decimal.Decimal:
		y, ok := b.(decimal.Decimal)
		return ok && x.Exponent() == y.Exponent() && x.Coefficient().Cmp(y.Coefficient()) == 0
	case time.Time:
		y, ok := b.(time.Time)
		return ok && sameTime(x, y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

func sameTime(a, b time.Time) bool {
	an, ao := a.Zone()
	bn, bo := b.Zone()
	return a.Equal(b) && ao == bo && (an == bn || ao == 0 && (an == "UTC" || bn == "UTC"))
}

func sameMessage(t *testing.T, want, got adapters.Message) {
	t.Helper()
	if want.ID != got.ID || want.Attempt != got.Attempt || !sameTime(want.Time, got.Time) {
		t.Fatalf("header: want %q %d %v, got %q %d %v", want.ID, want.Attempt, want.Time, got.ID, want.Attempt, got.Time)
	}
	if (want.Raw == nil) != (got.Raw == nil) || !bytes.Equal(want.Raw, got.Raw) {
		t.Fatalf("raw: want %q, got %q", want.Raw, got.Raw)
	}
	if (want.Meta == nil) != (got.Meta == nil) || len(want.Meta) != len(got.Meta) {
		t.Fatalf("meta: want %v, got %v", want.Meta, got.Meta)
	}
	for k, v := range want.Meta {
		if got.Meta[k] != v {
			t.Fatalf("meta %q: want %q, got %q", k, v, got.Meta[k])
		}
	}
	if (want.Record == nil) != (got.Record == nil) || !sameValue(map[string]any(want.Record), map[string]any(got.Record)) {
		t.Fatalf("record: want %#v, got %#v", want.Record, got.Record)
	}
}

func sampleMessages() map[string]adapters.Message {
	huge, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	cet := time.FixedZone("CET", 3600)
	return map[string]adapters.Message{
		"empty":      {},
		"id only":    {ID: "abc"},
		"empty raw":  {ID: "x", Raw: []byte{}},
		"raw":        {ID: "r", Raw: []byte("hello\x00world"), Time: time.Unix(1700000000, 123456789).UTC(), Attempt: 3},
		"meta":       {ID: "m", Meta: map[string]string{"source": "s", "path": "/a/b", "": "empty key"}},
		"empty meta": {Meta: map[string]string{}, Record: adapters.Record{}},
		"record": {ID: "rec", Time: time.Date(2024, 2, 29, 23, 59, 59, 999999999, cet), Record: adapters.Record{
			"nil": nil, "t": true, "f": false,
			"i": int64(-42), "imin": int64(math.MinInt64), "u": uint64(math.MaxUint64),
			"fl": 3.25, "nan": math.NaN(), "inf": math.Inf(-1),
			"s": "héllo", "b": []byte{0, 1, 2}, "eb": []byte{},
			"time": time.Date(1969, 7, 20, 20, 17, 40, 5, time.FixedZone("", -5*3600-30*60)),
			"dec":  decimal.New(-12345, -2), "bigdec": decimal.NewFromBigInt(huge, 7),
			"list": []any{int64(1), "two", []any{}, map[string]any{"x": nil}},
			"map":  map[string]any{"inner": map[string]any{"deep": []any{true}}},
		}},
	}
}

func TestWireRoundTrip(t *testing.T) {
	for name, m := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			b, err := AppendMessage([]byte("prefix"), &m)
			if err != nil {
				t.Fatal(err)
			}
			if string(b[:6]) != "prefix" {
				t.Fatal("prefix overwritten")
			}
			got, err := DecodeMessage(b[6:])
			if err != nil {
				t.Fatal(err)
			}
			sameMessage(t, m, got)
		})
	}
}

type myInt int16
type myStr string

func TestWireNormalises(t *testing.T) {
	m := adapters.Message{Record: adapters.Record{
		"int": 7, "int32": int32(-3), "int8": int8(-8), "uint": uint(9), "uint16": uint16(16),
		"f32": float32(1.5), "named": myInt(5), "namedstr": myStr("x"),
		"strs": []string{"a", "b"}, "ints": []int{1}, "smap": map[string]string{"k": "v"},
		"decptr": ptr(decimal.New(1, 1)), "nilptr": (*int)(nil), "arr": [2]int{3, 4},
		"nilbytes": []byte(nil), "nilslice": []string(nil),
	}}
	b, err := AppendMessage(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	want := adapters.Record{
		"int": int64(7), "int32": int64(-3), "int8": int64(-8), "uint": uint64(9), "uint16": uint64(16),
		"f32": 1.5, "named": int64(5), "namedstr": "x",
		"strs": []any{"a", "b"}, "ints": []any{int64(1)}, "smap": map[string]any{"k": "v"},
		"decptr": decimal.New(1, 1), "nilptr": nil, "arr": []any{int64(3), int64(4)},
		"nilbytes": nil, "nilslice": nil,
	}
	if !sameValue(map[string]any(want), map[string]any(got.Record)) {
		t.Fatalf("want %#v\ngot  %#v", want, got.Record)
	}
}

func ptr[T any](v T) *T { return &v }

func TestWireEncodeErrors(t *testing.T) {
	deep := map[string]any{}
	cur := deep
	for i := 0; i < MaxDepth+1; i++ {
		next := map[string]any{}
		cur["x"] = next
		cur = next
	}
	for name, rec := range map[string]adapters.Record{
		"struct": {"s": struct{}{}},
		"chan":   {"c": make(chan int)},
		"intmap": {"m": map[int]string{1: "a"}},
		"deep":   deep,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := AppendMessage([]byte("keep"), &adapters.Message{ID: "id", Record: rec})
			if err == nil {
				t.Fatal("no error")
			}
			if string(b) != "keep" {
				t.Fatalf("dst not restored: %q", b)
			}
		})
	}
}

func TestWireDecodeErrors(t *testing.T) {
	good, err := AppendMessage(nil, &adapters.Message{ID: "id", Meta: map[string]string{"a": "b"}, Record: adapters.Record{"k": "v"}, Raw: []byte("raw")})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"nil":           nil,
		"one byte":      {WireVersion},
		"bad version":   {9, 0, 0, 0},
		"bad flags":     {WireVersion, 0x80, 0, 0},
		"huge count":    {WireVersion, flagMeta, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"raw too long":  {WireVersion, flagRaw, 50, 0, 0},
		"trailing":      append(append([]byte{}, good[:len(good)-3]...), 'x', 'r', 'a', 'w'),
		"bad tag":       {WireVersion, flagRecord, 0, 0, 1, 1, 'k', 99},
		"deep list":     append([]byte{WireVersion, flagRecord, 0, 0, 1, 1, 'k'}, bytes.Repeat([]byte{tagList, 1}, MaxDepth+1)...),
		"bad nanos":     {WireVersion, flagTime, 0, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0, 0},
		"bad zone kind": {WireVersion, flagTime, 0, 0, 0, 7, 0},
	}
	for i := 1; i < len(good); i++ {
		cases[fmt.Sprintf("truncated %d", i)] = good[:i]
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeMessage(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("want ErrCorrupt, got %v", err)
			}
		})
	}
}

// TestWireGolden pins the version 1 encoding: a change to it must be a new
// WireVersion, since old logs must stay readable.
func TestWireGolden(t *testing.T) {
	m := adapters.Message{ID: "id-1", Time: time.Unix(1700000000, 5).UTC(), Attempt: 2, Raw: []byte("RAW"),
		Record: adapters.Record{"n": int64(-3), "d": decimal.New(12345, -2), "s": "x", "l": []any{true, nil, uint64(7), 0.5}}}
	// one field per map, so the bytes do not depend on map order
	rec := m.Record
	m.Record = adapters.Record{"v": []any{rec["n"], rec["d"], rec["s"], rec["l"]}}
	b, err := AppendMessage(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "wire_v1.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(fmt.Sprintf("%x\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x\n", b); got != string(want) {
		t.Fatalf("encoding changed:\nwant %s got  %s", want, got)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		b, err := AppendMessage(nil, &m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		// whatever decodes must encode and decode to the same message
		again, err := AppendMessage(nil, &m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := DecodeMessage(again)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		sameMessage(t, m, m2)
	})
}

func FuzzWireRoundTrip(f *testing.F) {
	f.Add("id", int64(1), uint64(2), 0.5, "s", []byte("b"), int64(1700000000), int32(7), int32(-2), true)
	f.Add("", int64(math.MinInt64), uint64(math.MaxUint64), math.Inf(1), "", []byte(nil), int64(-1), int32(0), int32(math.MaxInt32), false)
	f.Fuzz(func(t *testing.T, id string, i int64, u uint64, fl float64, s string, raw []byte, sec int64, off int32, exp int32, withMeta bool) {
		tm := time.Unix(sec%(1<<40), int64(u%1e9)).In(time.FixedZone(s, int(off%86400)))
		m := adapters.Message{ID: id, Raw: raw, Time: tm, Attempt: int(u % 100), Record: adapters.Record{
			id: s, "i": i, "u": u, "f": fl, "b": raw, "t": tm, "d": decimal.New(i, exp),
			"l": []any{s, i, map[string]any{s: fl}},
		}}
		if withMeta {
			m.Meta = map[string]string{id: s, s: id}
		}
		b, err := AppendMessage(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if raw == nil {
			// a nil raw round-trips as nil; the fuzzer gives [] for empty
			m.Raw = nil
		}
		m.Record["b"] = got.Record["b"] // nil []byte encodes as nil value
		if raw != nil {
			m.Record["b"] = raw
		}
		sameMessage(t, m, got)
	})
}

var sinkMsg adapters.Message

func benchMessage() adapters.Message {
	return adapters.Message{
		ID:   "0123456789abcdef0123456789abcdef",
		Time: time.Now(),
		Meta: map[string]string{"source": "bench", "path": "/var/spool/in/orders.csv", "line": "12345"},
		Raw:  bytes.Repeat([]byte("x"), 128),
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	for _, tc := range []struct {
		name string
		m    adapters.Message
	}{
		{"raw128", benchMessage()},
		{"record", func() adapters.Message {
			m := benchMessage()
			m.Raw = nil
			m.Record = adapters.Record{"order_id": int64(1234567), "customer": "ACME Corp", "amount": decimal.New(123456, -2), "ts": time.Now(), "ok": true}
			return m
		}()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = AppendMessage(buf[:0], &tc.m)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
		b.Run(tc.name+"/decode", func(b *testing.B) {
			enc, err := AppendMessage(nil, &tc.m)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				sinkMsg, err = DecodeMessage(enc)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
