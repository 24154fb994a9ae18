package codec

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// appendText appends the text form of a scalar record value, as the text
// codecs (lines, csv, xml) write it: numbers in their shortest exact form,
// time.Time in RFC 3339 with nanoseconds, decimals with all their digits,
// []byte in base64, nil as nothing, and lists and objects as JSON.
func appendText(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return b, nil
	case string:
		return append(b, x...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		return appendFloat(b, x)
	case time.Time:
		return x.AppendFormat(b, time.RFC3339Nano), nil
	case decimal.Decimal:
		return appendDecimal(b, x), nil
	case []byte:
		return base64.StdEncoding.AppendEncode(b, x), nil
	}
	return appendJSON(b, v, nil)
}

// appendFloat writes f like encoding/json: no exponent for ordinary
// magnitudes, the shortest digits that read back as the same float64.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, fmt.Errorf("%w: float %v has no JSON or text form", ErrUnsupportedValue, f)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64), nil
}

// appendDecimal writes d with every digit it holds, trailing zeros included
// ("12.50" stays "12.50").
func appendDecimal(b []byte, d decimal.Decimal) []byte {
	if e := d.Exponent(); e < 0 {
		return append(b, d.StringFixed(-e)...)
	}
	return append(b, d.String()...)
}

// encodeError marks an error encoding one record as permanent: the record
// will never encode, so a sink dead-letters it rather than retrying.
func encodeError(codec string, err error) error {
	return adapters.PermanentError(fmt.Errorf("%s: %w", codec, err))
}

// sizeField is the spec of a byte-size limit option.
func sizeField(name, desc string, def string) adapters.Field {
	return adapters.Field{Name: name, Type: adapters.TypeSize, Description: desc, Default: def, Example: def}
}
