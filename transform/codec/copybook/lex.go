package copybook

import (
	"fmt"
	"strings"
)

// SyntaxError is a copybook that cannot be parsed: the file, the 1-based
// line and what is wrong.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("copybook %s:%d: %s", e.File, e.Line, e.Msg)
}

// sourceFormat is the reference format of a copybook.
type sourceFormat int

const (
	formatAuto sourceFormat = iota
	formatFixed
	formatFree
)

type tokKind int

const (
	tokWord    tokKind = iota // a COBOL word, number or picture string
	tokLiteral                // a quoted literal (with its prefix, X'..')
	tokPeriod                 // a separator period
)

type token struct {
	kind tokKind
	text string
	line int
}

// segment is the code of one source line, or of several joined by
// continuation lines.
type segment struct {
	text string
	line int
}

// splitLines returns the code segments of src: comments removed, the
// sequence and identification areas of fixed format cut off, continuation
// lines joined to the line before.
func splitLines(src []byte, format sourceFormat) []segment {
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	if format == formatAuto {
		format = detectFormat(lines)
	}
	var segs []segment
	for i, l := range lines {
		l = strings.ReplaceAll(l, "\t", " ")
		n := i + 1
		if format == formatFree {
			if c := strings.Index(l, "*>"); c >= 0 && !insideLiteral(l[:c]) {
				l = l[:c]
			}
			t := strings.TrimSpace(l)
			if strings.HasPrefix(t, "*") || strings.HasPrefix(t, "/") {
				continue
			}
			segs = append(segs, segment{text: l, line: n})
			continue
		}
		if len(l) < 7 {
			continue
		}
		code := l[7:]
		if len(l) > 72 {
			code = l[7:72]
		}
		if c := strings.Index(code, "*>"); c >= 0 && !insideLiteral(code[:c]) {
			code = code[:c]
		}
		switch l[6] {
		case '*', '/', 'D', 'd':
			continue // comment, page eject, debugging line
		case '-':
			if len(segs) > 0 {
				prev := &segs[len(segs)-1]
				cont := strings.TrimLeft(code, " ")
				if insideLiteral(prev.text) && len(cont) > 0 && (cont[0] == '"' || cont[0] == '\'') {
					// A continued literal runs to column 72 and resumes after
					// the quote that opens the continuation.
					prev.text = padTo(prev.text, 65) + cont[1:]
				} else {
					prev.text = strings.TrimRight(prev.text, " ") + cont
				}
				continue
			}
		}
		segs = append(segs, segment{text: code, line: n})
	}
	return segs
}

func padTo(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

// insideLiteral reports whether s ends inside an open quoted literal.
func insideLiteral(s string) bool {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q == 0 && (c == '"' || c == '\''):
			q = c
		case q != 0 && c == q:
			q = 0 // a doubled quote closes and reopens: same result
		}
	}
	return q != 0
}

// detectFormat guesses fixed format when every line with code fits it:
// columns 1–6 are digits or spaces and column 7 is an indicator or a space.
func detectFormat(lines []string) sourceFormat {
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if len(l) < 7 {
			if strings.Trim(l, "0123456789 ") != "" {
				return formatFree
			}
			continue
		}
		if strings.Trim(l[:6], "0123456789 ") != "" || !strings.ContainsRune(" *-/Dd", rune(l[6])) {
			return formatFree
		}
	}
	return formatFixed
}

// tokenize splits segments into words, literals and separator periods.
// Commas and semicolons followed by a space are separators and dropped.
func tokenize(file string, segs []segment) ([]token, error) {
	var toks []token
	for _, s := range segs {
		t := s.text
		for i := 0; i < len(t); {
			c := t[i]
			if c == ' ' || c == ',' && (i+1 == len(t) || t[i+1] == ' ') || c == ';' && (i+1 == len(t) || t[i+1] == ' ') {
				i++
				continue
			}
			if c == '.' && (i+1 == len(t) || t[i+1] == ' ') {
				toks = append(toks, token{kind: tokPeriod, text: ".", line: s.line})
				i++
				continue
			}
			// A word or literal runs to a space outside quotes.
			start, kind := i, tokWord
			for i < len(t) && t[i] != ' ' {
				if q := t[i]; q == '"' || q == '\'' {
					kind = tokLiteral
					end := closingQuote(t, i)
					if end < 0 {
						return nil, &SyntaxError{File: file, Line: s.line, Msg: fmt.Sprintf("literal %s is not closed", clip(t[i:]))}
					}
					i = end + 1
					continue
				}
				i++
			}
			word := t[start:i]
			// A period, comma or semicolon ending the word is a separator.
			var period bool
			for len(word) > 1 && strings.ContainsRune(".,;", rune(word[len(word)-1])) {
				period = period || word[len(word)-1] == '.'
				word = word[:len(word)-1]
			}
			toks = append(toks, token{kind: kind, text: word, line: s.line})
			if period {
				toks = append(toks, token{kind: tokPeriod, text: ".", line: s.line})
			}
		}
	}
	return toks, nil
}

// closingQuote returns the index of the quote closing the literal opening at
// t[i], skipping doubled quotes, or -1.
func closingQuote(t string, i int) int {
	q := t[i]
	for j := i + 1; j < len(t); j++ {
		if t[j] == q {
			if j+1 < len(t) && t[j+1] == q {
				j++
				continue
			}
			return j
		}
	}
	return -1
}

func clip(s string) string {
	if len(s) > 20 {
		s = s[:20] + "..."
	}
	return s
}
