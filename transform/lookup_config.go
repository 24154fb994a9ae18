package transform

import (
	"fmt"
	"path/filepath"
	"sort"
	"unicode/utf8"

	"github.com/sluicehq/sluice/adapters"
)

// LookupTableSpec is the configuration of one table under a pipeline's
// lookups: key. The engine decodes it with DecodeLookups; it also documents
// the shape for `sluice adapters` and the JSON schema.
var LookupTableSpec = &adapters.Spec{
	Summary: "A lookup table: a CSV or YAML file reached from expressions with lookup(NAME, key), reloaded when the file changes.",
	Description: "A CSV file has a header line; `key` names the key column (default: the first) and `value` the " +
		"value column (default: none, the whole row is the value, as an object). A YAML file is a mapping of " +
		"key to value, or a list of objects with `key` naming the key field. Keys are compared as text. " +
		"A table may be given as just its path.",
	Example: "lookups:\n  country: {path: countries.csv, key: code, value: name}\n  rates: rates.yaml\n",
	Fields: []adapters.Field{
		{Name: "path", Type: adapters.TypeString, Example: "countries.csv",
			Description: "File of the table; a relative path is relative to the directory of the config file."},
		{Name: "format", Type: adapters.TypeString, Optional: true, Enum: []string{"csv", "yaml"},
			Description: "File format; by default inferred from the extension (.csv, .yaml, .yml)."},
		{Name: "key", Type: adapters.TypeString, Optional: true, Example: "code",
			Description: "CSV: the key column (default: the first column). YAML list: the field holding each entry's key."},
		{Name: "value", Type: adapters.TypeString, Optional: true, Example: "name",
			Description: "The column (CSV) or field (YAML) that is the value; without it the value is the whole row or entry."},
		{Name: "delimiter", Type: adapters.TypeString, Default: ",",
			Description: "CSV field delimiter, one character.",
			Check: func(v any) error {
				if s := v.(string); utf8.RuneCountInString(s) != 1 || s == "\"" || s == "\n" || s == "\r" {
					return fmt.Errorf("want one character other than a quote or a line break, got %q", s)
				}
				return nil
			}},
	},
}

// DecodeLookups decodes a pipeline's lookups: value, a mapping of table
// name to a path or a LookupTableSpec block, and resolves relative paths
// against baseDir. opts.Path is the key path of the value (for example
// pipelines.orders.lookups). It reports every problem at once, as
// adapters.Errors.
func DecodeLookups(raw any, baseDir string, opts adapters.DecodeOptions) ([]LookupSpec, error) {
	if raw == nil {
		return nil, nil
	}
	line := func(p string) int {
		if opts.Line == nil {
			return 0
		}
		return opts.Line(p)
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, adapters.Errors{{File: opts.File, Path: opts.Path, Line: line(opts.Path),
			Msg: "want a mapping of table name to a file path or {path, key, value}"}}
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs adapters.Errors
	var specs []LookupSpec
	for _, name := range names {
		p := opts.Path + "." + name
		block, ok := m[name].(map[string]any)
		if s, isPath := m[name].(string); isPath {
			block, ok = map[string]any{"path": s}, true
		}
		if !ok {
			errs = append(errs, &adapters.FieldError{File: opts.File, Path: p, Line: line(p),
				Msg: "want a file path or a mapping with path, key, value"})
			continue
		}
		o := opts
		o.Path = p
		c, err := adapters.Decode(LookupTableSpec, block, o)
		if err != nil {
			errs = append(errs, adapters.AsErrors(err, p, line(p))...)
			continue
		}
		path := c.String("path")
		if !filepath.IsAbs(path) && baseDir != "" {
			path = filepath.Join(baseDir, path)
		}
		spec := LookupSpec{Name: name, Path: path, Key: c.String("key"), Value: c.String("value")}
		if c.Has("format") {
			spec.Format = c.String("format")
		}
		spec.Delimiter, _ = utf8.DecodeRuneInString(c.String("delimiter"))
		if err := checkLookupSpec(&spec); err != nil {
			errs = append(errs, &adapters.FieldError{File: opts.File, Path: p, Line: line(p), Msg: err.Error()})
			continue
		}
		specs = append(specs, spec)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return specs, nil
}
