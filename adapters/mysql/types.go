package mysql

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// Value kinds of a result column. The source reads with the text protocol,
// so every value arrives as text (or bytes) and is converted here.
type colKind uint8

const (
	kString    colKind = iota // CHAR, VARCHAR, TEXT, ENUM, TIME → string
	kInt                      // signed and unsigned integers up to INT, YEAR → int64
	kUint64                   // UNSIGNED BIGINT → int64, or uint64 beyond
	kFloat                    // FLOAT, DOUBLE → float64
	kDecimal                  // DECIMAL → decimal.Decimal
	kDateTime                 // DATETIME → time.Time in time_zone
	kTimestamp                // TIMESTAMP → time.Time in UTC
	kDate                     // DATE → time.Time, midnight in time_zone
	kBytes                    // BINARY, VARBINARY, BLOB, GEOMETRY → []byte
	kBit                      // BIT → int64, or uint64 beyond
	kSet                      // SET → []any of strings
	kJSON                     // JSON (and MariaDB's LONGTEXT CHECK (json_valid)) → decoded
	kNull                     // the NULL type
)

// kindOfColumn maps the driver's type name (sql.ColumnType.DatabaseTypeName)
// to a column kind. json reports whether the column is known to hold JSON
// (MariaDB sends JSON columns as LONGTEXT).
func kindOfColumn(typeName string, json bool) colKind {
	if json {
		return kJSON
	}
	switch typeName {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR",
		"UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT", "UNSIGNED INT":
		return kInt
	case "UNSIGNED BIGINT":
		return kUint64
	case "FLOAT", "DOUBLE":
		return kFloat
	case "DECIMAL":
		return kDecimal
	case "DATETIME":
		return kDateTime
	case "TIMESTAMP":
		return kTimestamp
	case "DATE":
		return kDate
	case "BINARY", "VARBINARY", "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "GEOMETRY", "VECTOR":
		return kBytes
	case "BIT":
		return kBit
	case "SET":
		return kSet
	case "JSON":
		return kJSON
	case "NULL":
		return kNull
	}
	return kString
}

// zeroDates says what the source makes of '0000-00-00' dates.
type zeroDates uint8

const (
	zeroNull   zeroDates = iota // nil
	zeroString                  // the text as the server sent it
)

// decoder converts the text of result columns into record values. It is
// built per result set and used by one goroutine.
type decoder struct {
	names []string
	kinds []colKind
	loc   *time.Location
	zero  zeroDates
}

func newDecoder(cols []*sql.ColumnType, jsonCols map[string]bool, loc *time.Location, zero zeroDates) *decoder {
	d := &decoder{names: make([]string, len(cols)), kinds: make([]colKind, len(cols)), loc: loc, zero: zero}
	for i, c := range cols {
		d.names[i] = c.Name()
		d.kinds[i] = kindOfColumn(c.DatabaseTypeName(), jsonCols[strings.ToLower(c.Name())])
	}
	return d
}

// strings returns the text of every non-NULL, valid UTF-8 string column of
// a row, concatenated in column order, in one allocation: the record's
// strings are slices of it. It returns "" when a string column is not
// valid UTF-8 (value then handles each column).
func (d *decoder) strings(raw []sql.RawBytes) string {
	n := 0
	for i, r := range raw {
		if d.kinds[i] == kString && r != nil {
			if !utf8.Valid(r) {
				return ""
			}
			n += len(r)
		}
	}
	if n == 0 {
		return ""
	}
	b := make([]byte, 0, n)
	for i, r := range raw {
		if d.kinds[i] == kString && r != nil {
			b = append(b, r...)
		}
	}
	return unsafe.String(unsafe.SliceData(b), n)
}

// value converts the text of column i; nil raw means NULL.
func (d *decoder) value(i int, raw []byte) (any, error) {
	if raw == nil {
		return nil, nil
	}
	switch d.kinds[i] {
	case kInt:
		return parseInt(raw)
	case kUint64:
		u, err := parseUint(raw)
		if err != nil {
			return nil, err
		}
		if u <= math.MaxInt64 {
			return int64(u), nil
		}
		return u, nil
	case kFloat:
		return strconv.ParseFloat(string(raw), 64)
	case kDecimal:
		return parseDecimal(raw)
	case kDateTime, kDate:
		return d.time(raw, d.loc)
	case kTimestamp:
		return d.time(raw, time.UTC)
	case kBytes:
		return bytes.Clone(raw), nil
	case kBit:
		return bitValue(raw)
	case kSet:
		if len(raw) == 0 {
			return []any{}, nil
		}
		parts := strings.Split(string(raw), ",")
		out := make([]any, len(parts))
		for j, p := range parts {
			out[j] = p
		}
		return out, nil
	case kJSON:
		return decodeJSON(raw)
	case kNull:
		return nil, nil
	}
	if !utf8.Valid(raw) {
		// A string column in a non-UTF-8 charset sent raw: keep the bytes.
		return bytes.Clone(raw), nil
	}
	return string(raw), nil
}

