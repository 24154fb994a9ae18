// Package recvalue converts record values (see adapters.Record) to the Go
// types encoders write: decimals, strings and floats.
package recvalue

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Decimal converts a number, or a string holding one, to a decimal.
func Decimal(v any) (decimal.Decimal, error) {
	switch n := v.(type) {
	case decimal.Decimal:
		return n, nil
	case int64:
		return decimal.NewFromInt(n), nil
	case int:
		return decimal.NewFromInt(int64(n)), nil
	case int32:
		return decimal.NewFromInt(int64(n)), nil
	case uint64:
		return decimal.NewFromBigInt(new(big.Int).SetUint64(n), 0), nil
	case float64:
		return decimal.NewFromFloat(n), nil
	case string:
		d, err := decimal.NewFromString(strings.TrimSpace(n))
		if err != nil {
			return d, fmt.Errorf("%q is not a number", n)
		}
		return d, nil
	}
	return decimal.Decimal{}, fmt.Errorf("want a number, got %T", v)
}

// String converts a scalar to text: numbers in decimal, times in RFC 3339.
func String(v any) (string, error) {
	switch s := v.(type) {
	case string:
		return s, nil
	case []byte:
		return string(s), nil
	case int64:
		return strconv.FormatInt(s, 10), nil
	case int, uint64, float64, bool:
		return fmt.Sprint(s), nil
	case decimal.Decimal:
		if s.Exponent() < 0 {
			return s.StringFixed(-s.Exponent()), nil
		}
		return s.String(), nil
	case time.Time:
		return s.Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("want a string, got %T", v)
}

// Float converts a number, or a string holding one, to a float64.
func Float(v any) (float64, error) {
	switch n := v.(type) {
	case float64:
		return n, nil
	case int64:
		return float64(n), nil
	case int:
		return float64(n), nil
	case uint64:
		return float64(n), nil
	case decimal.Decimal:
		return n.InexactFloat64(), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", n)
		}
		return f, nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}
