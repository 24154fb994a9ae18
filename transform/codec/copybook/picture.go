package copybook

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

type picClass int

const (
	picAlnum   picClass = iota // X, A, and alphanumeric-edited (B, 0, /)
	picNumeric                 // S, 9, V, P
	picEdited                  // numeric-edited: Z, *, +, -, $, CR, DB, ., ,, B, 0, /
)

// picture is a parsed PICTURE string.
type picture struct {
	class  picClass
	size   int  // bytes in USAGE DISPLAY (a separate sign adds one)
	digits int  // digit positions
	scale  int  // digits right of the decimal point; negative for trailing P
	signed bool // S, or a sign symbol in an edited picture
	edit   []editPos
}

// editPos is one character position of a numeric-edited picture.
type editPos struct {
	kind byte // see the edit* constants
	ch   byte // the symbol or inserted character
}

const (
	editDigit      = '9' // always a digit
	editZero       = 'Z' // digit, leading zero shown as space
	editStar       = '*' // digit, leading zero shown as *
	editFloatFirst = 'F' // first symbol of a floating +, - or $ string: never a digit
	editFloat      = 'f' // further symbols of a floating string: digit positions
	editInsert     = 'i' // B (space), 0, /, comma, period
	editSign       = 's' // a single + or -
	editCurrency   = 'c' // a single $
	editCredit     = 'C' // first of CR or DB (ch is C or D)
	editCredit2    = 'R' // second of CR or DB
)

// maxPicture bounds the expanded length of a picture.
const maxPicture = 1 << 16

// maxDigits bounds numeric pictures; COBOL allows 18, or 31 with ARITH(EXTEND).
const maxDigits = 38

// expandPicture expands repetition counts: 9(5)V99 becomes 99999V99.
func expandPicture(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c == '(' || c == ')' {
			return "", fmt.Errorf("misplaced %q", c)
		}
		n := 1
		if i+1 < len(s) && s[i+1] == '(' {
			end := strings.IndexByte(s[i+1:], ')')
			if end < 0 {
				return "", errors.New("repetition count without ')'")
			}
			var err error
			n, err = strconv.Atoi(s[i+2 : i+1+end])
			if err != nil || n < 1 {
				return "", fmt.Errorf("invalid repetition count (%s)", s[i+2:i+1+end])
			}
			i += 1 + end
		}
		if b.Len()+n > maxPicture {
			return "", fmt.Errorf("picture longer than %d characters", maxPicture)
		}
		for j := 0; j < n; j++ {
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func parsePicture(s string) (*picture, error) {
	e, err := expandPicture(s)
	if err != nil {
		return nil, err
	}
	if e == "" {
		return nil, errors.New("empty picture")
	}
	switch {
	case strings.ContainsAny(e, "NGU"):
		return nil, errors.New("national and DBCS pictures (N, G, U) are not supported")
	case strings.ContainsRune(e, 'E'):
		return nil, errors.New("floating-point edited pictures (E) are not supported")
	case strings.ContainsAny(e, "XA"):
		if strings.Trim(e, "XA9B0/") != "" {
			return nil, fmt.Errorf("%q mixes alphanumeric and numeric editing symbols", s)
		}
		return &picture{class: picAlnum, size: len(e)}, nil
	case strings.Trim(e, "S9VP") == "":
		return numericPicture(e)
	}
	return editedPicture(e)
}

func numericPicture(e string) (*picture, error) {
	p := &picture{class: picNumeric}
	if strings.Count(e, "S") > 1 || strings.Contains(e[1:], "S") {
		return nil, errors.New("the S must come first, once")
	}
	if e[0] == 'S' {
		p.signed = true
		e = e[1:]
	}
	if strings.Count(e, "V") > 1 {
		return nil, errors.New("more than one V")
	}
	body := strings.ReplaceAll(e, "V", "")
	p.digits = strings.Count(body, "9")
	if p.digits == 0 {
		return nil, errors.New("a numeric picture needs at least one 9")
	}
	if p.digits > maxDigits {
		return nil, fmt.Errorf("%d digits is more than %d", p.digits, maxDigits)
	}
	lead := len(body) - len(strings.TrimLeft(body, "P"))
	trail := len(body) - len(strings.TrimRight(body, "P"))
	if strings.Count(body, "P") != lead+trail || lead > 0 && trail > 0 {
		return nil, errors.New("the Ps must be at one end of the digits")
	}
	v := strings.IndexByte(e, 'V')
	switch {
	case lead > 0: // PPP999: the point is left of the Ps
		if v > 0 {
			return nil, errors.New("the V must precede leading Ps")
		}
		p.scale = lead + p.digits
	case trail > 0: // 999PPP: the value is scaled up
		if v >= 0 && v != len(e)-1 {
			return nil, errors.New("the V must follow trailing Ps")
		}
		p.scale = -trail
	case v >= 0:
		p.scale = strings.Count(e[v+1:], "9")
	}
	p.size = p.digits
	return p, nil
}

func editedPicture(e string) (*picture, error) {
	p := &picture{class: picEdited}
	if strings.Trim(e, "9ZB0/,.+-*$CRDV") != "" {
		return nil, fmt.Errorf("invalid character %q", e[strings.IndexFunc(e, func(r rune) bool { return !strings.ContainsRune("9ZB0/,.+-*$CRDV", r) })])
	}
	if strings.Count(e, ".")+strings.Count(e, "V") > 1 {
		return nil, errors.New("more than one decimal point")
	}
	floating := map[byte]bool{}
	for _, c := range []byte("+-$") {
		floating[c] = strings.Count(e, string(c)) > 1
	}
	seen := map[byte]bool{}
	point := false
	for i := 0; i < len(e); i++ {
		c := e[i]
		pos := editPos{ch: c}
		switch c {
		case '9':
			pos.kind = editDigit
		case 'Z':
			pos.kind = editZero
		case '*':
			pos.kind = editStar
		case 'B', '0', '/', ',', '.':
			pos.kind = editInsert
			if c == 'B' {
				pos.ch = ' '
			}
			if c == '.' {
				point = true
			}
		case 'V':
			point = true
			continue
		case '+', '-', '$':
			switch {
			case floating[c] && !seen[c]:
				pos.kind = editFloatFirst
			case floating[c]:
				pos.kind = editFloat
			case c == '$':
				pos.kind = editCurrency
			default:
				pos.kind = editSign
			}
			seen[c] = true
			if c != '$' {
				p.signed = true
			}
		case 'C', 'D':
			want := byte('R')
			if c == 'D' {
				want = 'B'
			}
			if i+2 != len(e) || e[i+1] != want {
				return nil, errors.New("the CR or DB must end the picture")
			}
			p.edit = append(p.edit, editPos{kind: editCredit, ch: c}, editPos{kind: editCredit2, ch: want})
			p.signed = true
			i++
			continue
		case 'R':
			return nil, errors.New("an R outside CR")
		}
		switch pos.kind {
		case editDigit, editZero, editStar, editFloat:
			p.digits++
			if point {
				p.scale++
			}
		}
		p.edit = append(p.edit, pos)
	}
	if p.digits == 0 {
		return nil, errors.New("an edited picture needs digit positions")
	}
	if p.digits > maxDigits {
		return nil, fmt.Errorf("%d digits is more than %d", p.digits, maxDigits)
	}
	p.size = len(p.edit)
	return p, nil
}
