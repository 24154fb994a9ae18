package transform

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// dec is an expected decimal, compared by type and exact text (scale
// included).
type dec string

type fcase struct {
	src  string
	want any    // expected value; dec for decimals
	err  string // expected error substring (compile or run time)
}

// testRecord is the record most function tests run against.
func testRecord() adapters.Record {
	return adapters.Record{
		"s": "abc", "blank": "  ", "n": int64(5), "neg": int64(-3), "f": 1.5, "b": true, "nil": nil,
		"amount": decimal.RequireFromString("12.10"), "cents": "123456",
		"bytes": []byte("hi"), "when": time.Date(2024, 1, 31, 13, 45, 0, 0, time.UTC),
		"customer":   adapters.Record{"name": "ACME", "address": adapters.Record{"city": "Lyon"}},
		"items":      []any{adapters.Record{"sku": "A1"}, adapters.Record{"sku": "B2"}},
		"dotted.key": "exact",
	}
}

func runCases(t *testing.T, rec adapters.Record, meta map[string]string, cases []fcase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			var r Runner
			got, err := evalSrc(&r, c.src, rec, meta)
			if c.err != "" {
				if err == nil {
					t.Fatalf("got %#v, want an error containing %q", got, c.err)
				}
				if !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %q does not contain %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			checkValue(t, got, c.want)
		})
	}
}

func evalSrc(r *Runner, src string, rec adapters.Record, meta map[string]string) (any, error) {
	p, err := Compile(src)
	if err != nil {
		return nil, err
	}
	return r.Eval(p, rec, meta)
}

func checkValue(t *testing.T, got, want any) {
	t.Helper()
	switch w := want.(type) {
	case dec:
		d, ok := got.(decimal.Decimal)
		if !ok {
			t.Fatalf("got %T %v, want decimal %s", got, got, w)
		}
		if s := ToString(d); s != string(w) {
			t.Fatalf("got decimal %s, want %s", s, w)
		}
	case time.Time:
		g, ok := got.(time.Time)
		if !ok || !g.Equal(w) || g.Location().String() != w.Location().String() {
			t.Fatalf("got %T %v, want time %v", got, got, w)
		}
	default:
		if !reflect.DeepEqual(got, Normalize(want)) {
			t.Fatalf("got %T %#v, want %T %#v", got, got, want, want)
		}
	}
}

func TestStringFunctions(t *testing.T) {
	runCases(t, testRecord(), nil, []fcase{
		// builtins keep working
		{src: `trim("  x  ")`, want: "x"},
		{src: `upper(record.s)`, want: "ABC"},
		{src: `split("a,b", ",")`, want: []any{"a", "b"}},
		{src: `record.s contains "b"`, want: true},
		{src: `record.s matches "^a"`, want: true},
		// trim_left / trim_right
		{src: `trim_left("  x  ")`, want: "x  "},
		{src: `trim_right("  x  ")`, want: "  x"},
		{src: `trim_left("000120", "0")`, want: "120"},
		{src: `trim_right("12.500", "0")`, want: "12.5"},
		{src: `trim_left(record.nil)`, want: nil},
		{src: `trim_left(record.customer)`, err: "trim_left: argument 1 (s) must be a string, got object"},
		{src: `trim_left("x", record.nil)`, err: "trim_left: argument 2 (cutset) must be a string, got nil"},
		// pad
		{src: `pad_left(42, 6, "0")`, want: "000042"},
		{src: `pad_left("ab", 4)`, want: "  ab"},
		{src: `pad_right("ab", 4, "*")`, want: "ab**"},
		{src: `pad_left("abcdef", 3, "0")`, want: "abcdef"},
		{src: `pad_left("é", 3, "ü")`, want: "üüé"},
		{src: `pad_left(record.amount, 8, "0")`, want: "00012.10"},
		{src: `pad_left(record.nil, 3)`, want: nil},
		{src: `pad_left("a", 3, "ab")`, err: "argument 3 (char) must be one character"},
		{src: `pad_left("a", -1)`, err: "argument 2 (width) must be between 0"},
		{src: `pad_left("a", "3")`, err: "pad_left: argument 2 (width) must be an integer, got string"},
		{src: `pad_left("a", record.s)`, err: `argument 2 (width) must be an integer, got string "abc"`},
		{src: `pad_left("a")`, err: "pad_left: want 2 or 3 arguments, got 1"},
		// substr
		{src: `substr("ABCDEF", 2, 3)`, want: "CDE"},
		{src: `substr("ABCDEF", 2)`, want: "CDEF"},
		{src: `substr("ABCDEF", -2)`, want: "EF"},
		{src: `substr("ABCDEF", -10, 2)`, want: "AB"},
		{src: `substr("ABCDEF", 4, 100)`, want: "EF"},
		{src: `substr("AB", 5)`, want: ""},
		{src: `substr("AB", 0, -1)`, want: ""},
		{src: `substr("héllo", 1, 3)`, want: "éll"},
		{src: `substr(12345, 1, 2)`, want: "23"},
		{src: `substr(record.nil, 1)`, want: nil},
		{src: `substr("abc", 1.5)`, err: "argument 2 (start) must be an integer, got float"},
		// starts_with / ends_with
		{src: `starts_with(record.s, "ab")`, want: true},
		{src: `ends_with(record.s, "ab")`, want: false},
		{src: `ends_with(record.s, "bc")`, want: true},
		{src: `starts_with(record.nil, "a")`, want: false},
		{src: `starts_with("a", record.nil)`, err: "starts_with: argument 2 (prefix) must be a string, got nil"},
		// regex
		{src: `regex_match(record.s, "^a.c$")`, want: true},
		{src: `regex_match(record.s, "^b")`, want: false},
		{src: `regex_match(record.nil, "x")`, want: false},
		{src: `regex_match(record.s, "(")`, err: `regex_match: argument 2: invalid regular expression "(": missing closing )`},
		{src: `regex_match(record.s, record.blank + "(")`, err: `regex_match: argument 2 (pattern): invalid regular expression "  ("`},
		{src: `regex_match(record.s, "a" + "b")`, want: true},
		{src: `regex_extract("order 1234 of 99", "[0-9]+")`, want: "1234"},
		{src: `regex_extract("order 1234", "order ([0-9]+)", 1)`, want: "1234"},
		{src: `regex_extract("k=v", "(?P<key>\\w+)=(?P<val>\\w+)", "val")`, want: "v"},
		{src: `regex_extract("abc", "x")`, want: nil},
		{src: `regex_extract("ab", "a(x)?b", 1)`, want: ""},
		{src: `regex_extract("abc", "(b)", 2)`, err: "has no group 2 (it has 1)"},
		{src: `regex_extract("abc", "(b)", "name")`, err: `has no group named "name"`},
		{src: `regex_extract(record.nil, "b")`, want: nil},
		{src: `regex_replace("a1b22", "[0-9]+", "#")`, want: "a#b#"},
		{src: `regex_replace("2024-01-31", "(\\d+)-(\\d+)-(\\d+)", "$3/$2/$1")`, want: "31/01/2024"},
		{src: `regex_replace(record.nil, "x", "y")`, want: nil},
		{src: `regex_replace("x", "[", "y")`, err: "missing closing ]"},
	})
}

