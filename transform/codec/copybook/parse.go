package copybook

import (
	"fmt"
	"strconv"
	"strings"
)

// usage is how a numeric item is stored.
type usage int

const (
	usageDisplay usage = iota
	usageBinary        // COMP, COMP-4, BINARY: big-endian, size by digits, value within the picture
	usageComp5         // COMP-5: native binary, full range
	usagePacked        // COMP-3, PACKED-DECIMAL
	usageFloat4        // COMP-1
	usageFloat8        // COMP-2
)

var usageNames = map[string]usage{
	"DISPLAY": usageDisplay,
	"COMP":    usageBinary, "COMPUTATIONAL": usageBinary, "COMP-4": usageBinary, "COMPUTATIONAL-4": usageBinary, "BINARY": usageBinary,
	"COMP-5": usageComp5, "COMPUTATIONAL-5": usageComp5,
	"COMP-3": usagePacked, "COMPUTATIONAL-3": usagePacked, "PACKED-DECIMAL": usagePacked,
	"COMP-1": usageFloat4, "COMPUTATIONAL-1": usageFloat4,
	"COMP-2": usageFloat8, "COMPUTATIONAL-2": usageFloat8,
}

// Usages that exist in COBOL but cannot describe file data portably.
var unsupportedUsages = map[string]bool{
	"INDEX": true, "POINTER": true, "POINTER-32": true, "FUNCTION-POINTER": true, "PROCEDURE-POINTER": true,
	"NATIONAL": true, "DISPLAY-1": true, "OBJECT": true, "COMP-X": true, "COMPUTATIONAL-X": true,
	"COMP-6": true, "COMPUTATIONAL-6": true, "COMP-N": true, "UTF-8": true,
}

// item is one data description entry.
type item struct {
	level    int
	name     string // as written; "" for FILLER and unnamed items
	line     int
	pic      *picture
	picText  string
	usage    usage
	usageSet bool
	// SIGN clause; inherited from the group when not set.
	signSet, signLeading, signSeparate bool
	sync, justRight                    bool
	redefines                          string
	occurs                             bool
	occMin, occMax                     int
	depends                            []string // DEPENDING ON name [OF qualifier]...
	renames                            [2]string
	children                           []*item
	parent                             *item
}

func (it *item) filler() bool { return it.name == "" }

func (it *item) describe() string {
	if it.level == 0 {
		return fmt.Sprintf("the items before the first 01 level (line %d)", it.line)
	}
	if it.filler() {
		return fmt.Sprintf("FILLER at line %d", it.line)
	}
	return it.name
}

// parser reads data description entries from tokens.
type parser struct {
	file string
	toks []token
	pos  int
}

