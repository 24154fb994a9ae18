package copybook

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codectest"
)

// Values vary from one record to the next, so that the decoder's cache of
// repeated values rarely hits: these are conservative figures.
//
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
			"ACCT_NO": int64(100000000 + i), "ACCT_TYPE": []string{"CHK", "SAV", "LON"}[i%3], "ACCT_STATUS": []string{"A", "C"}[i%2],
			"ACCT_BALANCE": decimal.New(int64(i)*12345%1e12, -2), "ACCT_AVAILABLE": decimal.New(int64(i)*777%1e10, -2),
			"ACCT_RATE": decimal.New(int64(i%5000), -5), "ACCT_OPENED": int64(20000101 + i%1231), "ACCT_BRANCH": int64(i % 9999),
			"ACCT_MONTHLY": amounts, "ACCT_OWNER": fmt.Sprintf("OWNER %d", i), "ACCT_TXN_COUNT": int64(i % 100000),
		}
	}
	phones := make([]any, i%4)
	for j := range phones {
		phones[j] = adapters.Record{"PHONE_TYPE": "H", "PHONE_NUMBER": fmt.Sprintf("555-%04d", j)}
	}
	return adapters.Record{
		"CUST_ID": int64(10000000 + i), "CUST_TYPE": []string{"P", "C"}[i%2],
		"CUST_NAME": adapters.Record{"CUST_LAST_NAME": fmt.Sprintf("LAST%d", i), "CUST_FIRST_NAME": fmt.Sprintf("FIRST%d", i%7)},
		"CUST_ADDRESS": adapters.Record{"CUST_STREET": fmt.Sprintf("%d MAIN STREET", i%500), "CUST_CITY": fmt.Sprintf("CITY %d", i%9),
			"CUST_ZIP": int64(10000 + i%89999), "CUST_COUNTRY": []string{"US", "CA", "MX"}[i%3]},
		"CUST_BALANCE": decimal.New(int64(i)*12345-1e9, -2), "CUST_CREDIT_LIMIT": decimal.New(int64(i%20)*50000, -2),
		"CUST_OPEN_DATE": adapters.Record{"CUST_OPEN_YYYY": int64(1990 + i%35), "CUST_OPEN_MM": int64(1 + i%12), "CUST_OPEN_DD": int64(1 + i%28)},
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
			codectest.BenchDecode(b, c, input, n)
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
			codectest.BenchEncode(b, c, decodeAll(c, input), int64(len(input)))
		})
	}
}
