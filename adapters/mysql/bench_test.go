package mysql

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// benchRow is a row of the bench/mysql table as the server sends it.
var benchRow = []sql.RawBytes{
	[]byte("123456"), []byte("2024-01-01 00:41:09.000006"), []byte("customer-23456"), []byte("SKU-3829"),
	[]byte("7"), []byte("234.56"), []byte("shipped"), []byte("note for order 123456 with some free text"),
}

var benchKinds = []colKind{kInt, kDateTime, kString, kString, kInt, kDecimal, kString, kString}

func benchConverter(b testing.TB) *rowConverter {
	s := &Source{o: sourceOptions{tracking: []string{"updated_at", "id"}, table: tableName{name: "src"}},
		res: adapters.Resources{Pipeline: "bench", Name: "src"}}
	dec := &decoder{names: append([]string(nil), columnsOfBench...), kinds: benchKinds, loc: time.UTC}
	rc, err := s.newRowConverter(dec)
	if err != nil {
		b.Fatal(err)
	}
	copy(rc.raw, benchRow)
	return rc
}

var columnsOfBench = []string{"id", "updated_at", "customer", "sku", "qty", "price", "status", "note"}

// The source's client-side cost per row: decode 8 columns into a record,
// the message ID and metadata.
func BenchmarkSourceConvertRow(b *testing.B) {
	rc := benchConverter(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := rc.convert(); err != nil {
			b.Fatal(err)
		}
	}
}

// The sink's client-side cost per batch of 1000 records before the driver:
// conversion to arguments and the statement text.
func BenchmarkSinkPrepareBatch(b *testing.B) {
	info := &tableInfo{name: tableName{name: "dst"}, byName: map[string]int{}}
	for i, c := range columnsOfBench {
		dt := "varchar"
		switch c {
		case "id", "qty":
			dt = "int"
		case "updated_at":
			dt = "datetime"
		case "price":
			dt = "decimal"
		}
		info.columns = append(info.columns, column{name: c, dataType: dt})
		info.byName[c] = i
	}
	s := &Sink{o: sinkOptions{table: info.name, mode: modeInsert, conn: &connOptions{loc: time.UTC}}}
	sc := &sinkSchema{info: info, key: []string{"id"}, maxStatement: 4 << 20}
	msgs := make([]adapters.Message, 1000)
	at := time.Date(2024, 1, 1, 0, 41, 9, 6000, time.UTC)
	for i := range msgs {
		msgs[i] = adapters.Message{Record: adapters.Record{
			"id": int64(i), "updated_at": at, "customer": fmt.Sprint("customer-", i), "sku": "SKU-3829",
			"qty": int64(7), "price": decimal.RequireFromString("234.56"), "status": "shipped", "note": "note for order with some free text",
		}}
	}
	b.ReportAllocs()
	for b.Loop() {
		rows := s.rows(msgs, sc, adapters.NewBatchError(0))
		if st := s.statements(sc, rows); len(st) != 1 {
			b.Fatalf("%d statements", len(st))
		}
	}
}