// parseCopybook returns the level-01/77 records of a copybook (an implicit
// root holds a copybook that starts below level 01).
func parseCopybook(file string, src []byte, format sourceFormat) ([]*item, error) {
	toks, err := tokenize(file, splitLines(src, format))
	if err != nil {
		return nil, err
	}
	p := &parser{file: file, toks: toks}
	var entries []*item
	for p.pos < len(p.toks) {
		it, err := p.entry()
		if err != nil {
			return nil, err
		}
		entries = append(entries, it)
	}
	if len(entries) == 0 {
		return nil, &SyntaxError{File: file, Line: 1, Msg: "no data description entries"}
	}
	return p.tree(entries)
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &SyntaxError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

// next returns the next token, or an error at the line of the last one.
func (p *parser) next(what string) (token, error) {
	if p.pos < len(p.toks) {
		p.pos++
		return p.toks[p.pos-1], nil
	}
	line := 1
	if len(p.toks) > 0 {
		line = p.toks[len(p.toks)-1].line
	}
	return token{}, p.errorf(line, "unexpected end of copybook: want %s", what)
}

// word reports whether the next token is the keyword kw (any case) and
// consumes it.
func (p *parser) word(kws ...string) bool {
	t, ok := p.peek()
	if !ok || t.kind != tokWord {
		return false
	}
	for _, kw := range kws {
		if strings.EqualFold(t.text, kw) {
			p.pos++
			return true
		}
	}
	return false
}

func isLevel(t token) (int, bool) {
	if t.kind != tokWord || len(t.text) > 2 {
		return 0, false
	}
	n, err := strconv.Atoi(t.text)
	if err != nil {
		return 0, false
	}
	return n, true
}

// clauseWords start a clause; a word after the level number that is one of
// them means the entry has no name.
var clauseWords = map[string]bool{
	"PIC": true, "PICTURE": true, "USAGE": true, "REDEFINES": true, "OCCURS": true, "SIGN": true,
	"LEADING": true, "TRAILING": true, "SYNC": true, "SYNCHRONIZED": true, "JUST": true, "JUSTIFIED": true,
	"VALUE": true, "VALUES": true, "BLANK": true, "GLOBAL": true, "EXTERNAL": true, "RENAMES": true,
	"IS": true,
}

func isClauseWord(s string) bool {
	u := strings.ToUpper(s)
	_, usage := usageNames[u]
	return clauseWords[u] || usage || unsupportedUsages[u]
}

// entry parses one entry up to its period.
func (p *parser) entry() (*item, error) {
	t, _ := p.next("a level number")
	lvl, ok := isLevel(t)
	if !ok {
		if t.kind == tokWord && isStatement(t.text) {
			return nil, p.errorf(t.line, "%s statements are not supported in a copybook: expand it first", strings.ToUpper(t.text))
		}
		return nil, p.errorf(t.line, "want a level number, got %q", clip(t.text))
	}
	if !(lvl >= 1 && lvl <= 49 || lvl == 66 || lvl == 77 || lvl == 88) {
		return nil, p.errorf(t.line, "invalid level number %s (want 01-49, 66, 77 or 88)", t.text)
	}
	it := &item{level: lvl, line: t.line}
	if n, ok := p.peek(); ok && n.kind == tokWord && !isClauseWord(n.text) {
		p.pos++
		if _, isNum := isLevel(n); isNum || !validName(n.text) {
			return nil, p.errorf(n.line, "invalid data name %q", clip(n.text))
		}
		if !strings.EqualFold(n.text, "FILLER") {
			it.name = n.text
		}
	}
	if lvl == 88 {
		return it, p.skipToPeriod() // condition names: values only, no storage
	}
	for {
		t, err := p.next("a clause or a period")
		if err != nil {
			return nil, err
		}
		if t.kind == tokPeriod {
			return it, nil
		}
		if t.kind != tokWord {
			return nil, p.errorf(t.line, "unexpected literal %s", clip(t.text))
		}
		if err := p.clause(it, t); err != nil {
			return nil, err
		}
	}
}

func isStatement(s string) bool {
	switch strings.ToUpper(s) {
	case "COPY", "REPLACE", "EXEC", "FD", "SD", "SELECT", "PROCEDURE", "WORKING-STORAGE", "LINKAGE", "FILE", "DATA":
		return true
	}
	return false
}

func validName(s string) bool {
	if s == "" || len(s) > 30 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
			letter = true
		case c >= '0' && c <= '9', c == '-':
		default:
			return false
		}
	}
	return letter
}

func (p *parser) skipToPeriod() error {
	for {
		t, err := p.next("a period")
		if err != nil {
			return err
		}
		if t.kind == tokPeriod {
			return nil
		}
	}
}

