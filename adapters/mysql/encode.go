package mysql

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// sqlArg converts a record value to the argument bound for column col (whose
// information_schema description may be unknown: zero value).
//
//   - time.Time: TIMESTAMP columns get UTC text (the session time zone is
//     +00:00), DATE the date in time_zone, TIME the time of day, others the
//     date and time in time_zone, with microseconds.
//   - decimal.Decimal: its exact text.
//   - []any: SET columns get the members joined with ","; other columns the
//     JSON text. Records become JSON text.
//   - float64 NaN and ±Inf cannot be stored: an error.
func sqlArg(col *column, v any, loc *time.Location) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, uint64, string, []byte:
		return v, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v cannot be stored", x)
		}
		return x, nil
	case decimal.Decimal:
		return decimalText(x), nil
	case time.Time:
		switch col.dataType {
		case "timestamp":
			return formatDateTime(x.UTC()), nil
		case "date":
			return x.In(loc).Format("2006-01-02"), nil
		case "time":
			t := x.In(loc)
			if t.Nanosecond() == 0 {
				return t.Format("15:04:05"), nil
			}
			return t.Format("15:04:05.999999"), nil
		}
		return formatDateTime(x.In(loc)), nil
	case []any:
		if col.dataType == "set" {
			parts := make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("SET member %d is %T, not a string", i, e)
				}
				parts[i] = s
			}
			return strings.Join(parts, ","), nil
		}
		b, err := appendJSON(nil, x)
		return string(b), err
	case adapters.Record:
		b, err := appendJSON(nil, x)
		return string(b), err
	case int:
		return int64(x), nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

// decimalText is the exact text of d with its scale: 1.10 stays 1.10
// (decimal.Decimal.String would print 1.1).
func decimalText(d decimal.Decimal) string {
	if e := d.Exponent(); e < 0 {
		return d.StringFixed(-e)
	}
	return d.String()
}

// argSize estimates the bytes an argument takes in an interpolated
// statement, on the high side (every byte of a string escaped).
func argSize(v any) int {
	switch x := v.(type) {
	case string:
		return 2*len(x) + 3
	case []byte:
		return 2*len(x) + 10
	}
	return 24
}

var errJSONDepth = errors.New("value nested too deeply for JSON")

// appendJSON encodes a record value as JSON: decimals as exact numbers,
// times as RFC 3339 strings, bytes as base64 strings, map keys sorted.
func appendJSON(b []byte, v any) ([]byte, error) { return appendJSONDepth(b, v, 0) }

func appendJSONDepth(b []byte, v any, depth int) ([]byte, error) {
	if depth > 64 {
		return b, errJSONDepth
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return b, fmt.Errorf("%v has no JSON form", x)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case decimal.Decimal:
		return append(b, decimalText(x)...), nil
	case string:
		return appendJSONString(b, x), nil
	case []byte:
		return appendJSONString(b, base64.StdEncoding.EncodeToString(x)), nil
	case time.Time:
		return appendJSONString(b, x.Format(time.RFC3339Nano)), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSONDepth(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case adapters.Record:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSONDepth(b, x[k], depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	return b, fmt.Errorf("unsupported value type %T", v)
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
