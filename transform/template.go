package transform

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

// Template is a string with {{ expression }} holes, e.g.
// "out/{{ record.region }}/orders-{{ date(\"2006-01-02\") }}.csv". It is
// safe for concurrent use; render it through a Runner.
type Template struct {
	src   string
	lits  []string   // len(lits) == len(progs)+1
	progs []*Program // holes
}

// CompileTemplate parses and compiles a template. "{{" without a matching
// "}}" is an error; a template without holes is a constant.
func CompileTemplate(src string) (*Template, error) {
	t := &Template{src: src}
	rest := src
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return nil, fmt.Errorf("template %q: \"}}\" without \"{{\"", src)
			}
			t.lits = append(t.lits, rest)
			return t, nil
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("template %q: \"{{\" without \"}}\"", src)
		}
		t.lits = append(t.lits, rest[:i])
		p, err := Compile(strings.TrimSpace(rest[i+2 : i+j]))
		if err != nil {
			return nil, fmt.Errorf("template %q: %w", src, err)
		}
		t.progs = append(t.progs, p)
		rest = rest[i+j+2:]
	}
}

// String returns the template's source.
func (t *Template) String() string { return t.src }

// IsConst reports whether the template has no holes.
func (t *Template) IsConst() bool { return len(t.progs) == 0 }

// Render evaluates the holes against a message.
func (r *Runner) Render(t *Template, rec adapters.Record, meta map[string]string) (string, error) {
	if len(t.progs) == 0 {
		return t.lits[0], nil
	}
	var b strings.Builder
	for i, p := range t.progs {
		b.WriteString(t.lits[i])
		v, err := r.Eval(p, rec, meta)
		if err != nil {
			return "", err
		}
		b.WriteString(ToString(v))
	}
	b.WriteString(t.lits[len(t.lits)-1])
	return b.String(), nil
}

// ToString formats a record value as text: numbers in full precision,
// decimals exactly and with their scale ("12.30"), times in RFC 3339, nil as
// the empty string.
func ToString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case decimal.Decimal:
		return decimalText(x) // keeps the scale: 12.30, not 12.3
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}