// clause parses the clause starting with keyword t.
func (p *parser) clause(it *item, t token) error {
	kw := strings.ToUpper(t.text)
	switch kw {
	case "PIC", "PICTURE":
		p.word("IS")
		s, err := p.next("a picture string")
		if err != nil {
			return err
		}
		if it.pic != nil {
			return p.errorf(t.line, "%s has two PICTURE clauses", it.describe())
		}
		pic, err := parsePicture(s.text)
		if err != nil {
			return p.errorf(s.line, "PIC %s: %v", clip(s.text), err)
		}
		it.pic, it.picText = pic, s.text
	case "USAGE":
		p.word("IS")
		u, err := p.next("a usage")
		if err != nil {
			return err
		}
		return p.usage(it, u)
	case "REDEFINES":
		n, err := p.next("a data name")
		if err != nil {
			return err
		}
		if n.kind != tokWord || !validName(n.text) {
			return p.errorf(n.line, "REDEFINES needs a data name, got %q", clip(n.text))
		}
		it.redefines = n.text
	case "OCCURS":
		return p.occurs(it, t)
	case "SIGN", "LEADING", "TRAILING":
		if kw == "SIGN" {
			p.word("IS")
			if !p.word("LEADING", "TRAILING") {
				return p.errorf(t.line, "SIGN needs LEADING or TRAILING")
			}
			kw = strings.ToUpper(p.toks[p.pos-1].text)
		}
		it.signSet, it.signLeading = true, kw == "LEADING"
		if p.word("SEPARATE") {
			it.signSeparate = true
			p.word("CHARACTER")
		}
	case "SYNC", "SYNCHRONIZED":
		it.sync = true
		p.word("LEFT", "RIGHT")
	case "JUST", "JUSTIFIED":
		it.justRight = true
		p.word("RIGHT")
	case "VALUE", "VALUES":
		p.word("IS", "ARE")
		return p.values(t)
	case "BLANK":
		p.word("WHEN")
		if !p.word("ZERO", "ZEROS", "ZEROES") {
			return p.errorf(t.line, "BLANK needs WHEN ZERO")
		}
	case "GLOBAL", "EXTERNAL":
	case "RENAMES":
		if it.level != 66 {
			return p.errorf(t.line, "RENAMES is only allowed at level 66")
		}
		from, err := p.next("a data name")
		if err != nil {
			return err
		}
		it.renames[0] = from.text
		if p.word("THRU", "THROUGH") {
			to, err := p.next("a data name")
			if err != nil {
				return err
			}
			it.renames[1] = to.text
		}
	default:
		return p.usage(it, t)
	}
	return nil
}

func (p *parser) usage(it *item, u token) error {
	name := strings.ToUpper(u.text)
	if unsupportedUsages[name] {
		return p.errorf(u.line, "USAGE %s is not supported", name)
	}
	us, ok := usageNames[name]
	if !ok {
		return p.errorf(u.line, "unknown clause %q in the entry of %s", clip(u.text), it.describe())
	}
	if it.usageSet && it.usage != us {
		return p.errorf(u.line, "%s has two different usages", it.describe())
	}
	it.usage, it.usageSet = us, true
	return nil
}

func (p *parser) integer(what string) (int, token, error) {
	t, err := p.next(what)
	if err != nil {
		return 0, t, err
	}
	n, err := strconv.Atoi(t.text)
	if err != nil || n < 0 || t.kind != tokWord {
		return 0, t, p.errorf(t.line, "want %s, got %q", what, clip(t.text))
	}
	return n, t, nil
}

// maxOccurs bounds OCCURS counts.
const maxOccurs = 1_000_000

func (p *parser) occurs(it *item, kw token) error {
	if it.occurs {
		return p.errorf(kw.line, "%s has two OCCURS clauses", it.describe())
	}
	n, t, err := p.integer("a number of occurrences")
	if err != nil {
		return err
	}
	it.occurs, it.occMin, it.occMax = true, n, n
	if p.word("TO") {
		m, t2, err := p.integer("a maximum number of occurrences")
		if err != nil {
			return err
		}
		if m < n {
			return p.errorf(t2.line, "OCCURS %d TO %d: the maximum is below the minimum", n, m)
		}
		it.occMax, t = m, t2
	}
	if it.occMax > maxOccurs {
		return p.errorf(t.line, "OCCURS %d is more than %d", it.occMax, maxOccurs)
	}
	p.word("TIMES")
	if p.word("DEPENDING") {
		p.word("ON")
		name, err := p.next("a data name")
		if err != nil {
			return err
		}
		if !validName(name.text) {
			return p.errorf(name.line, "DEPENDING ON needs a data name, got %q", clip(name.text))
		}
		it.depends = []string{name.text}
		for p.word("OF", "IN") {
			q, err := p.next("a qualifier")
			if err != nil {
				return err
			}
			it.depends = append(it.depends, q.text)
		}
	} else if it.occMin != it.occMax {
		return p.errorf(kw.line, "OCCURS %d TO %d needs DEPENDING ON", it.occMin, it.occMax)
	}
	// ASCENDING/DESCENDING KEY IS names, INDEXED BY names: no storage.
	for p.word("ASCENDING", "DESCENDING", "INDEXED") {
		p.word("KEY", "BY")
		p.word("IS")
		for {
			t, ok := p.peek()
			if !ok || t.kind != tokWord || isClauseWord(t.text) || strings.EqualFold(t.text, "ASCENDING") ||
				strings.EqualFold(t.text, "DESCENDING") || strings.EqualFold(t.text, "INDEXED") {
				break
			}
			p.pos++
		}
	}
	return nil
}

