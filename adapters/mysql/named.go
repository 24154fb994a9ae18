package mysql

import (
	"fmt"
	"strings"
)

// namedSQL is a statement with named parameters (:name) turned into
// placeholders (?).
type namedSQL struct {
	sql   string   // with ? placeholders
	names []string // parameter name of each placeholder, in order
	parts []string // the SQL around the placeholders: len(names)+1 pieces
}

// with returns the SQL with placeholder i replaced by ph(i).
func (q *namedSQL) with(ph func(i int) string) string {
	var b strings.Builder
	b.Grow(len(q.sql) + 16*len(q.names))
	for i, p := range q.parts {
		b.WriteString(p)
		if i < len(q.names) {
			b.WriteString(ph(i))
		}
	}
	return b.String()
}

// parseNamed replaces the named parameters of a SQL statement (:name, where
// name is a letter or underscore followed by letters, digits and
// underscores) with ? placeholders. It leaves alone what is inside quotes
// ('…', "…", `…`) and comments (-- …, # …, /* … */), the assignment :=, and
// the time-like a::b. A statement that already holds a ? placeholder is
// refused: positional and named parameters would be mixed up.
func parseNamed(src string) (namedSQL, error) {
	var b strings.Builder
	b.Grow(len(src))
	var names, parts []string
	last := 0 // start of the current part in b
	n := len(src)
	for i := 0; i < n; {
		c := src[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := skipQuoted(src, i)
			if j < 0 {
				return namedSQL{}, fmt.Errorf("unterminated %c quote starting at byte %d", c, i)
			}
			b.WriteString(src[i:j])
			i = j
		case c == '#' || (c == '-' && i+2 < n && src[i+1] == '-' && (src[i+2] == ' ' || src[i+2] == '\t')) ||
			(c == '-' && i+2 == n && src[i+1] == '-'):
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = n - i
			}
			b.WriteString(src[i : i+j])
			i += j
		case c == '/' && i+1 < n && src[i+1] == '*':
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return namedSQL{}, fmt.Errorf("unterminated /* comment starting at byte %d", i)
			}
			b.WriteString(src[i : i+2+j+2])
			i += 2 + j + 2
		case c == '?':
			return namedSQL{}, fmt.Errorf("positional parameter ? at byte %d: use named parameters (:name)", i)
		case c == ':' && i+1 < n && isNameStart(src[i+1]) && (i == 0 || src[i-1] != ':'):
			j := i + 2
			for j < n && isNamePart(src[j]) {
				j++
			}
			names = append(names, src[i+1:j])
			parts = append(parts, b.String()[last:])
			b.WriteByte('?')
			last = b.Len()
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	out := b.String()
	parts = append(parts, out[last:])
	return namedSQL{sql: out, names: names, parts: parts}, nil
}

// skipQuoted returns the index just past the quoted string starting at i, or
// -1 when it does not end. A doubled quote stands for itself; a backslash
// escapes the next byte in '…' and "…" (the MySQL default).
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return -1
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNamePart(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }
