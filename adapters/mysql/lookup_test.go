package mysql

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	"github.com/sluicehq/sluice/internal/testenv"
)

func newTestLookup(t *testing.T, raw map[string]any) *Lookup {
	t.Helper()
	s := adaptertest.NewSink(t, "mysql_lookup", raw).(*Lookup)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLookup(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40), credit DECIMAL(10,2), region CHAR(2), doc LONGTEXT)`)
	mustExec(t, db, `INSERT INTO customers VALUES (1, 'Ada', 1500.50, 'eu', '{"vip": true}'), (2, 'Bob', NULL, 'eu', NULL), (3, 'Cy', 0, 'us', NULL)`)

	s := newTestLookup(t, map[string]any{"dsn": dsn,
		"query":        "SELECT id, name, credit, doc FROM customers WHERE id = :customer_id OR region = :region ORDER BY id",
		"params":       map[string]any{"region": `record.region ?? "none"`},
		"json_columns": "doc", "max_rows": 1})
	msgs := []adapters.Message{
		{ID: "a", Record: adapters.Record{"customer_id": int64(1)}},
		{ID: "b", Record: adapters.Record{"Customer_ID": "3"}}, // case-insensitive field, text bound as text
		{ID: "c", Record: adapters.Record{"customer_id": int64(9), "region": "eu"}},
		{ID: "d", Record: adapters.Record{"other": 1}},
		{ID: "e", Record: adapters.Record{"customer_id": int64(42)}},
	}
	recs, err := s.WriteReply(context.Background(), msgs)
	var be *adapters.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[3] == nil {
		t.Fatalf("want message d (no customer_id) failed alone, got %v", err)
	}
	if adapters.KindOf(be.Failed[3]) != adapters.Permanent || !strings.Contains(be.Failed[3].Error(), `no field "customer_id"`) {
		t.Fatalf("message d: %v (%v)", be.Failed[3], adapters.KindOf(be.Failed[3]))
	}
	rows := func(i int) []any { return recs[i]["rows"].([]any) }
	a := rows(0)
	if len(a) != 1 || recs[0]["count"] != int64(1) {
		t.Fatalf("a: %v", recs[0])
	}
	ada := a[0].(adapters.Record)
	if ada["name"] != "Ada" || !ada["credit"].(decimal.Decimal).Equal(decimal.RequireFromString("1500.50")) || ada["doc"].(adapters.Record)["vip"] != true {
		t.Fatalf("Ada: %#v", ada)
	}
	if b := rows(1); len(b) != 1 || b[0].(adapters.Record)["name"] != "Cy" {
		t.Fatalf("b: %v", recs[1])
	}
	if recs[2]["truncated"] != true || len(rows(2)) != 1 {
		t.Fatalf("c (two eu rows, max_rows 1): %v", recs[2])
	}
	if len(rows(4)) != 0 || recs[4]["count"] != int64(0) {
		t.Fatalf("e: %v", recs[4])
	}
	if err := s.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLookupErrors(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY)`)
	t.Run("missing table: the sink backs off as a whole", func(t *testing.T) {
		s := newTestLookup(t, map[string]any{"dsn": dsn, "query": "SELECT * FROM nope WHERE id = :id"})
		_, err := s.WriteReply(context.Background(), []adapters.Message{{ID: "a", Record: adapters.Record{"id": 1}}, {ID: "b", Record: adapters.Record{"id": 2}}})
		var be *adapters.BatchError
		if !errors.As(err, &be) || len(be.Failed) != 2 || adapters.KindOf(be.Failed[0]) != adapters.Unavailable {
			t.Fatalf("%v", err)
		}
	})
	t.Run("a value that cannot be bound fails its message", func(t *testing.T) {
		s := newTestLookup(t, map[string]any{"dsn": dsn, "query": "SELECT * FROM t WHERE id = :id"})
		_, err := s.WriteReply(context.Background(), []adapters.Message{{ID: "a", Record: adapters.Record{"id": math.NaN()}}, {ID: "b", Record: adapters.Record{"id": int64(2)}}})
		var be *adapters.BatchError
		if !errors.As(err, &be) || len(be.Failed) != 1 || adapters.KindOf(be.Failed[0]) != adapters.Permanent {
			t.Fatalf("%v", err)
		}
	})
	t.Run("not connected, closed", func(t *testing.T) {
		s := adaptertest.NewSink(t, "mysql_lookup", map[string]any{"dsn": dsn, "query": "SELECT 1"})
		if err := s.Write(context.Background(), nil); !errors.Is(err, adapters.ErrNotConnected) {
			t.Fatalf("%v", err)
		}
		_ = s.Close(context.Background())
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Connect(context.Background()); !errors.Is(err, adapters.ErrClosed) {
			t.Fatalf("%v", err)
		}
	})
}

func TestLookupConfig(t *testing.T) {
	cases := []struct {
		name, query string
		params      map[string]any
		want        string
	}{
		{"not a select", "DELETE FROM t WHERE id = :id", nil, "want a SELECT"},
		{"with", "/* c */ WITH x AS (SELECT 1) SELECT * FROM x WHERE 1 = :id", nil, ""},
		{"parenthesised select", "(SELECT :id)", nil, ""},
		{"positional", "SELECT * FROM t WHERE id = ?", nil, "positional parameter"},
		{"unknown param", "SELECT :id", map[string]any{"other": "1"}, "no parameter :other"},
		{"bad expression", "SELECT :id", map[string]any{"id": "record.("}, "params"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := map[string]any{"dsn": "u:p@tcp(127.0.0.1:1)/db", "query": c.query}
			if c.params != nil {
				raw["params"] = c.params
			}
			_, err := adapters.Decode(LookupSpec, raw, adapters.DecodeOptions{Path: "sink"})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			case err != nil && strings.Contains(err.Error(), "u:p@"):
				t.Fatalf("the DSN leaked: %v", err)
			}
		})
	}
}
