package transform

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes content beside path and renames it over path, the way
// careful tools publish a file.
func replaceTestFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeTestFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func loadTables(t *testing.T, opts LookupOptions, specs ...LookupSpec) *Lookups {
	t.Helper()
	l, err := LoadLookups(specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustGet(t *testing.T, l *Lookups, table string, key any) any {
	t.Helper()
	v, _, err := l.Get(table, key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLookupCSV(t *testing.T) {
	dir := t.TempDir()
	countries := filepath.Join(dir, "countries.csv")
	writeTestFile(t, countries, "\xef\xbb\xbfcode,name,region\nFR,France,EU\nUS,United States,NA\n042,Answer,X\n")
	semi := filepath.Join(dir, "semi.csv")
	writeTestFile(t, semi, "id;label\n1;one\n2;two\n")
	l := loadTables(t, LookupOptions{},
		LookupSpec{Name: "country", Path: countries, Key: "code", Value: "name"},
		LookupSpec{Name: "row", Path: countries},
		LookupSpec{Name: "region", Path: countries, Value: "region"},
		LookupSpec{Name: "semi", Path: semi, Delimiter: ';', Value: "label"},
	)
	tests := []struct {
		table string
		key   any
		want  any
		found bool
	}{
		{"country", "FR", "France", true},
		{"country", "DE", nil, false},
		{"country", nil, nil, false},
		{"country", "042", "Answer", true},
		{"row", "US", adapters.Record{"code": "US", "name": "United States", "region": "NA"}, true},
		{"region", "FR", "EU", true},
		{"semi", int64(2), "two", true},
		{"semi", "2", "two", true},
	}
	for _, tc := range tests {
		v, found, err := l.Get(tc.table, tc.key)
		if err != nil || found != tc.found || !reflect.DeepEqual(v, tc.want) {
			t.Errorf("Get(%s, %v) = %#v, %v, %v; want %#v, %v", tc.table, tc.key, v, found, err, tc.want, tc.found)
		}
	}
	if got := l.Tables(); !reflect.DeepEqual(got, []string{"country", "region", "row", "semi"}) {
		t.Errorf("Tables() = %v", got)
	}
	if n := l.Len("country"); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	// A looked-up row is a copy: changing it leaves the table alone.
	row := mustGet(t, l, "row", "FR").(adapters.Record)
	row["name"] = "changed"
	if got := mustGet(t, l, "row", "FR").(adapters.Record)["name"]; got != "France" {
		t.Errorf("table modified through a looked-up row: %v", got)
	}
	if _, _, err := l.Get("nope", "x"); err == nil || !strings.Contains(err.Error(), `unknown lookup table "nope" (declared: country, region, row, semi)`) {
		t.Errorf("unknown table: %v", err)
	}
	if _, _, err := l.Get("country", adapters.Record{}); err == nil {
		t.Error("an object key was accepted")
	}
}

func TestLookupLoadErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeTestFile(t, p, content)
		return p
	}
	good := file("good.csv", "k,v\na,1\n")
	tests := []struct {
		name string
		spec LookupSpec
		want string
	}{
		{"duplicate key", LookupSpec{Name: "t", Path: file("dup.csv", "k,v\na,1\nb,2\na,3\n")}, `line 4: key "a" already appears on line 2`},
		{"missing key column", LookupSpec{Name: "t", Path: good, Key: "code"}, `no key column "code" (columns: k, v)`},
		{"missing value column", LookupSpec{Name: "t", Path: good, Value: "name"}, `no value column "name" (columns: k, v)`},
		{"empty", LookupSpec{Name: "t", Path: file("empty.csv", "")}, "empty file"},
		{"ragged", LookupSpec{Name: "t", Path: file("ragged.csv", "k,v\na,1,2\n")}, "wrong number of fields"},
		{"unnamed column", LookupSpec{Name: "t", Path: file("unnamed.csv", "k,,v\n")}, "column 2 has no name"},
		{"missing file", LookupSpec{Name: "t", Path: filepath.Join(dir, "none.csv")}, "no such file"},
		{"unknown extension", LookupSpec{Name: "t", Path: file("x.txt", "")}, "set format: csv or yaml"},
		{"unknown format", LookupSpec{Name: "t", Path: good, Format: "xml"}, `unknown format "xml"`},
		{"no name", LookupSpec{Path: good}, "needs a name"},
		{"no path", LookupSpec{Name: "t"}, "path is missing"},
		{"yaml syntax", LookupSpec{Name: "t", Path: file("bad.yaml", "a: [1\n")}, "yaml"},
		{"yaml scalar", LookupSpec{Name: "t", Path: file("scalar.yaml", "42\n")}, "want a mapping of key to value, or a list of objects"},
		{"yaml list without key", LookupSpec{Name: "t", Path: file("list.yaml", "- {id: 1}\n")}, "set key"},
		{"yaml list entry without key", LookupSpec{Name: "t", Path: file("list2.yaml", "- {id: 1}\n- {x: 2}\n"), Key: "id"}, `line 2: the entry has no scalar "id" field`},
		{"yaml duplicate", LookupSpec{Name: "t", Path: file("dup.yaml", "- {id: 1}\n- {id: 1}\n"), Key: "id"}, `line 2: key "1" already appears on line 1`},
		{"yaml value not object", LookupSpec{Name: "t", Path: file("v.yaml", "a: 1\n"), Value: "name"}, `not an object with a "name" field`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := LoadLookups([]LookupSpec{tc.spec}, LookupOptions{})
			if err == nil {
				l.Close()
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once, and a duplicate name is one.
	_, err := LoadLookups([]LookupSpec{{Name: "a", Path: good}, {Name: "a", Path: good}, {Name: "b"}}, LookupOptions{})
	if err == nil || !strings.Contains(err.Error(), `"a" is declared twice`) || !strings.Contains(err.Error(), `"b": path is missing`) {
		t.Fatalf("got %v", err)
	}
}

func TestLookupYAML(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "codes.yaml")
	writeTestFile(t, m, "001: first\n2: {name: two, rate: 0.5, n: 3, tags: [a, b]}\nyes: boolean key stays text\n")
	list := filepath.Join(dir, "list.yml")
	writeTestFile(t, list, "- {sku: A1, name: Apple, price: 1.25}\n- {sku: B2, name: Banana, price: 2}\n")
	l := loadTables(t, LookupOptions{},
		LookupSpec{Name: "codes", Path: m},
		LookupSpec{Name: "products", Path: list, Key: "sku"},
		LookupSpec{Name: "names", Path: list, Key: "sku", Value: "name"},
	)
	if got := mustGet(t, l, "codes", "001"); got != "first" {
		t.Errorf("leading zeros lost: %v", got)
	}
	if got := mustGet(t, l, "codes", int64(1)); got != nil {
		t.Errorf("key 1 found %v; keys are text", got)
	}
	want := adapters.Record{"name": "two", "rate": 0.5, "n": int64(3), "tags": []any{"a", "b"}}
	if got := mustGet(t, l, "codes", int64(2)); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	if got := mustGet(t, l, "codes", "yes"); got != "boolean key stays text" {
		t.Errorf("got %v", got)
	}
	if got := mustGet(t, l, "products", "B2"); !reflect.DeepEqual(got, adapters.Record{"sku": "B2", "name": "Banana", "price": int64(2)}) {
		t.Errorf("got %#v", got)
	}
	if got := mustGet(t, l, "names", "A1"); got != "Apple" {
		t.Errorf("got %#v", got)
	}
}

func TestLookupFunction(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "countries.csv")
	writeTestFile(t, p, "code,name\nFR,France\n42,Answer\n")
	l := loadTables(t, LookupOptions{}, LookupSpec{Name: "country", Path: p, Value: "name"}, LookupSpec{Name: "row", Path: p})
	rec := adapters.Record{"c": "FR", "n": int64(42), "x": "ZZ", "nil": nil}
	var r Runner
	r.SetLookups(l)
	cases := []fcase{
		{src: `lookup("country", record.c)`, want: "France"},
		{src: `lookup("country", record.n)`, want: "Answer"},
		{src: `lookup("country", record.x)`, want: nil},
		{src: `lookup("country", record.x, "unknown")`, want: "unknown"},
		{src: `lookup("country", record.nil, "none")`, want: "none"},
		{src: `lookup("row", record.c).name`, want: "France"},
		{src: `lookup("nope", record.c)`, err: `lookup: unknown lookup table "nope" (declared: country, row)`},
		{src: `lookup(record.n, record.c)`, err: "lookup: argument 1 (table) must be a table name, got int"},
		{src: `lookup("country")`, err: "lookup: want 2 or 3 arguments, got 1"},
		{src: `upper(lookup("country", "FR"))`, want: "FRANCE"},
	}
	for _, c := range cases {
		got, err := evalSrc(&r, c.src, rec, nil)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.src, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, %v; want %#v", c.src, got, err, c.want)
		}
	}
	// In a template too.
	tpl, err := CompileTemplate(`{{ lookup("country", record.c) }}.txt`)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Render(tpl, rec, nil); err != nil || got != "France.txt" {
		t.Errorf("template: %q, %v", got, err)
	}
	// A Runner without tables says so.
	var bare Runner
	if _, err := evalSrc(&bare, `lookup("country", "FR")`, rec, nil); err == nil || !strings.Contains(err.Error(), "no lookup tables are declared") {
		t.Errorf("got %v", err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLookupReload(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rates.csv")
	writeTestFile(t, p, "cur,rate\nEUR,1.00\n")
	reloads := make(chan error, 100)
	l := loadTables(t, LookupOptions{Poll: -1, OnReload: func(_ string, err error) { reloads <- err }},
		LookupSpec{Name: "rate", Path: p, Value: "rate"})
	get := func(k string) any { return mustGet(t, l, "rate", k) }

	// Replaced by rename: seen through the directory watch.
	replaceTestFile(t, p, "cur,rate\nEUR,1.00\nUSD,1.08\n")
	waitUntil(t, "the renamed file to load", func() bool { return get("USD") == "1.08" })

	// Rewritten in place.
	writeTestFile(t, p, "cur,rate\nEUR,1.01\nUSD,1.09\n")
	waitUntil(t, "the rewritten file to load", func() bool { return get("USD") == "1.09" })

	// A broken file keeps the previous table.
	drainErrors(reloads)
	writeTestFile(t, p, "cur,rate\nEUR,1.02\nEUR,1.03\n")
	waitUntil(t, "the failed reload", func() bool {
		select {
		case err := <-reloads:
			return err != nil && strings.Contains(err.Error(), `key "EUR" already appears on line 2`)
		default:
			return false
		}
	})
	if get("EUR") != "1.01" || get("USD") != "1.09" {
		t.Fatalf("failed reload changed the table: EUR=%v USD=%v", get("EUR"), get("USD"))
	}
	// Removing the file keeps the table too; bringing it back loads it.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * lookupSettle)
	if get("EUR") != "1.01" {
		t.Fatalf("removed file changed the table: %v", get("EUR"))
	}
	replaceTestFile(t, p, "cur,rate\nEUR,1.05\n")
	waitUntil(t, "the restored file to load", func() bool { return get("EUR") == "1.05" })
	if get("USD") != nil {
		t.Fatalf("USD still there after reload: %v", get("USD"))
	}
}

func drainErrors(c chan error) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func TestLookupPoll(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.yaml")
	writeTestFile(t, p, "a: 1\n")
	l := loadTables(t, LookupOptions{Poll: 20 * time.Millisecond}, LookupSpec{Name: "t", Path: p})
	tbl := l.tables["t"]
	if tbl.changed() {
		t.Fatal("unchanged file reported as changed")
	}
	writeTestFile(t, p, "a: 2\nb: 3\n")
	if !tbl.changed() {
		t.Fatal("changed file (new size) not reported")
	}
	waitUntil(t, "the poll or the event to reload", func() bool { return mustGet(t, l, "t", "b") == int64(3) })
	if tbl.changed() {
		t.Fatal("file still reported as changed after the reload")
	}
	// An explicit Reload works too, and a failing one is reported.
	writeTestFile(t, p, "- x\n")
	if err := l.Reload("t"); err == nil {
		t.Fatal("Reload of a broken file succeeded")
	}
	if got := mustGet(t, l, "t", "a"); got != int64(2) {
		t.Fatalf("got %v after a failed reload", got)
	}
	if err := l.Reload("none"); err == nil {
		t.Fatal("Reload of an unknown table succeeded")
	}
	// Close is idempotent; the tables stay readable.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, l, "t", "a"); got != int64(2) {
		t.Fatalf("got %v after Close", got)
	}
}

func TestDecodeLookups(t *testing.T) {
	raw := map[string]any{
		"country": map[string]any{"path": "countries.csv", "key": "code", "value": "name"},
		"rates":   "/abs/rates.yaml",
		"semi":    map[string]any{"path": "x.dat", "format": "csv", "delimiter": ";"},
	}
	specs, err := DecodeLookups(raw, "/etc/sluice", adapters.DecodeOptions{File: "p.yaml", Path: "pipelines.p.lookups"})
	if err != nil {
		t.Fatal(err)
	}
	want := []LookupSpec{
		{Name: "country", Path: "/etc/sluice/countries.csv", Format: "csv", Key: "code", Value: "name", Delimiter: ','},
		{Name: "rates", Path: "/abs/rates.yaml", Format: "yaml", Delimiter: ','},
		{Name: "semi", Path: "/etc/sluice/x.dat", Format: "csv", Delimiter: ';'},
	}
	if !reflect.DeepEqual(specs, want) {
		t.Fatalf("got %+v\nwant %+v", specs, want)
	}

	bad := map[string]any{
		"a": map[string]any{"path": "a.csv", "colour": "red"},
		"b": map[string]any{"key": "k"},
		"c": map[string]any{"path": "c.csv", "delimiter": ";;"},
		"d": map[string]any{"path": "d.csv", "format": "xml"},
		"e": 42,
		"f": "f.txt",
	}
	_, err = DecodeLookups(bad, "", adapters.DecodeOptions{File: "p.yaml", Path: "pipelines.p.lookups",
		Line: func(string) int { return 7 }})
	var es adapters.Errors
	if !errors.As(err, &es) {
		t.Fatalf("want adapters.Errors, got %T %v", err, err)
	}
	got := es.Error()
	for _, w := range []string{
		`p.yaml:7: pipelines.p.lookups.a.colour: unknown key "colour"`,
		`pipelines.p.lookups.b.path: required string is missing`,
		`pipelines.p.lookups.c.delimiter: want one character`,
		`pipelines.p.lookups.d.format: invalid value "xml" (allowed: csv, yaml)`,
		`pipelines.p.lookups.e: want a file path or a mapping`,
		`pipelines.p.lookups.f: lookup table "f": cannot tell the format`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("errors lack %q:\n%s", w, got)
		}
	}
	if _, err := DecodeLookups([]any{}, "", adapters.DecodeOptions{Path: "lookups"}); err == nil {
		t.Error("a list was accepted")
	}
	if specs, err := DecodeLookups(nil, "", adapters.DecodeOptions{}); err != nil || specs != nil {
		t.Errorf("nil: %v, %v", specs, err)
	}
}
