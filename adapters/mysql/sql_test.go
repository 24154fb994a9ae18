package mysql

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseNamed(t *testing.T) {
	cases := []struct {
		in, sql string
		names   []string
		err     string
	}{
		{in: "SELECT 1", sql: "SELECT 1"},
		{in: "UPDATE t SET x = 1 WHERE id = :id", sql: "UPDATE t SET x = 1 WHERE id = ?", names: []string{"id"}},
		{in: "a > :a OR (a = :a AND b > :b_2) LIMIT :batch_size", sql: "a > ? OR (a = ? AND b > ?) LIMIT ?", names: []string{"a", "a", "b_2", "batch_size"}},
		{in: "WHERE s = ':not' AND t = \":no\" AND `c:x` = 1 AND d = :d", sql: "WHERE s = ':not' AND t = \":no\" AND `c:x` = 1 AND d = ?", names: []string{"d"}},
		{in: "WHERE s = 'it''s :x' AND e = 'a\\':y' AND z = :z", sql: "WHERE s = 'it''s :x' AND e = 'a\\':y' AND z = ?", names: []string{"z"}},
		{in: "SELECT 1 -- :no\n, :yes # :no\n/* :no */ FROM t", sql: "SELECT 1 -- :no\n, ? # :no\n/* :no */ FROM t", names: []string{"yes"}},
		{in: "SET @x := 1, @y = a::b", sql: "SET @x := 1, @y = a::b"},
		{in: "SELECT 5--:x", sql: "SELECT 5--?", names: []string{"x"}},
		{in: "WHERE a = ?", err: "positional parameter"},
		{in: "WHERE a = 'open", err: "unterminated ' quote"},
		{in: "WHERE /* open", err: "unterminated /* comment"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			q, err := parseNamed(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("parseNamed(%q) error = %v, want %q", c.in, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q.sql != c.sql || !reflect.DeepEqual(q.names, c.names) {
				t.Fatalf("parseNamed(%q) = %q %v, want %q %v", c.in, q.sql, q.names, c.sql, c.names)
			}
			if got := q.with(func(int) string { return "?" }); got != q.sql {
				t.Fatalf("with() = %q, want %q", got, q.sql)
			}
		})
	}
}

func FuzzParseNamed(f *testing.F) {
	for _, s := range []string{"UPDATE t SET x = 1 WHERE id = :id", "'a'':b' :c", "-- :x\n:y", "/* */ :a::b :=", "`x``:y` :z", "\"\\\":q\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := parseNamed(s)
		if err != nil {
			return
		}
		if n := strings.Count(q.sql, "?"); n < len(q.names) {
			t.Fatalf("%q: %d placeholders for %d names", s, n, len(q.names))
		}
		if len(q.parts) != len(q.names)+1 {
			t.Fatalf("%q: %d parts for %d names", s, len(q.parts), len(q.names))
		}
		if got := q.with(func(int) string { return "?" }); got != q.sql {
			t.Fatalf("%q: with() = %q, sql = %q", s, got, q.sql)
		}
		for _, n := range q.names {
			if n == "" || !isNameStart(n[0]) {
				t.Fatalf("%q: bad name %q", s, n)
			}
		}
	})
}

func TestParseTableName(t *testing.T) {
	cases := []struct {
		in, schema, name, quoted string
	}{
		{"orders", "", "orders", "`orders`"},
		{"erp.orders", "erp", "orders", "`erp`.`orders`"},
		{"`my.db`.`odd``name`", "my.db", "odd`name", "`my.db`.`odd``name`"},
		{"`erp`.orders", "erp", "orders", "`erp`.`orders`"},
	}
	for _, c := range cases {
		tn, err := parseTableName(c.in)
		if err != nil || tn.schema != c.schema || tn.name != c.name || tn.quoted() != c.quoted {
			t.Errorf("parseTableName(%q) = %+v %q, %v", c.in, tn, tn.quoted(), err)
		}
	}
	for _, bad := range []string{"", ".t", "a.", "a.b.c", "`open", "`a`x"} {
		if _, err := parseTableName(bad); err == nil {
			t.Errorf("parseTableName(%q) succeeded", bad)
		}
	}
}

func TestKeyset(t *testing.T) {
	w := watermark{{'s', "2024-01-01 00:00:00"}, {'d', "1.5"}, {'i', "7"}}
	cols := []string{"at", "amt", "id"}
	var b strings.Builder
	args, err := keyset(&b, nil, cols, w, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "(`at` > ? OR (`at` = ? AND `amt` > CAST(? AS DECIMAL(65,30))) OR (`at` = ? AND `amt` = CAST(? AS DECIMAL(65,30)) AND `id` > ?))"
	if b.String() != want {
		t.Fatalf("keyset after:\n got %s\nwant %s", b.String(), want)
	}
	if len(args) != 6 || args[5] != int64(7) || args[0] != "2024-01-01 00:00:00" {
		t.Fatalf("args = %#v", args)
	}
	b.Reset()
	if _, err := keyset(&b, nil, cols[:1], w[:1], false); err != nil || b.String() != "(`at` <= ?)" {
		t.Fatalf("keyset up to = %s, %v", b.String(), err)
	}
}

func TestWatermarkState(t *testing.T) {
	w := watermark{{'s', "2024-01-01 00:00:00.5"}, {'u', "18446744073709551615"}, {'b', "\x00\xff"}}
	raw, err := encodeWatermark([]string{"at", "id", "bin"}, w)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeWatermark(raw, []string{"AT", "id", "bin"})
	if err != nil || !reflect.DeepEqual(got, w) {
		t.Fatalf("decode = %v, %v; want %v", got, err, w)
	}
	if _, err := decodeWatermark(raw, []string{"id"}); err == nil || !strings.Contains(err.Error(), "tracks (at, id, bin) but tracking_columns is (id)") {
		t.Fatalf("changed tracking columns: %v", err)
	}
	if _, err := decodeWatermark([]byte(`{"columns":["id"],"values":[{"k":"x","v":"1"}]}`), []string{"id"}); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
