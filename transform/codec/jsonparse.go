package codec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/transform/codec/internal/box"
)

// jsonParser parses one JSON text held in a string into record values:
// objects become map[string]any, arrays []any, integers int64 (uint64 above
// the int64 range, float64 or decimal beyond that), other numbers float64 or,
// with decimals, decimal.Decimal. Unescaped strings are slices of the input,
// so a record costs one string allocation for its text plus its maps.
//
// It is hand-written because encoding/json into map[string]any costs several
// times more per record (reflection, a scanner pass and a copy per string).
type jsonParser struct {
	s        string
	i        int
	decimals bool
	depth    int
	keys     map[string]string // interned object keys
	scratch  []byte
	box      *box.Arena // boxes strings and numbers; nil: Go's boxing
}

const (
	maxJSONDepth = 1000
	maxKeyCache  = 4096
)

type jsonSyntaxError struct {
	msg string
	off int // byte offset within the text
}

func (e *jsonSyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d of the record: %s", e.off, e.msg)
}

func (p *jsonParser) fail(format string, args ...any) error {
	return &jsonSyntaxError{msg: fmt.Sprintf(format, args...), off: p.i}
}

func (p *jsonParser) reset(s string) {
	p.s, p.i, p.depth = s, 0, 0
}

// parseDocument parses s as exactly one JSON value with optional whitespace
// around it.
func (p *jsonParser) parseDocument(s string) (any, error) {
	p.reset(s)
	p.ws()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i < len(p.s) {
		return nil, p.fail("unexpected %s after the value", p.what())
	}
	return v, nil
}

func (p *jsonParser) what() string {
	if p.i >= len(p.s) {
		return "end of input"
	}
	c := p.s[p.i]
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return strconv.QuoteRune(rune(c))
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value() (any, error) {
	if p.i >= len(p.s) {
		return nil, p.fail("unexpected end of input, want a value")
	}
	switch c := p.s[p.i]; c {
	case '{':
		return p.object()
	case '[':
		return p.array()
	case '"':
		return p.str()
	case 't':
		return p.literal("true", true)
	case 'f':
		return p.literal("false", false)
	case 'n':
		return p.literal("null", nil)
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return p.number()
		}
		return nil, p.fail("unexpected %s, want a value", p.what())
	}
}

func (p *jsonParser) literal(word string, v any) (any, error) {
	if len(p.s)-p.i >= len(word) && p.s[p.i:p.i+len(word)] == word {
		p.i += len(word)
		return v, nil
	}
	return nil, p.fail("unexpected %s, want a value", p.what())
}

func (p *jsonParser) object() (any, error) {
	if p.depth++; p.depth > maxJSONDepth {
		return nil, p.fail("nested deeper than %d levels", maxJSONDepth)
	}
	p.i++ // {
	m := make(map[string]any, 8)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		p.depth--
		return m, nil
	}
	for {
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, p.fail("unexpected %s, want a string key", p.what())
		}
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.fail("unexpected %s, want ':' after a key", p.what())
		}
		p.i++
		p.ws()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.fail("unexpected end of input, want ',' or '}'")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			p.depth--
			return m, nil
		default:
			return nil, p.fail("unexpected %s, want ',' or '}'", p.what())
		}
	}
}

func (p *jsonParser) array() (any, error) {
	if p.depth++; p.depth > maxJSONDepth {
		return nil, p.fail("nested deeper than %d levels", maxJSONDepth)
	}
	p.i++ // [
	a := make([]any, 0, 4)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.depth--
		return a, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.fail("unexpected end of input, want ',' or ']'")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			p.ws()
		case ']':
			p.i++
			p.depth--
			return a, nil
		default:
			return nil, p.fail("unexpected %s, want ',' or ']'", p.what())
		}
	}
}