func (d *decoder) time(raw []byte, loc *time.Location) (any, error) {
	t, zero, err := parseDateTime(raw, loc)
	if zero {
		if d.zero == zeroString {
			return string(raw), nil
		}
		return nil, nil
	}
	return t, err
}

func parseInt(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 20 {
		return strconv.ParseInt(string(b), 10, 64)
	}
	neg := b[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	if i == len(b) {
		return strconv.ParseInt(string(b), 10, 64)
	}
	var n uint64
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 || n > (math.MaxUint64-9)/10 {
			return strconv.ParseInt(string(b), 10, 64)
		}
		n = n*10 + uint64(c)
	}
	if neg {
		if n > 1<<63 {
			return strconv.ParseInt(string(b), 10, 64)
		}
		return -int64(n), nil //nolint:gosec // range checked
	}
	if n > math.MaxInt64 {
		return strconv.ParseInt(string(b), 10, 64)
	}
	return int64(n), nil
}

// parseDecimal parses DECIMAL text exactly, keeping its scale; up to 18
// digits without going through a string.
func parseDecimal(b []byte) (decimal.Decimal, error) {
	if len(b) > 0 && len(b) <= 19 {
		var n int64
		exp, digits, point := int32(0), 0, false
		neg := b[0] == '-'
		i := 0
		if neg {
			i = 1
		}
		ok := i < len(b)
		for ; i < len(b) && ok; i++ {
			switch c := b[i]; {
			case c >= '0' && c <= '9':
				n = n*10 + int64(c-'0')
				digits++
				if point {
					exp--
				}
			case c == '.' && !point:
				point = true
			default:
				ok = false
			}
		}
		if ok && digits > 0 && digits <= 18 {
			if neg {
				n = -n
			}
			return decimal.New(n, exp), nil
		}
	}
	return decimal.NewFromString(string(b))
}

func parseUint(b []byte) (uint64, error) { return strconv.ParseUint(string(b), 10, 64) }

// bitValue converts a BIT(n) value, big-endian bytes, to an integer.
func bitValue(raw []byte) (any, error) {
	if len(raw) > 8 {
		return nil, fmt.Errorf("BIT value of %d bytes", len(raw))
	}
	var u uint64
	for _, c := range raw {
		u = u<<8 | uint64(c)
	}
	if u <= math.MaxInt64 {
		return int64(u), nil
	}
	return u, nil
}

var errBadTime = errors.New("invalid date/time")

// parseDateTime parses "YYYY-MM-DD[ HH:MM:SS[.ffffff]]" in loc. zero
// reports a zero date (0000-00-00, or a zero month or day that MySQL allows
// without NO_ZERO_IN_DATE).
func parseDateTime(b []byte, loc *time.Location) (t time.Time, zero bool, err error) {
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return t, false, fmt.Errorf("%w %q", errBadTime, b)
	}
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(b[0:4]), num(b[5:7]), num(b[8:10])
	if year < 0 || month < 0 || day < 0 {
		return t, false, fmt.Errorf("%w %q", errBadTime, b)
	}
	if month == 0 || day == 0 {
		return t, true, nil
	}
	var hour, min, sec, nsec int
	if len(b) > 10 {
		if len(b) < 19 || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
			return t, false, fmt.Errorf("%w %q", errBadTime, b)
		}
		hour, min, sec = num(b[11:13]), num(b[14:16]), num(b[17:19])
		if hour < 0 || min < 0 || sec < 0 {
			return t, false, fmt.Errorf("%w %q", errBadTime, b)
		}
		if len(b) > 19 {
			frac := b[20:]
			if b[19] != '.' || len(frac) == 0 || len(frac) > 9 {
				return t, false, fmt.Errorf("%w %q", errBadTime, b)
			}
			f := num(frac)
			if f < 0 {
				return t, false, fmt.Errorf("%w %q", errBadTime, b)
			}
			for k := len(frac); k < 9; k++ {
				f *= 10
			}
			nsec = f
		}
	}
	if month > 12 || day > 31 || hour > 23 || min > 59 || sec > 59 {
		return t, false, fmt.Errorf("%w %q", errBadTime, b)
	}
	return time.Date(year, time.Month(month), day, hour, min, sec, nsec, loc), false, nil
}

// decodeJSON decodes a JSON document into record values: objects become
// Records, arrays []any, integers int64 (uint64 or float64 beyond), other
// numbers float64.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: more than one value")
	}
	return normalizeJSON(v), nil
}

func normalizeJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		r := make(adapters.Record, len(x))
		for k, e := range x {
			r[k] = normalizeJSON(e)
		}
		return r
	case []any:
		for i, e := range x {
			x[i] = normalizeJSON(e)
		}
		return x
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n
			}
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return u
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	return v
}