// values skips the literals of a VALUE clause, which data files ignore.
func (p *parser) values(kw token) error {
	n := 0
	for {
		t, ok := p.peek()
		if !ok || t.kind == tokPeriod {
			break
		}
		if t.kind == tokWord {
			u := strings.ToUpper(t.text)
			switch {
			case u == "THRU" || u == "THROUGH" || u == "ALL":
			case figurative[u]:
			case isNumericLiteral(t.text):
			default:
				if n == 0 {
					return p.errorf(t.line, "VALUE needs a literal, got %q", clip(t.text))
				}
				return nil // the next clause
			}
		}
		p.pos++
		n++
	}
	if n == 0 {
		return p.errorf(kw.line, "VALUE needs a literal")
	}
	return nil
}

var figurative = map[string]bool{
	"ZERO": true, "ZEROS": true, "ZEROES": true, "SPACE": true, "SPACES": true,
	"HIGH-VALUE": true, "HIGH-VALUES": true, "LOW-VALUE": true, "LOW-VALUES": true,
	"QUOTE": true, "QUOTES": true, "NULL": true, "NULLS": true,
}

func isNumericLiteral(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '+' || s[0] == '-' {
		s = s[1:]
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' || c == ',':
		default:
			return false
		}
	}
	return digits > 0
}

// tree nests entries by level number and returns the records.
func (p *parser) tree(entries []*item) ([]*item, error) {
	var roots []*item
	var stack []*item
	var implicit *item
	var last *item // last entry with storage, for 66
	seen := map[string]bool{}
	for _, it := range entries {
		switch it.level {
		case 88:
			continue
		case 66:
			// RENAMES regroups items that are already in the record: it has
			// no storage and produces no field; its names must exist.
			if last == nil {
				return nil, p.errorf(it.line, "level 66 %s before any record", it.describe())
			}
			if it.renames[0] == "" {
				return nil, p.errorf(it.line, "level 66 %s needs a RENAMES clause", it.describe())
			}
			for _, n := range it.renames {
				if n != "" && !seen[strings.ToUpper(n)] {
					return nil, p.errorf(it.line, "RENAMES %s: no such item earlier in the record", n)
				}
			}
			continue
		case 1, 77:
			it.parent = nil
			roots = append(roots, it)
			stack = []*item{it}
			last = it
			seen = map[string]bool{strings.ToUpper(it.name): true}
			continue
		}
		if len(stack) > 0 && stack[0].level == 77 {
			return nil, p.errorf(it.line, "level 77 items cannot have subordinate items")
		}
		for len(stack) > 0 && stack[len(stack)-1].level >= it.level {
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			if implicit == nil || len(roots) > 0 && roots[len(roots)-1] != implicit {
				implicit = &item{level: 0, line: it.line}
				roots = append(roots, implicit)
			}
			stack = []*item{implicit}
		}
		parent := stack[len(stack)-1]
		if parent.pic != nil {
			return nil, p.errorf(it.line, "%s has a PICTURE, so it cannot have subordinate items like %s", parent.describe(), it.describe())
		}
		it.parent = parent
		parent.children = append(parent.children, it)
		stack = append(stack, it)
		last = it
		seen[strings.ToUpper(it.name)] = true
	}
	if len(roots) == 0 {
		return nil, p.errorf(entries[0].line, "no records (level 01 or 77) in the copybook")
	}
	return roots, nil
}
