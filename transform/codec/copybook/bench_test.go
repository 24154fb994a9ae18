package copybook

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/sluicehq/sluice/adapters"
)

// benchLayouts: the customer master of the golden tests (nested groups,
// packed, binary, zoned, OCCURS DEPENDING ON: 134 to 173 bytes), and a
// static 117-byte account record that is mostly packed decimals.
var benchLayouts = map[string]string{
	"custmast": "copybook: testdata/copybooks/custmast_fixed.cpy\nencoding: cp037",
	"packed":   "copybook: testdata/copybooks/account.cpy\nencoding: cp037",
}

func benchRecord(name string, i int) adapters.Record {
	if name == "packed" {
		amounts := make([]any, 6)
		for j := range amounts {
			amounts[j] = decimal.New(int64(i*31+j*7)%100000000-5000000, -2)
		}
		return adapters.Record{
			"ACCT_NO": int64(100000000 + i), "ACCT_TYPE": "CHK", "ACCT_STATUS": "A",
			"ACCT_BALANCE": decimal.New(int64(i)*12345%1e12, -2), "ACCT_AVAILABLE": decimal.New(int64(i)*777%1e10, -2),
			"ACCT_RATE": decimal.New(int64(i%5000), -5), "ACCT_OPENED": int64(20240131), "ACCT_BRANCH": int64(i % 9999),
			"ACCT_MONTHLY": amounts, "ACCT_OWNER": fmt.Sprintf("OWNER %d", i), "ACCT_TXN_COUNT": int64(i % 100000),
		}
	}
	phones := make([]any, i%4)
	for j := range phones {
		phones[j] = adapters.Record{"PHONE_TYPE": "H", "PHONE_NUMBER": fmt.Sprintf("555-%04d", j)}
	}
	return adapters.Record{
		"CUST_ID": int64(10000000 + i), "CUST_TYPE": "P",
		"CUST_NAME":    adapters.Record{"CUST_LAST_NAME": fmt.Sprintf("LAST%d", i), "CUST_FIRST_NAME": "FIRST"},
		"CUST_ADDRESS": adapters.Record{"CUST_STREET": "1 MAIN STREET", "CUST_CITY": "SPRINGFIELD", "CUST_ZIP": int64(62701), "CUST_COUNTRY": "US"},
		"CUST_BALANCE": decimal.New(int64(i)*12345-1e9, -2), "CUST_CREDIT_LIMIT": decimal.New(500000, -2),
		"CUST_OPEN_DATE": adapters.Record{"CUST_OPEN_YYYY": int64(2020), "CUST_OPEN_MM": int64(1 + i%12), "CUST_OPEN_DD": int64(1 + i%28)},
		"CUST_BRANCH":    int64(i % 999), "CUST_SCORE": int64(i%1000 - 500), "CUST_YTD_INTEREST": decimal.New(int64(i%1e6), -2),
		"CUST_PHONE_COUNT": int64(len(phones)), "CUST_PHONES": phones,
	}
}

func benchInput(b *testing.B, c adapters.Codec, name string, n int) []byte {
	var out bytes.Buffer
	enc := c.NewEncoder(&out, adapters.EncoderOptions{})
	for i := 0; i < n; i++ {
		if err := enc.Encode(benchRecord(name, i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

// BenchmarkDecode decodes 10,000 EBCDIC records per iteration on one
// goroutine.
func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"custmast", "packed"} {
		b.Run(name, func(b *testing.B) {
			const n = 10000
			c := newTestCodec(b, benchLayouts[name])
			input := benchInput(b, c, name, n)
			b.SetBytes(int64(len(input)))
			b.ReportAllocs()
			b.ResetTimer()
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
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkEncode encodes 10,000 records per iteration.
func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"custmast", "packed"} {
		b.Run(name, func(b *testing.B) {
			const n = 10000
			c := newTestCodec(b, benchLayouts[name])
			input := benchInput(b, c, name, n)
			recs := decodeAll(c, input)
			b.SetBytes(int64(len(input)))
			b.ReportAllocs()
			b.ResetTimer()
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
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
