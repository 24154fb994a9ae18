package fixedwidth

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
)

const benchLayout = `
charset: %s
fields:
  - {name: account, width: 10}
  - {name: name, width: 30}
  - {name: city, width: 20}
  - {name: balance, width: 12, type: decimal, scale: 2}
  - {name: limit, width: 9, type: decimal, scale: 2}
  - {name: count, width: 6, type: int}
  - {name: branch, width: 4, type: int}
  - {name: opened, width: 8, type: date}
  - {name: active, width: 1, type: bool}
  - {name: status, width: 10}
`

// Values vary from one record to the next, so that the decoder's cache of
// repeated values rarely hits: these are conservative figures.
var (
	cities   = []string{"Springfield", "Shelbyville", "Ogdenville", "North Haverbrook", "Capital City", "Brockway", "Cypress Creek"}
	statuses = []string{"OPEN", "CLOSED", "DORMANT"}
)

// benchInput returns n lines of 110 bytes plus newline in the charset.
func benchInput(b *testing.B, charset string, n int) []byte {
	c := newTestCodec(b, fmt.Sprintf(benchLayout, charset))
	var out bytes.Buffer
	enc := c.NewEncoder(&out, adapters.EncoderOptions{})
	for i := 0; i < n; i++ {
		rec := map[string]any{
			"account": fmt.Sprintf("AC%08d", i), "name": fmt.Sprintf("Customer Number %d", i),
			"city": cities[i%len(cities)], "balance": fmt.Sprintf("%d.%02d", i*37%1000000, i%100),
			"limit": fmt.Sprintf("%d.00", 1000*(i%10)), "count": int64(i % 1000), "branch": int64(i % 97),
			"opened": fmt.Sprintf("20%02d%02d%02d", i%25, 1+i%12, 1+i%28), "active": i%3 == 0, "status": statuses[i%3],
		}
		if err := enc.Encode(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

// BenchmarkDecode decodes 10,000 records of 10 fields (strings, decimals,
// ints, a date, a bool) per iteration, on one goroutine.
func BenchmarkDecode(b *testing.B) {
	for _, cs := range []string{"utf-8", "cp037"} {
		b.Run(cs, func(b *testing.B) {
			const n = 10000
			input := benchInput(b, cs, n)
			c := newTestCodec(b, fmt.Sprintf(benchLayout, cs))
			codectest.BenchDecode(b, c, input, n)
		})
	}
}

// BenchmarkEncode encodes 10,000 records per iteration.
func BenchmarkEncode(b *testing.B) {
	const n = 10000
	input := benchInput(b, "utf-8", n)
	c := newTestCodec(b, fmt.Sprintf(benchLayout, "utf-8"))
	codectest.BenchEncode(b, c, decodeAll(c, input), int64(len(input)))
}