func TestRecordFunctions(t *testing.T) {
	t.Setenv("SLUICE_TEST_ENV", "on")
	meta := map[string]string{"source": "drop", "path": "/in/a.csv"}
	runCases(t, testRecord(), meta, []fcase{
		{src: `env("SLUICE_TEST_ENV")`, want: "on"},
		{src: `env("SLUICE_TEST_UNSET_XYZ")`, want: nil},
		{src: `env("SLUICE_TEST_UNSET_XYZ", "dflt")`, want: "dflt"},
		{src: `env("")`, err: "env: argument 1 (name) must be a variable name"},
		{src: `has(record, "customer.address.city")`, want: true},
		{src: `has(record, "customer.address.zip")`, want: false},
		{src: `has(record, "nil")`, want: true},
		{src: `has(record, "items.1.sku")`, want: true},
		{src: `has(record, "items.2.sku")`, want: false},
		{src: `has(record, "dotted.key")`, want: true},
		{src: `has(record.nil, "a")`, want: false},
		{src: `has(meta, "source")`, want: true},
		{src: `get(record, "customer.name")`, want: "ACME"},
		{src: `get(record, "dotted.key")`, want: "exact"},
		{src: `get(record, "items.-1.sku")`, want: "B2"},
		{src: `get(record, "customer.zip", "none")`, want: "none"},
		{src: `get(record, "nil", 0)`, want: 0},
		{src: `get(record, "missing")`, want: nil},
		{src: `get(record.items, 0)`, want: adapters.Record{"sku": "A1"}},
		{src: `get(record.items, 5, "x")`, want: "x"},
		{src: `get([1, 2, 3], -1)`, want: 3},
		{src: `get(meta, "path")`, want: "/in/a.csv"},
		{src: `get(record, "a..b")`, err: `"a..b" has an empty part`},
		{src: `get(record, true)`, err: "argument 2 (path) must be a field path or an array index"},
		{src: `coalesce(record.nil, record.missing, "x", "y")`, want: "x"},
		{src: `coalesce(record.nil)`, want: nil},
		{src: `coalesce("", "x")`, want: ""},
		{src: `coalesce()`, err: "coalesce: want at least 1 argument, got 0"},
		{src: `to_int("0042")`, want: int64(42)},
		{src: `to_int(" -7 ")`, want: int64(-7)},
		{src: `to_int(record.f)`, want: int64(1)},
		{src: `to_int(record.amount)`, want: int64(12)},
		{src: `to_int(decimal("-12.9"))`, want: int64(-12)},
		{src: `to_int(true)`, want: int64(1)},
		{src: `to_int(record.blank)`, want: nil},
		{src: `to_int(record.nil, 0)`, want: int64(0)},
		{src: `to_int("12.5")`, err: `to_int: argument 1 (x): string "12.5" is not an integer`},
		{src: `to_int(decimal("1e30"))`, err: "out of the integer range"},
		{src: `to_int(record.when)`, err: "cannot convert time to an integer"},
		{src: `to_float("1.25")`, want: 1.25},
		{src: `to_float(record.amount)`, want: 12.1},
		{src: `to_float(record.n)`, want: 5.0},
		{src: `to_float("", 1.0)`, want: 1.0},
		{src: `to_float("x")`, err: `string "x" is not a number`},
		{src: `to_bool("Y")`, want: true},
		{src: `to_bool("off")`, want: false},
		{src: `to_bool(0)`, want: false},
		{src: `to_bool(record.amount)`, want: true},
		{src: `to_bool(record.nil, false)`, want: false},
		{src: `to_bool("maybe")`, err: "is not a boolean"},
		{src: `to_string(record.amount)`, want: "12.10"},
		{src: `to_string(record.n)`, want: "5"},
		{src: `to_string(record.f)`, want: "1.5"},
		{src: `to_string(record.when)`, want: "2024-01-31T13:45:00Z"},
		{src: `to_string(record.bytes)`, want: "hi"},
		{src: `to_string(record.nil)`, want: nil},
		{src: `to_string(record.nil, "")`, want: ""},
		{src: `to_string(record.customer)`, err: "use toJSON"},
		{src: `type_of(record.amount)`, want: "decimal"},
		{src: `type_of(record.n)`, want: "int"},
		{src: `type_of(record.f)`, want: "float"},
		{src: `type_of(record.nil)`, want: "nil"},
		{src: `type_of(record.customer)`, want: "object"},
		{src: `type_of(record.items)`, want: "array"},
		{src: `type_of(record.when)`, want: "time"},
		{src: `type_of(record.bytes)`, want: "bytes"},
		{src: `type_of(duration("1s"))`, want: "duration"},
		{src: `meta.source`, want: "drop"},
		{src: `meta.missing`, want: ""},
		{src: `record.customer.address.city`, want: "Lyon"},
		{src: `record?.nope?.deeper`, want: nil},
		{src: `record.nil.x`, err: "cannot fetch x from <nil>"},
		{src: `record["dotted.key"]`, want: "exact"},
		{src: `filter(record.items, .sku == "B2")[0].sku`, want: "B2"},
		{src: `record.when.Year()`, want: 2024},
	})
}

