package transform_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform"
)

// Exact money arithmetic: a decimal keeps its scale, and operators work on
// record fields whose type is only known at run time.
func ExampleCompile_decimal() {
	p, err := transform.Compile(`decimal(record.AMT) / 100 + record.fee`)
	if err != nil {
		panic(err)
	}
	var r transform.Runner
	v, err := r.Eval(p, adapters.Record{"AMT": "123456", "fee": decimal.RequireFromString("0.50")}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(transform.ToString(v))
	// Output: 1235.06
}

// A pipeline's lookup tables are loaded once and given to each Runner.
func ExampleLoadLookups() {
	dir, err := os.MkdirTemp("", "lookup")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "countries.csv")
	if err := os.WriteFile(path, []byte("code,name\nFR,France\nDE,Germany\n"), 0o644); err != nil {
		panic(err)
	}
	tables, err := transform.LoadLookups([]transform.LookupSpec{{Name: "country", Path: path, Key: "code", Value: "name"}},
		transform.LookupOptions{})
	if err != nil {
		panic(err)
	}
	defer tables.Close()

	p, err := transform.Compile(`lookup("country", record.cc, "unknown")`)
	if err != nil {
		panic(err)
	}
	var r transform.Runner
	r.SetLookups(tables)
	for _, cc := range []string{"FR", "XX"} {
		v, _ := r.Eval(p, adapters.Record{"cc": cc}, nil)
		fmt.Println(cc, v)
	}
	// Output:
	// FR France
	// XX unknown
}
