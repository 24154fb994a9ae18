package transform

import (
	"testing"
	"time"
)

func FuzzLookupCSV(f *testing.F) {
	f.Add([]byte("k,v\na,1\nb,2\n"), byte(','), "", "v")
	f.Add([]byte("\xef\xbb\xbfcode;name\n\"F;R\";\"Fr\"\"ance\"\n"), byte(';'), "code", "")
	f.Add([]byte("a,a\n"), byte(','), "", "")
	f.Fuzz(func(t *testing.T, data []byte, delim byte, key, value string) {
		if delim == '"' || delim == '\n' || delim == '\r' || delim == 0 || delim >= 0x80 {
			delim = ','
		}
		s := &LookupSpec{Name: "t", Format: "csv", Delimiter: rune(delim), Key: key, Value: value}
		rows, err := parseCSVTable(s, data)
		if err == nil && rows == nil {
			t.Fatal("nil table without an error")
		}
	})
}

func FuzzLookupYAML(f *testing.F) {
	f.Add([]byte("a: 1\nb: {x: [1, 2]}\n"), "")
	f.Add([]byte("- {id: 1, v: x}\n- {id: 2}\n"), "id")
	f.Add([]byte("&a [*a]"), "")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		rows, err := parseYAMLTable(&LookupSpec{Name: "t", Format: "yaml", Key: key}, data)
		if err == nil && rows == nil {
			t.Fatal("nil table without an error")
		}
	})
}

// FuzzJulian checks that parsing never panics and that a date parsed from
// a form writes back to the same text.
func FuzzJulian(f *testing.F) {
	for _, s := range []string{"24001", "124366", "2024060", "099365", "00000", "9", "1A3001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseJulian(s, "")
		if err != nil {
			return
		}
		form := map[int]string{5: julianYYDDD, 6: julianCYYDDD, 7: julianYYYYDDD}[len(s)]
		back, err := formatJulian(v.(time.Time), form)
		if err != nil || back != s {
			t.Fatalf("%q parsed to %v, written back as %q (%v)", s, v, back, err)
		}
	})
}
