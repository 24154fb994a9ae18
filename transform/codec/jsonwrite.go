package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// keyBuf is reusable scratch for sorting the fields of large objects;
// appendJSON takes one so that an encoder sorts without allocating. It may
// be nil. Objects of up to smallObject fields are sorted in an array on the
// stack, which also spares the GC write barriers of heap scratch.
//
// shape is the sorted keys of the last top-level object sorted: records of
// a stream mostly share their keys, and looking each key up is cheaper than
// iterating and sorting the map.
type keyBuf struct {
	fields [][]field
	shape  []string
}

type field struct {
	k string
	v any
}

const smallObject = 16

// sortedFields appends the fields of m to fs and sorts them by key.
func sortedFields(fs []field, m map[string]any) []field {
	for k, v := range m {
		fs = append(fs, field{k, v})
	}
	if len(fs) <= smallObject {
		// Insertion sort: fewer comparisons and no overhead for records.
		for i := 1; i < len(fs); i++ {
			for j := i; j > 0 && fs[j].k < fs[j-1].k; j-- {
				fs[j], fs[j-1] = fs[j-1], fs[j]
			}
		}
	} else {
		slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.k, b.k) })
	}
	return fs
}

// sorted returns the fields of m in key order, in scratch for depth.
func (kb *keyBuf) sorted(m map[string]any, depth int) []field {
	var fs []field
	if kb != nil {
		for len(kb.fields) <= depth {
			kb.fields = append(kb.fields, nil)
		}
		fs = kb.fields[depth][:0]
	}
	return sortedFields(fs, m)
}

// sortedTop appends the fields of a top-level object m to fs in key order:
// in the order of shape when m has exactly its keys (as many, and each one
// found), else sorted, and then m's keys become the shape.
func (kb *keyBuf) sortedTop(fs []field, m map[string]any) []field {
	if n := len(kb.shape); n == len(m) && n > 0 {
		for _, k := range kb.shape {
			v, ok := m[k]
			if !ok {
				break
			}
			fs = append(fs, field{k, v})
		}
		if len(fs) == n {
			return fs
		}
		fs = fs[:0]
	}
	fs = sortedFields(fs, m)
	kb.shape = kb.shape[:0]
	for _, f := range fs {
		kb.shape = append(kb.shape, f.k)
	}
	return fs
}

// release clears the scratch of depth so that it holds no values.
func (kb *keyBuf) release(fs []field, depth int) {
	if kb != nil {
		clear(fs)
		kb.fields[depth] = fs[:0]
	}
}

// appendJSON appends v as JSON. Object keys are written sorted, so equal
// records encode to equal bytes. time.Time is an RFC 3339 string with
// nanoseconds, decimal.Decimal a number with all its digits, []byte a
// base64 string. Types outside the Record contract go through encoding/json.
func appendJSON(b []byte, v any, kb *keyBuf) ([]byte, error) {
	return appendJSONDepth(b, v, kb, 0)
}

func appendJSONDepth(b []byte, v any, kb *keyBuf, depth int) ([]byte, error) {
	if depth > maxJSONDepth {
		return b, fmt.Errorf("%w: nested deeper than %d levels", ErrUnsupportedValue, maxJSONDepth)
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		n := len(b)
		b, err := appendFloat(b, x)
		if err == nil && !bytes.ContainsAny(b[n:], ".e") {
			b = append(b, ".0"...) // stays a float when read back
		}
		return b, err
	case decimal.Decimal:
		if e := x.Exponent(); e > 0 {
			// 1E+3 keeps its exponent, and reads back as a decimal.
			b = append(b, x.Coefficient().String()...)
			b = append(b, 'e')
			return strconv.AppendInt(b, int64(e), 10), nil
		}
		return appendDecimal(b, x), nil
	case time.Time:
		b = append(b, '"')
		b = x.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), nil
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"'), nil
	case map[string]any:
		if len(x) <= smallObject {
			var arr [smallObject]field
			if depth == 0 && kb != nil {
				return appendJSONObject(b, kb.sortedTop(arr[:0], x), kb, depth)
			}
			return appendJSONObject(b, sortedFields(arr[:0], x), kb, depth)
		}
		fs := kb.sorted(x, depth)
		b, err := appendJSONObject(b, fs, kb, depth)
		kb.release(fs, depth)
		return b, err
	case []any:
		b = append(b, '[')
		var err error
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSONDepth(b, e, kb, depth+1); err != nil {
				return b, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("%w: %T: %v", ErrUnsupportedValue, v, err)
	}
	return append(b, j...), nil
}

func appendJSONObject(b []byte, fs []field, kb *keyBuf, depth int) ([]byte, error) {
	b = append(b, '{')
	var err error
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.k)
		b = append(b, ':')
		if b, err = appendJSONDepth(b, f.v, kb, depth+1); err != nil {
			return b, fmt.Errorf("field %q: %w", f.k, err)
		}
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes that need no escaping in a JSON string.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s quoted, escaping like encoding/json without
// HTML escaping; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += n
			start = i
			continue
		}
		i += n
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
