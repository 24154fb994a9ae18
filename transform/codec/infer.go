package codec

import "github.com/sluicehq/sluice/transform/codec/internal/box"

// inferValue turns text that is exactly a JSON number into a number
// (int64, uint64, float64 or with decimals a decimal.Decimal; numbers with
// leading zeros such as postal codes stay strings) and true/false (lower,
// upper or title case) into a bool. Anything else stays a string. a boxes
// the values (nil: Go's boxing).
func inferValue(s string, decimals bool, a *box.Arena) any {
	if s == "" {
		return s
	}
	switch s {
	case "true", "TRUE", "True":
		return true
	case "false", "FALSE", "False":
		return false
	}
	c := s[0]
	if c != '-' && (c < '0' || c > '9') {
		return a.String(s)
	}
	p := jsonParser{s: s, decimals: decimals, box: a}
	v, err := p.number()
	if err != nil || p.i != len(s) {
		return a.String(s)
	}
	return v
}
