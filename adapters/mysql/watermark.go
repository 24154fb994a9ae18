package mysql

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wmValue is the value of one tracking column, kept as the server's text so
// that the next query compares with exactly what was read. Kind decides how
// it is bound: 'i' signed integer, 'u' unsigned integer, 'f' float, 'd'
// decimal (bound as CAST(? AS DECIMAL(65,30)) so that it is compared
// exactly, not as a double), 's' string or temporal text, 'b' bytes.
type wmValue struct {
	Kind byte   `json:"k"`
	Text string `json:"v"`
}

// MarshalJSON stores bytes in base64: JSON strings hold only UTF-8.
func (v wmValue) MarshalJSON() ([]byte, error) {
	text := v.Text
	if v.Kind == 'b' {
		text = base64.StdEncoding.EncodeToString([]byte(text))
	}
	return json.Marshal(struct {
		K string `json:"k"`
		V string `json:"v"`
	}{string(v.Kind), text})
}

func (v *wmValue) UnmarshalJSON(b []byte) error {
	var w struct {
		K string `json:"k"`
		V string `json:"v"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if len(w.K) != 1 || !strings.Contains("iufdsb", w.K) {
		return fmt.Errorf("unknown watermark value kind %q", w.K)
	}
	v.Kind, v.Text = w.K[0], w.V
	if v.Kind == 'b' {
		b, err := base64.StdEncoding.DecodeString(w.V)
		if err != nil {
			return fmt.Errorf("watermark bytes: %w", err)
		}
		v.Text = string(b)
	}
	return nil
}

// watermark holds one value per tracking column; nil means "before every
// row".
type watermark []wmValue

// texts returns the values' text, for message IDs and logs.
func (w watermark) texts() []string {
	out := make([]string, len(w))
	for i, v := range w {
		out[i] = v.Text
	}
	return out
}

// wmKind is the watermark kind of a result column.
func wmKind(k colKind) byte {
	switch k {
	case kInt:
		return 'i'
	case kUint64:
		return 'u'
	case kFloat:
		return 'f'
	case kDecimal:
		return 'd'
	case kBytes, kBit:
		return 'b'
	}
	return 's'
}

// placeholder returns the SQL for a bound watermark value.
func (v wmValue) placeholder() string {
	if v.Kind == 'd' {
		return "CAST(? AS DECIMAL(65,30))"
	}
	return "?"
}

// arg returns the value to bind.
func (v wmValue) arg() (any, error) {
	switch v.Kind {
	case 'i':
		return strconv.ParseInt(v.Text, 10, 64)
	case 'u':
		return strconv.ParseUint(v.Text, 10, 64)
	case 'f':
		return strconv.ParseFloat(v.Text, 64)
	case 'b':
		return []byte(v.Text), nil
	}
	return v.Text, nil
}

// stateKey is where the source keeps its watermark in its State.
const stateKey = "watermark"

// storedWatermark is the State's JSON form of a watermark.
type storedWatermark struct {
	Columns []string  `json:"columns"`
	Values  watermark `json:"values"`
}

func encodeWatermark(cols []string, w watermark) ([]byte, error) {
	return json.Marshal(storedWatermark{Columns: cols, Values: w})
}

func decodeWatermark(b []byte, cols []string) (watermark, error) {
	var s storedWatermark
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("stored watermark is corrupt: %w", err)
	}
	if !sameColumns(s.Columns, cols) || len(s.Values) != len(cols) {
		return nil, fmt.Errorf("the stored watermark tracks (%s) but tracking_columns is (%s): delete the source's state or give the source a new name to start over",
			strings.Join(s.Columns, ", "), strings.Join(cols, ", "))
	}
	return s.Values, nil
}

func sameColumns(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// initialValue converts a value of the `initial` mapping to a watermark
// value.
func initialValue(v any, loc *time.Location) (wmValue, error) {
	switch x := v.(type) {
	case int:
		return wmValue{'i', strconv.Itoa(x)}, nil
	case int64:
		return wmValue{'i', strconv.FormatInt(x, 10)}, nil
	case uint64:
		return wmValue{'u', strconv.FormatUint(x, 10)}, nil
	case float64:
		return wmValue{'f', strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case string:
		return wmValue{'s', x}, nil
	case time.Time:
		return wmValue{'s', formatDateTime(x.In(loc))}, nil
	}
	return wmValue{}, fmt.Errorf("want a number, a string or a time, got %T", v)
}

// keyset appends the condition "row after w" (op ">") or "row up to w" (op
// "<=") over cols, in the expanded form
//
//	c1 > ? OR (c1 = ? AND c2 > ?) OR (c1 = ? AND c2 = ? AND c3 > ?)
//
// which MariaDB 10.11 turns into a range scan of an index on (c1, c2, c3).
// The row-constructor form (c1, c2) > (?, ?) is not sargable there: EXPLAIN
// shows a full scan with filesort.
func keyset(b *strings.Builder, args []any, cols []string, w watermark, after bool) ([]any, error) {
	strict, last := " > ", " > "
	if !after {
		strict, last = " < ", " <= "
	}
	b.WriteByte('(')
	for i := range cols {
		if i > 0 {
			b.WriteString(" OR ")
		}
		if i > 0 {
			b.WriteByte('(')
		}
		for j := 0; j < i; j++ {
			b.WriteString(quoteIdent(cols[j]))
			b.WriteString(" = ")
			b.WriteString(w[j].placeholder())
			b.WriteString(" AND ")
			a, err := w[j].arg()
			if err != nil {
				return nil, err
			}
			args = append(args, a)
		}
		b.WriteString(quoteIdent(cols[i]))
		if i == len(cols)-1 {
			b.WriteString(last)
		} else {
			b.WriteString(strict)
		}
		b.WriteString(w[i].placeholder())
		a, err := w[i].arg()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		if i > 0 {
			b.WriteByte(')')
		}
	}
	b.WriteByte(')')
	return args, nil
}

// formatDateTime formats t as MySQL DATETIME text with microseconds when
// there are any.
func formatDateTime(t time.Time) string {
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.999999")
}