func TestHashFunctions(t *testing.T) {
	runCases(t, testRecord(), nil, []fcase{
		{src: `sha256("abc")`, want: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{src: `sha256(record.bytes)`, want: "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"},
		{src: `sha256(record.nil)`, want: nil},
		{src: `crc32("The quick brown fox jumps over the lazy dog")`, want: int64(0x414fa339)},
		{src: `crc32_hex("The quick brown fox jumps over the lazy dog")`, want: "414fa339"},
		{src: `crc32_hex("")`, want: "00000000"},
		{src: `crc32(record.customer)`, err: "crc32: argument 1 (s) must be a string, got object"},
		{src: `uuid_v5("dns", "www.example.com")`, want: "2ed6657d-e927-568b-95e1-2665a8aea6a2"},
		{src: `uuid_v5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com")`, want: "2ed6657d-e927-568b-95e1-2665a8aea6a2"},
		{src: `uuid_v5("dns", record.nil)`, want: nil},
		{src: `uuid_v5("nope", "x")`, err: "argument 1 (namespace) must be a UUID or one of dns, url, oid, x500"},
		{src: `len(uuid())`, want: 36},
		{src: `uuid() != uuid()`, want: true},
		{src: `substr(uuid(), 14, 1)`, want: "4"},
	})
}

func TestFunctionDocs(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Funcs() {
		seen[f.Name] = true
		if !strings.HasPrefix(f.Doc, f.Name+"(") || !strings.Contains(f.Doc, "→") {
			t.Errorf("%s: doc %q does not start with the signature and an arrow", f.Name, f.Doc)
		}
	}
	for _, name := range []string{"trim_left", "trim_right", "pad_left", "pad_right", "substr", "regex_match",
		"regex_extract", "regex_replace", "starts_with", "ends_with", "decimal", "round", "round_half_even",
		"floor", "ceil", "abs", "scale", "rescale", "decimal_string", "parse_time", "format_time",
		"parse_julian", "format_julian", "today", "to_timezone", "add_duration", "add_days", "unix",
		"unix_millis", "from_unix", "from_unix_millis", "sha256", "crc32", "crc32_hex", "uuid", "uuid_v5",
		"env", "has", "get", "coalesce", "to_int", "to_float", "to_string", "to_bool", "type_of", "lookup"} {
		if !seen[name] {
			t.Errorf("function %s is not registered", name)
		}
	}
}
