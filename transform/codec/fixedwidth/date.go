package fixedwidth

import (
	"fmt"
	"strings"
	"time"
)

// cobolTokens maps COBOL-style date picture parts to Go layout elements,
// longest first.
var cobolTokens = []struct{ cobol, layout string }{
	{"CCYY", "2006"}, {"YYYY", "2006"}, {"DDD", "002"}, {"YY", "06"},
	{"MM", "01"}, {"DD", "02"}, {"HH", "15"}, {"MI", "04"}, {"SS", "05"},
}

// dateLayout returns the Go layout of a date format: a COBOL-style picture
// (YYYYMMDD, DD.MM.YYYY, YYDDD, CCYY-MM-DD HH:MI:SS) or a Go layout as is.
func dateLayout(format string) (string, error) {
	if format == "" {
		return "", fmt.Errorf("date format is empty")
	}
	if !strings.Contains(format, "YY") && !strings.Contains(format, "DD") {
		if _, err := time.Parse(format, time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC).Format(format)); err != nil {
			return "", fmt.Errorf("date format %q is neither a COBOL-style picture (YYYYMMDD) nor a Go layout (2006-01-02): %v", format, err)
		}
		return format, nil
	}
	var b strings.Builder
	for i := 0; i < len(format); {
		matched := false
		for _, t := range cobolTokens {
			if strings.HasPrefix(format[i:], t.cobol) {
				b.WriteString(t.layout)
				i += len(t.cobol)
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		c := format[i]
		if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			return "", fmt.Errorf("date format %q: unexpected %q at position %d (use YYYY, CCYY, YY, MM, DD, DDD, HH, MI, SS and punctuation)", format, c, i+1)
		}
		b.WriteByte(c)
		i++
	}
	return b.String(), nil
}

// numericDate parses layouts made only of numeric elements and punctuation
// (20060102, 02.01.2006, 06002, 2006-01-02 15:04:05) straight from the
// field's bytes, without building a string; time.Parse handles the rest.
type numericDate struct {
	parts []datePart
	size  int
}

type datePart struct {
	elem  byte // 'Y' year, 'y' two-digit year, 'M', 'D', 'j' day of year, 'h', 'm', 's', 0 literal
	width int
	lit   byte // literal character (ASCII)
}

var numericElems = []struct {
	layout string
	elem   byte
}{{"2006", 'Y'}, {"002", 'j'}, {"06", 'y'}, {"01", 'M'}, {"02", 'D'}, {"15", 'h'}, {"04", 'm'}, {"05", 's'}}

// compileNumericDate returns nil when layout needs time.Parse.
func compileNumericDate(layout string) *numericDate {
	nd := &numericDate{}
	for i := 0; i < len(layout); {
		matched := false
		for _, e := range numericElems {
			if strings.HasPrefix(layout[i:], e.layout) {
				nd.parts = append(nd.parts, datePart{elem: e.elem, width: len(e.layout)})
				i += len(e.layout)
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		c := layout[i]
		if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= 0x80 {
			return nil
		}
		nd.parts = append(nd.parts, datePart{width: 1, lit: c})
		i++
	}
	for _, p := range nd.parts {
		nd.size += p.width
	}
	return nd
}

// parse reads raw, trimmed, in the charset. It reports false when raw does
// not match.
func (nd *numericDate) parse(cs *charset, raw []byte) (time.Time, bool) {
	if len(raw) != nd.size {
		return time.Time{}, false
	}
	year, month, day, yday, hour, minute, sec := 0, 1, 1, 0, 0, 0, 0
	pos := 0
	for _, p := range nd.parts {
		if p.elem == 0 {
			if cs.table == nil && raw[pos] != p.lit || cs.table != nil && cs.table.Rune(raw[pos]) != rune(p.lit) {
				return time.Time{}, false
			}
			pos++
			continue
		}
		v := 0
		for _, c := range raw[pos : pos+p.width] {
			d := cs.digit[c]
			if d < 0 {
				return time.Time{}, false
			}
			v = v*10 + int(d)
		}
		pos += p.width
		switch p.elem {
		case 'Y':
			year = v
		case 'y':
			year = 1900 + v
			if v < 69 {
				year = 2000 + v
			}
		case 'M':
			month = v
		case 'D':
			day = v
		case 'j':
			yday = v
		case 'h':
			hour = v
		case 'm':
			minute = v
		case 's':
			sec = v
		}
	}
	if month < 1 || month > 12 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	if yday > 0 {
		t := time.Date(year, 1, yday, hour, minute, sec, 0, time.UTC)
		return t, t.Year() == year
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	return t, day >= 1 && t.Day() == day
}
