package mysql

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/testenv"
)

const allTypesTable = `CREATE TABLE %s (
	id INT PRIMARY KEY,
	ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED,
	dec1 DECIMAL(30,10), f FLOAT, d DOUBLE,
	dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), yr YEAR,
	ch CHAR(5), vc VARCHAR(50), tx TEXT, bin BINARY(4), vb VARBINARY(10), bl BLOB,
	b1 BIT(1), b64 BIT(64), en ENUM('red','green'), st SET('a','b','c'), js JSON
)`

// Every column type: table → records (checked value by value) → another
// table through the sink → compared column by column on the server, and
// read back into identical records.
func TestTypeRoundTrip(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, fmt.Sprintf(allTypesTable, "src"))
	mustExec(t, db, fmt.Sprintf(allTypesTable, "dst"))
	mustExec(t, db, `INSERT INTO src VALUES
	(1, -128, 65535, -8388608, 2147483647, -9223372036854775808, 18446744073709551615,
	 '-12345678901234567890.0123456789', 1.5, 2.718281828459045,
	 '2024-02-29', '2024-07-14 10:30:00.123456', '2024-07-14 08:30:00.500000', '-12:30:00.250000', 2155,
	 'ab', 'héllo ✓ 𝄞', 'quote '' backslash \\ newline \n end', X'00FF0102', X'00', X'00275C0AFF',
	 b'1', b'1111111111111111111111111111111111111111111111111111111111111111', 'green', 'a,c',
	 '{"a": [1, 2.5, "x", null, true], "big": 12345678901234567890, "n": {"k": "v"}}'),
	(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(3, 0, 0, 0, 0, 0, 5, '0.0000000000', 0, -0.5, '1000-01-01', '9999-12-31 23:59:59.999999', '1970-01-01 00:00:01.000000',
	 '838:59:59.000000', 1901, '', '', '', X'00000000', X'', X'', b'0', b'0', 'red', '', '[]')`)
	conn := map[string]any{"dsn": dsn, "time_zone": "Europe/Paris"}
	src := openSource(t, with(conn, "table", "src", "tracking_columns", "id"), withOnce())
	msgs := readAll(t, src, 5*time.Second)
	if len(msgs) != 3 {
		t.Fatalf("read %d rows, want 3", len(msgs))
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	want := adapters.Record{
		"id": int64(1), "ti": int64(-128), "si": int64(65535), "mi": int64(-8388608), "i": int64(2147483647),
		"bi": int64(math.MinInt64), "ubi": uint64(math.MaxUint64),
		"dec1": decimal.RequireFromString("-12345678901234567890.0123456789"), "f": 1.5, "d": 2.718281828459045,
		"dt":  time.Date(2024, 2, 29, 0, 0, 0, 0, paris),
		"dtm": time.Date(2024, 7, 14, 10, 30, 0, 123456000, paris),
		"ts":  time.Date(2024, 7, 14, 8, 30, 0, 500000000, time.UTC),
		"tm":  "-12:30:00.250000", "yr": int64(2155),
		"ch": "ab", "vc": "héllo ✓ 𝄞", "tx": "quote ' backslash \\ newline \n end",
		"bin": []byte{0, 0xff, 1, 2}, "vb": []byte{0}, "bl": []byte{0, 0x27, 0x5c, 0x0a, 0xff},
		"b1": int64(1), "b64": uint64(math.MaxUint64), "en": "green", "st": []any{"a", "c"},
		"js": adapters.Record{"a": []any{int64(1), 2.5, "x", nil, true}, "big": uint64(12345678901234567890), "n": adapters.Record{"k": "v"}},
	}
	if diff := recordDiff(msgs[0].Record, want); diff != "" {
		t.Fatalf("row 1: %s", diff)
	}
	if at := msgs[0].Record["dtm"].(time.Time); at.UTC().Hour() != 8 {
		t.Fatalf("DATETIME in Europe/Paris read as %v", at.UTC())
	}
	for k, v := range msgs[1].Record {
		if k != "id" && v != nil {
			t.Fatalf("row 2: %s = %#v, want nil", k, v)
		}
	}
	if st := msgs[2].Record["st"]; !reflect.DeepEqual(st, []any{}) {
		t.Fatalf("empty SET = %#v", st)
	}
	if ubi := msgs[2].Record["ubi"]; ubi != int64(5) {
		t.Fatalf("small UNSIGNED BIGINT = %#v, want int64", ubi)
	}

	sink := openSink(t, with(conn, "table", "dst"))
	if err := sink.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	cols := []string{"ti", "si", "mi", "i", "bi", "ubi", "dec1", "f", "d", "dt", "dtm", "ts", "tm", "yr", "ch", "vc", "tx", "bin", "vb", "bl", "b1", "b64", "en", "st"}
	for _, c := range cols {
		q := fmt.Sprintf("SELECT COUNT(*) FROM src s JOIN dst d USING (id) WHERE NOT (s.%[1]s <=> d.%[1]s)", c)
		if n := count(t, db, q); n != 0 {
			t.Errorf("column %s differs in %d rows", c, n)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM src s JOIN dst d USING (id) WHERE NOT (JSON_EQUALS(s.js, d.js) <=> 1) AND s.js IS NOT NULL"); n != 0 {
		t.Errorf("JSON differs in %d rows", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM dst"); n != 3 {
		t.Fatalf("%d rows copied", n)
	}
	back := readAll(t, openSource(t, with(conn, "table", "dst", "tracking_columns", "id"), withOnce()), 5*time.Second)
	for i := range back {
		if diff := recordDiff(back[i].Record, msgs[i].Record); diff != "" {
			t.Errorf("row %d read back: %s", i+1, diff)
		}
	}
}

func with(base map[string]any, kv ...any) map[string]any {
	m := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// recordDiff compares records value by value: times by instant and zone
// name, decimals by value and scale, other values by type and value.
func recordDiff(got, want adapters.Record) string {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("unexpected field %s = %#v", k, got[k])
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !sameValue(got[k], want[k]) {
			return fmt.Sprintf("%s = %#v (%T), want %#v (%T)", k, got[k], got[k], want[k], want[k])
		}
	}
	return ""
}

func sameValue(a, b any) bool {
	switch x := b.(type) {
	case time.Time:
		y, ok := a.(time.Time)
		return ok && x.Equal(y) && x.Location().String() == y.Location().String()
	case decimal.Decimal:
		y, ok := a.(decimal.Decimal)
		return ok && x.String() == y.String()
	case []byte:
		y, ok := a.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := a.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(y[i], x[i]) {
				return false
			}
		}
		return true
	case adapters.Record:
		y, ok := a.(adapters.Record)
		return ok && recordDiff(y, x) == ""
	}
	return reflect.TypeOf(a) == reflect.TypeOf(b) && a == b
}

func TestParseDateTime(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
		zero bool
		bad  bool
	}{
		{in: "2024-01-02", want: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
		{in: "2024-01-02 03:04:05", want: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{in: "2024-01-02 03:04:05.5", want: time.Date(2024, 1, 2, 3, 4, 5, 500000000, time.UTC)},
		{in: "2024-01-02 03:04:05.000001", want: time.Date(2024, 1, 2, 3, 4, 5, 1000, time.UTC)},
		{in: "0000-00-00 00:00:00", zero: true},
		{in: "2024-00-10", zero: true},
		{in: "2024-1-02", bad: true},
		{in: "2024-01-02T03:04:05", bad: true},
		{in: "2024-01-02 03:04:05.", bad: true},
		{in: "2024-13-02", bad: true},
		{in: "2024-01-02 25:00:00", bad: true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, zero, err := parseDateTime([]byte(c.in), time.UTC)
			if c.bad != (err != nil) || zero != c.zero {
				t.Fatalf("parseDateTime(%q) = %v, zero %v, err %v", c.in, got, zero, err)
			}
			if !c.bad && !c.zero && !got.Equal(c.want) {
				t.Fatalf("parseDateTime(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestZeroDates(t *testing.T) {
	cols := []colKind{kDateTime}
	for _, c := range []struct {
		mode zeroDates
		want any
	}{{zeroNull, nil}, {zeroString, "0000-00-00 00:00:00"}} {
		d := &decoder{names: []string{"at"}, kinds: cols, loc: time.UTC, zero: c.mode}
		got, err := d.value(0, []byte("0000-00-00 00:00:00"))
		if err != nil || got != c.want {
			t.Fatalf("zero date with mode %d = %#v, %v; want %#v", c.mode, got, err, c.want)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, s := range []string{"0", "-1", "42", "9223372036854775807", "-9223372036854775808", "18446744073709551615", "", "-", "1x", "99999999999999999999999"} {
		want, werr := strconv.ParseInt(s, 10, 64)
		got, err := parseInt([]byte(s))
		if (err != nil) != (werr != nil) || got != want {
			t.Fatalf("parseInt(%q) = %d, %v; want %d, %v", s, got, err, want, werr)
		}
	}
}

func TestSQLArg(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	at := time.Date(2024, 7, 14, 8, 30, 0, 250000000, time.UTC)
	cases := []struct {
		col  column
		in   any
		want any
	}{
		{column{dataType: "datetime"}, at, "2024-07-14 10:30:00.25"},
		{column{dataType: "timestamp"}, at, "2024-07-14 08:30:00.25"},
		{column{dataType: "date"}, at, "2024-07-14"},
		{column{dataType: "time"}, at, "10:30:00.25"},
		{column{dataType: "set"}, []any{"a", "b"}, "a,b"},
		{column{dataType: "json"}, []any{"a", int64(1)}, `["a",1]`},
		{column{dataType: "longtext"}, adapters.Record{"b": decimal.RequireFromString("1.10"), "a": []byte("hi")}, `{"a":"aGk=","b":1.10}`},
		{column{dataType: "decimal"}, decimal.RequireFromString("-0.050"), "-0.050"},
		{column{}, uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{column{}, nil, nil},
	}
	for _, c := range cases {
		got, err := sqlArg(&c.col, c.in, paris)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("sqlArg(%s, %#v) = %#v, %v; want %#v", c.col.dataType, c.in, got, err, c.want)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), struct{}{}, []any{1.5}} {
		if _, err := sqlArg(&column{dataType: "set"}, bad, paris); err == nil {
			t.Errorf("sqlArg(%#v) succeeded", bad)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	got, err := decodeJSON([]byte(`{"i": -3, "u": 18446744073709551615, "f": 1e3, "s": "x", "l": [{"b": false}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := adapters.Record{"i": int64(-3), "u": uint64(math.MaxUint64), "f": 1000.0, "s": "x", "l": []any{adapters.Record{"b": false}}}
	if d := recordDiff(got.(adapters.Record), want); d != "" {
		t.Fatal(d)
	}
	for _, bad := range []string{`{`, `1 2`, ``} {
		if _, err := decodeJSON([]byte(bad)); err == nil {
			t.Errorf("decodeJSON(%q) succeeded", bad)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, s := range []string{"0", "-0.00", "234.56", "-12345678901234567.8", "123456789012345678", "1234567890123456789", "0.0000000000", "-12345678901234567890.0123456789", "1.", ".5", "1e5"} {
		want, werr := decimal.NewFromString(s)
		got, err := parseDecimal([]byte(s))
		if (err != nil) != (werr != nil) || (err == nil && (got.String() != want.String() || got.Exponent() != want.Exponent())) {
			t.Errorf("parseDecimal(%q) = %v (exp %d), %v; want %v (exp %d), %v", s, got, got.Exponent(), err, want, want.Exponent(), werr)
		}
	}
	for _, bad := range []string{"", "-", "1.2.3", "abc"} {
		if _, err := parseDecimal([]byte(bad)); err == nil {
			t.Errorf("parseDecimal(%q) succeeded", bad)
		}
	}
}

func TestMessageIDsMatchNewID(t *testing.T) {
	rc := benchConverter(t)
	m, _, err := rc.convert()
	if err != nil {
		t.Fatal(err)
	}
	if want := adapters.NewID("bench", "src", string(benchRow[1]), string(benchRow[0])); m.ID != want {
		t.Fatalf("ID %s, want adapters.NewID's %s", m.ID, want)
	}
}

func TestAppendDecimal(t *testing.T) {
	for _, s := range []string{"0", "0.00", "-0.05", "234.56", "-12345678901234567.8", "123456789012345678", "1e3", "-1.5e-7", "0.000001", "12345678901234567890.0123456789", "-999999999999999999"} {
		d := decimal.RequireFromString(s)
		if got, want := string(appendDecimal(nil, d)), decimalText(d); got != want {
			t.Errorf("appendDecimal(%s) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendDateTime(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2024, 7, 14, 8, 30, 0, 0, time.UTC),
		time.Date(2024, 7, 14, 8, 30, 0, 250000000, time.UTC),
		time.Date(999, 1, 2, 3, 4, 5, 1000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2024, 1, 1, 0, 0, 0, 123, time.UTC), // below a microsecond: dropped
	} {
		want := at.Truncate(time.Microsecond).Format("2006-01-02 15:04:05.999999")
		if got := string(appendDateTime(nil, at)); got != want {
			t.Errorf("appendDateTime(%v) = %s, want %s", at, got, want)
		}
	}
}
