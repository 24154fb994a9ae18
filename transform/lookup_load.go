package transform

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/adapters"
)

// maxLookupFile bounds the size of a lookup file: tables live in memory.
const maxLookupFile = 256 << 20

func statFile(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileStamp{}, fmt.Errorf("%s is not a regular file", path)
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime()}, nil
}

// readTable reads a lookup file into key → value.
func readTable(s *LookupSpec) (map[string]any, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxLookupFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Path, err)
	}
	if len(data) > maxLookupFile {
		return nil, fmt.Errorf("%s is larger than %d MiB, too large for a lookup table", s.Path, maxLookupFile>>20)
	}
	var rows map[string]any
	if s.Format == "csv" {
		rows, err = parseCSVTable(s, data)
	} else {
		rows, err = parseYAMLTable(s, data)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	return rows, nil
}

func parseCSVTable(s *LookupSpec, data []byte) (map[string]any, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM from spreadsheet exports
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = s.Delimiter
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: want a header line with the column names")
	}
	if err != nil {
		return nil, err
	}
	cols := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if h == "" {
			return nil, fmt.Errorf("line 1: column %d has no name", i+1)
		}
		if _, dup := cols[h]; dup {
			return nil, fmt.Errorf("line 1: column %q appears twice", h)
		}
		cols[h] = i
	}
	keyCol, valCol := 0, -1
	if s.Key != "" {
		i, ok := cols[s.Key]
		if !ok {
			return nil, fmt.Errorf("no key column %q (columns: %s)", s.Key, strings.Join(header, ", "))
		}
		keyCol = i
	}
	if s.Value != "" {
		i, ok := cols[s.Value]
		if !ok {
			return nil, fmt.Errorf("no value column %q (columns: %s)", s.Value, strings.Join(header, ", "))
		}
		valCol = i
	}
	rows := map[string]any{}
	firstLine := map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		key := rec[keyCol]
		if prev, dup := firstLine[key]; dup {
			return nil, fmt.Errorf("line %d: key %q already appears on line %d", line, key, prev)
		}
		firstLine[key] = line
		if valCol >= 0 {
			rows[key] = rec[valCol]
			continue
		}
		row := make(adapters.Record, len(header))
		for i, h := range header {
			row[h] = rec[i]
		}
		rows[key] = row
	}
}

func parseYAMLTable(s *LookupSpec, data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return map[string]any{}, nil
	}
	root := doc.Content[0]
	rows := map[string]any{}
	firstLine := map[string]int{}
	add := func(key string, line int, v *yaml.Node) error {
		if prev, dup := firstLine[key]; dup {
			return fmt.Errorf("line %d: key %q already appears on line %d", line, key, prev)
		}
		firstLine[key] = line
		val, err := yamlValue(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", v.Line, err)
		}
		if s.Value != "" {
			obj, ok := val.(adapters.Record)
			if !ok {
				return fmt.Errorf("line %d: the entry of key %q is not an object with a %q field", v.Line, key, s.Value)
			}
			val = obj[s.Value]
		}
		rows[key] = val
		return nil
	}
	switch root.Kind {
	case yaml.MappingNode:
		if s.Key != "" {
			return nil, fmt.Errorf("key %q is for a list of objects, but the file is a mapping of key to value", s.Key)
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			k := root.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key must be a scalar", k.Line)
			}
			if err := add(k.Value, k.Line, root.Content[i+1]); err != nil {
				return nil, err
			}
		}
	case yaml.SequenceNode:
		if s.Key == "" {
			return nil, errors.New("the file is a list: set key to the field that holds each entry's key")
		}
		for _, e := range root.Content {
			if e.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("line %d: want an object with a %q field", e.Line, s.Key)
			}
			var k *yaml.Node
			for i := 0; i+1 < len(e.Content); i += 2 {
				if e.Content[i].Value == s.Key {
					k = e.Content[i+1]
				}
			}
			if k == nil || k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: the entry has no scalar %q field", e.Line, s.Key)
			}
			if err := add(k.Value, e.Line, e); err != nil {
				return nil, err
			}
		}
	default:
		return nil, errors.New("want a mapping of key to value, or a list of objects")
	}
	return rows, nil
}

// yamlValue decodes a YAML value into record types: int64, float64,
// string, bool, time.Time, Record, []any.
func yamlValue(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return recordValue(v), nil
}

func recordValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = recordValue(e)
		}
		return x
	case map[any]any:
		out := make(adapters.Record, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = recordValue(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = recordValue(e)
		}
		return x
	}
	return Normalize(v)
}
