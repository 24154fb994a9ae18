package codec

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
)

// benchOrders returns n realistic order rows (about 150 bytes each as JSON).
func benchOrders(n int) []adapters.Record {
	statuses := []string{"new", "paid", "shipped", "cancelled"}
	recs := make([]adapters.Record, n)
	for i := range recs {
		recs[i] = adapters.Record{
			"order_id": int64(100000 + i),
			"customer": fmt.Sprintf("Customer %05d GmbH & Co. KG", i%5000),
			"sku":      fmt.Sprintf("SKU-%06d", i*7%1000000),
			"qty":      int64(i%20 + 1),
			"amount":   float64(i%100000) / 100,
			"currency": "EUR",
			"status":   statuses[i%len(statuses)],
			"created":  "2024-01-15T10:30:00Z",
		}
	}
	return recs
}

// benchStrings turns every value into a string, as CSV and XML decode them.
func benchStrings(recs []adapters.Record) []adapters.Record {
	out := make([]adapters.Record, len(recs))
	for i, r := range recs {
		m := make(adapters.Record, len(r))
		for k, v := range r {
			b, _ := appendText(nil, v)
			m[k] = string(b)
		}
		out[i] = m
	}
	return out
}

var benchConfs = []struct {
	name    string
	conf    map[string]any
	strings bool
}{
	{"lines", map[string]any{"type": "lines"}, false},
	{"jsonl", map[string]any{"type": "jsonl"}, false},
	{"jsonl_decimal", map[string]any{"type": "jsonl", "decimal_numbers": true}, false},
	{"json", map[string]any{"type": "json"}, false},
	{"csv", map[string]any{"type": "csv"}, true},
	{"csv_wide", map[string]any{"type": "csv"}, true},
	{"csv_quoted", map[string]any{"type": "csv", "quote_all": true}, true},
	{"csv_cp1252", map[string]any{"type": "csv", "charset": "windows-1252"}, true},
	{"xml", map[string]any{"type": "xml", "path": "/Orders/Order", "root": "Orders", "record": "Order"}, true},
	{"xml_attrs", map[string]any{"type": "xml", "path": "/Orders/Order", "root": "Orders", "record": "Order"}, true},
}

// benchInput encodes the orders with the codec itself.
func benchInput(b *testing.B, c adapters.Codec, name string, strs bool) ([]byte, int) {
	recs := benchOrders(10000)
	if strs {
		recs = benchStrings(recs)
	}
	if name == "csv_wide" {
		// Two more columns: a 150-byte CSV row.
		for i, r := range recs {
			r["email"] = fmt.Sprintf("orders-%05d@customer-example.de", i%5000)
			r["ship_to"] = "Mainzer Landstrasse 123, 60327 Frankfurt am Main"
		}
	}
	if name == "lines" {
		for i, r := range recs {
			j, _ := appendJSON(nil, r, nil)
			recs[i] = adapters.Record{"line": string(j)}
		}
	}
	if name == "xml_attrs" {
		for i, r := range recs {
			m := adapters.Record{}
			for k, v := range r {
				if k == "order_id" || k == "status" || k == "currency" {
					k = "@" + k
				}
				m[k] = v
			}
			recs[i] = m
		}
	}
	var buf bytes.Buffer
	encodeAll(b, c, &buf, recs, adapters.EncoderOptions{})
	return buf.Bytes(), len(recs)
}

// BenchmarkDecode decodes 10,000 order rows per op and reports MB/s,
// records/s and, less disturbed by other load, MB/cpu-s and records/cpu-s
// (run with -cpu 1 for one core).
func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchConfs {
		b.Run(bc.name, func(b *testing.B) {
			c := newCodec(b, bc.conf)
			data, n := benchInput(b, c, bc.name, bc.strings)
			codectest.BenchDecode(b, c, data, int64(n))
		})
	}
}

// BenchmarkEncode encodes the 10,000 order rows per op.
func BenchmarkEncode(b *testing.B) {
	for _, bc := range benchConfs {
		b.Run(bc.name, func(b *testing.B) {
			c := newCodec(b, bc.conf)
			data, _ := benchInput(b, c, bc.name, bc.strings)
			var items []codectest.Item
			for _, r := range records(mustDecodeAll(b, c, data)) {
				items = append(items, codectest.Item{Record: r})
			}
			codectest.BenchEncode(b, c, items, int64(len(data)))
		})
	}
}

// BenchmarkJSONLRoundTrip is the codec share of the engine's hot path:
// decode each JSON line and encode it again.
func BenchmarkJSONLRoundTrip(b *testing.B) {
	c := newCodec(b, map[string]any{"type": "jsonl"})
	data, n := benchInput(b, c, "jsonl", false)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := codectest.CPUTime()
	for i := 0; i < b.N; i++ {
		dec := c.NewDecoder(bytes.NewReader(data))
		enc := c.NewEncoder(io.Discard, adapters.EncoderOptions{})
		for {
			rec, err := dec.Decode()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := enc.Encode(rec); err != nil {
				b.Fatal(err)
			}
		}
		if err := enc.Close(); err != nil {
			b.Fatal(err)
		}
	}
	codectest.ReportThroughput(b, int64(n), int64(len(data)), cpu)
}
