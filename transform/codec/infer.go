package codec

// inferValue turns text that is exactly a JSON number into a number
// (int64, uint64, float64 or with decimals a decimal.Decimal; numbers with
// leading zeros such as postal codes stay strings) and true/false (lower,
// upper or title case) into a bool. Anything else stays a string.
func inferValue(s string, decimals bool) any {
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
		return s
	}
	p := jsonParser{s: s, decimals: decimals}
	v, err := p.number()
	if err != nil || p.i != len(s) {
		return s
	}
	return v
}
