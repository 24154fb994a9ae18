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
func sqlArg(col *column, v any, loc *time.Location) (any, error) { return sqlArgIn(col, v, loc, nil) }

// sqlArgIn is sqlArg with the formatted text (times, decimals, JSON) kept
// in ar, a few allocations for a whole batch.
func sqlArgIn(col *column, v any, loc *time.Location, ar *arena) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, uint64, string, []byte:
		return v, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v cannot be stored", x)
		}
		return x, nil
	case decimal.Decimal:
		return ar.text(func(b []byte) []byte { return appendDecimal(b, x) }), nil
	case time.Time:
		switch col.dataType {
		case "timestamp":
			x = x.UTC()
		case "date":
			return ar.text(func(b []byte) []byte { return x.In(loc).AppendFormat(b, "2006-01-02") }), nil
		case "time":
			return ar.text(func(b []byte) []byte { return appendClock(b, x.In(loc)) }), nil
		default:
			x = x.In(loc)
		}
		return ar.text(func(b []byte) []byte { return appendDateTime(b, x) }), nil
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
		return jsonText(x, ar)
	case adapters.Record:
		return jsonText(x, ar)
	case int:
		return int64(x), nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func jsonText(v any, ar *arena) (any, error) {
	var err error
	s := ar.text(func(b []byte) []byte {
		b, err = appendJSON(b, v)
		return b
	})
	return s, err
}

// appendDecimal appends the exact text of d with its scale, without big.Int
// formatting when the coefficient has 18 digits or fewer.
func appendDecimal(b []byte, d decimal.Decimal) []byte {
	if d.NumDigits() > 18 {
		return append(b, decimalText(d)...)
	}
	c, e := d.CoefficientInt64(), int(d.Exponent())
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	var buf [20]byte
	digits := strconv.AppendInt(buf[:0], c, 10)
	switch {
	case e >= 0:
		b = append(b, digits...)
		for range e {
			b = append(b, '0')
		}
	case len(digits) > -e:
		b = append(b, digits[:len(digits)+e]...)
		b = append(b, '.')
		b = append(b, digits[len(digits)+e:]...)
	default:
		b = append(b, '0', '.')
		for range -e - len(digits) {
			b = append(b, '0')
		}
		b = append(b, digits...)
	}
	return b
}

// appendDateTime appends t as "YYYY-MM-DD HH:MM:SS[.ffffff]", the
// fraction in microseconds without trailing zeros.
func appendDateTime(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	b = appendInt(b, y, 4)
	b = append(b, '-')
	b = appendInt(b, int(mo), 2)
	b = append(b, '-')
	b = appendInt(b, d, 2)
	b = append(b, ' ')
	return appendClock(b, t)
}

// appendClock appends the time of day "HH:MM:SS[.ffffff]".
func appendClock(b []byte, t time.Time) []byte {
	h, mi, s := t.Clock()
	b = appendInt(b, h, 2)
	b = append(b, ':')
	b = appendInt(b, mi, 2)
	b = append(b, ':')
	b = appendInt(b, s, 2)
	if us := t.Nanosecond() / 1000; us > 0 {
		b = append(b, '.')
		n := 6
		for us%10 == 0 {
			us /= 10
			n--
		}
		b = appendInt(b, us, n)
	}
	return b
}

// appendInt appends a non-negative n with at least width digits.
func appendInt(b []byte, n, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for n >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		width--
	}
	i--
	buf[i] = byte('0' + n)
	return append(b, buf[i:]...)
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
