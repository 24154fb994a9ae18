package codec

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/adapters"
)

func (c *xmlCodec) NewEncoder(w io.Writer, opts adapters.EncoderOptions) adapters.Encoder {
	return &xmlEncoder{c: c, out: newOutput(w, c.cs), started: opts.Append}
}

type xmlEncoder struct {
	c       *xmlCodec
	out     *output
	started bool
	closed  bool
	buf     []byte
	text    []byte
	keys    keyBuf
}

// prolog appends the XML declaration and the root start tag.
func (e *xmlEncoder) prolog(b []byte) []byte {
	b = append(b, `<?xml version="1.0" encoding="`...)
	b = append(b, strings.ToUpper(e.c.cs.name)...)
	b = append(b, "\"?>\n<"...)
	b = append(b, e.c.root...)
	return append(b, ">\n"...)
}

func (e *xmlEncoder) Encode(rec adapters.Record) error {
	b := e.buf[:0]
	if !e.started {
		b = e.prolog(b)
	}
	b = append(b, "  "...)
	b, err := e.element(b, e.c.record, rec, 0)
	e.buf = b
	if err != nil {
		return encodeError("xml", err)
	}
	b = append(b, '\n')
	if !e.started {
		if err := e.out.writeBOM(false); err != nil {
			return err
		}
	}
	if err := e.out.write(b); err != nil {
		return err
	}
	e.started = true
	return nil
}

// element appends <name ...>value</name>; a list is one element per item.
func (e *xmlEncoder) element(b []byte, name string, v any, depth int) ([]byte, error) {
	if depth > maxJSONDepth {
		return b, fmt.Errorf("%w: nested deeper than %d levels", ErrUnsupportedValue, maxJSONDepth)
	}
	if !isXMLName(name) {
		return b, fmt.Errorf("%w: field %q is not an XML element name", ErrUnsupportedValue, name)
	}
	switch x := v.(type) {
	case []any:
		var err error
		for _, item := range x {
			if b, err = e.element(b, name, item, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case nil:
		b = append(b, '<')
		b = append(b, name...)
		return append(b, "/>"...), nil
	case map[string]any:
		return e.object(b, name, x, depth)
	}
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	var err error
	if e.text, err = appendText(e.text[:0], v); err != nil {
		return b, fmt.Errorf("field %q: %w", name, err)
	}
	if b, err = appendXMLEscaped(b, e.text, false); err != nil {
		return b, fmt.Errorf("field %q: %w", name, err)
	}
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>'), nil
}

// object appends an element from a map: prefixed keys as attributes, the
// text key as text, other keys as children, each group in key order.
func (e *xmlEncoder) object(b []byte, name string, m map[string]any, depth int) ([]byte, error) {
	fs := e.keys.sorted(m, depth)
	defer e.keys.release(fs, depth)
	b = append(b, '<')
	b = append(b, name...)
	p := e.c.attrPrefix
	var err error
	for _, f := range fs {
		k := f.k
		if p == "" || !strings.HasPrefix(k, p) {
			continue
		}
		an := k[len(p):]
		if !isXMLName(an) {
			return b, fmt.Errorf("%w: field %q is not an XML attribute name", ErrUnsupportedValue, k)
		}
		b = append(b, ' ')
		b = append(b, an...)
		b = append(b, `="`...)
		if e.text, err = appendText(e.text[:0], f.v); err != nil {
			return b, fmt.Errorf("field %q: %w", k, err)
		}
		if b, err = appendXMLEscaped(b, e.text, true); err != nil {
			return b, fmt.Errorf("field %q: %w", k, err)
		}
		b = append(b, '"')
	}
	b = append(b, '>')
	if t, ok := m[e.c.textKey]; ok {
		if e.text, err = appendText(e.text[:0], t); err != nil {
			return b, fmt.Errorf("field %q: %w", e.c.textKey, err)
		}
		if b, err = appendXMLEscaped(b, e.text, false); err != nil {
			return b, fmt.Errorf("field %q: %w", e.c.textKey, err)
		}
	}
	for _, f := range fs {
		if f.k == e.c.textKey || (p != "" && strings.HasPrefix(f.k, p)) {
			continue
		}
		if b, err = e.element(b, f.k, f.v, depth+1); err != nil {
			return b, err
		}
	}
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>'), nil
}

// appendXMLEscaped appends text escaped for element content or, with attr,
// a double-quoted attribute value. Characters XML 1.0 cannot hold fail.
func appendXMLEscaped(b, s []byte, attr bool) ([]byte, error) {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(s[i:])
			if (r == utf8.RuneError && n == 1) || !isXMLChar(r) {
				return b, fmt.Errorf("%w: text holds %q, which XML 1.0 cannot carry", ErrUnsupportedValue, s[i:i+n])
			}
			i += n
			continue
		}
		var esc string
		switch c {
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '&':
			esc = "&amp;"
		case '"':
			if attr {
				esc = "&quot;"
			}
		case '\r':
			esc = "&#xD;"
		case '\n':
			if attr {
				esc = "&#xA;"
			}
		case '\t':
			if attr {
				esc = "&#x9;"
			}
		default:
			if c < 0x20 {
				return b, fmt.Errorf("%w: text holds control character %q, which XML 1.0 cannot carry", ErrUnsupportedValue, c)
			}
		}
		if esc != "" {
			b = append(b, s[start:i]...)
			b = append(b, esc...)
			start = i + 1
		}
		i++
	}
	return append(b, s[start:]...), nil
}

func (e *xmlEncoder) Flush() error { return e.out.flush() }

// Close writes the root end tag (and the prolog when no record was written
// to a new stream). It is idempotent.
func (e *xmlEncoder) Close() error {
	if !e.closed {
		e.closed = true
		var b []byte
		if !e.started {
			if err := e.out.writeBOM(false); err != nil {
				return err
			}
			b = e.prolog(b)
		}
		b = append(b, "</"...)
		b = append(b, e.c.root...)
		b = append(b, ">\n"...)
		if err := e.out.write(b); err != nil {
			return err
		}
	}
	return e.out.flush()
}