// key parses an object key, interning plain keys so that records of the
// same shape share their key strings.
func (p *jsonParser) key() (string, error) {
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		c := p.s[j]
		if c == '"' {
			raw := p.s[start:j]
			p.i = j + 1
			if k, ok := p.keys[raw]; ok {
				return k, nil
			}
			if p.keys == nil {
				p.keys = make(map[string]string, 16)
			}
			if len(p.keys) >= maxKeyCache {
				return raw, nil
			}
			k := strings.Clone(raw) // do not pin the whole record text
			p.keys[k] = k
			return k, nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
	}
	v, err := p.str()
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// str parses a string starting at its opening quote.
func (p *jsonParser) str() (any, error) {
	start := p.i + 1
	j := start
	for j < len(p.s) {
		c := p.s[j]
		if c == '"' {
			p.i = j + 1
			return p.box.String(p.s[start:j]), nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
		j++
	}
	// Slow path: escapes, control characters or non-ASCII text.
	b := append(p.scratch[:0], p.s[start:j]...)
	for {
		if j >= len(p.s) {
			p.i = j
			return nil, p.fail("unterminated string")
		}
		c := p.s[j]
		switch {
		case c == '"':
			p.i = j + 1
			p.scratch = b
			return p.box.String(string(b)), nil
		case c == '\\':
			if j+1 >= len(p.s) {
				p.i = j
				return nil, p.fail("unterminated string")
			}
			e := p.s[j+1]
			j += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(p.s, j)
				if !ok {
					p.i = j
					return nil, p.fail("invalid \\u escape")
				}
				j += 4
				if utf16.IsSurrogate(r) {
					if r2, ok := hex4(p.s, j+2); ok && j+1 < len(p.s) && p.s[j] == '\\' && p.s[j+1] == 'u' {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
							j += 6
						} else {
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				p.i = j - 1
				return nil, p.fail("invalid escape '\\%c'", e)
			}
		case c < 0x20:
			p.i = j
			return nil, p.fail("control character 0x%02x in string", c)
		case c < 0x80:
			b = append(b, c)
			j++
		default:
			r, n := utf8.DecodeRuneInString(p.s[j:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, p.s[j:j+n]...)
			}
			j += n
		}
	}
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

var errNumber = errors.New("invalid number")

// number parses a JSON number, checking its grammar.
func (p *jsonParser) number() (any, error) {
	start := p.i
	j := p.i
	if p.s[j] == '-' {
		j++
	}
	digits := j
	for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
		j++
	}
	if j == digits || (p.s[digits] == '0' && j-digits > 1) {
		p.i = start
		return nil, p.fail("invalid number")
	}
	integer := true
	if j < len(p.s) && p.s[j] == '.' {
		integer = false
		j++
		d := j
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == d {
			p.i = start
			return nil, p.fail("invalid number")
		}
	}
	if j < len(p.s) && (p.s[j] == 'e' || p.s[j] == 'E') {
		integer = false
		j++
		if j < len(p.s) && (p.s[j] == '+' || p.s[j] == '-') {
			j++
		}
		d := j
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == d {
			p.i = start
			return nil, p.fail("invalid number")
		}
	}
	p.i = j
	return parseNumber(p.s[start:j], integer, p.decimals, p.box)
}

// parseNumber converts number text of valid JSON grammar; a boxes int64 and
// float64 values (nil: Go's boxing).
func parseNumber(s string, integer, decimals bool, a *box.Arena) (any, error) {
	if integer {
		if len(s) < 19 {
			// Fast path: cannot overflow int64.
			var n int64
			neg := s[0] == '-'
			t := s
			if neg {
				t = s[1:]
			}
			for i := 0; i < len(t); i++ {
				n = n*10 + int64(t[i]-'0')
			}
			if neg {
				n = -n
			}
			return a.Int64(n), nil
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return a.Int64(n), nil
		}
		if s[0] != '-' {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				return n, nil
			}
		}
	}
	if decimals {
		d, err := decimal.NewFromString(s)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", errNumber, s, err)
		}
		if d.Exponent() == 0 && d.Coefficient().IsInt64() {
			// 5e0 is the integer 5, and is written back as 5.
			return d.Coefficient().Int64(), nil
		}
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// Out of range: keep what ParseFloat gives (±Inf) out of records.
		return nil, fmt.Errorf("%w %q: out of the float64 range", errNumber, s)
	}
	return a.Float64(f), nil
}
