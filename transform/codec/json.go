package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/internal/box"
)

func init() {
	adapters.RegisterCodec("json", jsonSpec, newJSONCodec)
}

var jsonSpec = &adapters.Spec{
	Summary: "A JSON document: an array of objects, streamed, or one object.",
	Description: "The decoder streams a top-level array element by element, holding one element in memory at a time, so arrays of any size can be read. " +
		"A top-level object is one record. Several top-level values in a row (as `jq` prints them) are read one after the other. " +
		"An element that is not a valid JSON object is a malformed record and decoding goes on with the next element. " +
		"A break in the array's own structure (a missing comma, an unclosed array, input ending inside an element) leaves no way to find the next record: it is reported as one malformed record, after which Decode returns io.EOF. " +
		"The encoder writes an array, `[` then elements separated by `,\\n` then `]` at Close, or with `format: object` exactly one object per stream.",
	Fields: []adapters.Field{
		decimalField,
		sizeField("max_record_bytes", "Largest array element or object accepted; a larger one is a malformed record, skipped without being held in memory.", "64MiB"),
		{Name: "format", Type: adapters.TypeString, Default: "array", Enum: []string{"array", "object"},
			Description: "What the encoder writes: an array of all records, or one object (a second record in the same stream fails).", Example: "object"},
	},
	Example: "codec: {type: json, decimal_numbers: true}",
}

type jsonCodec struct {
	decimals bool
	max      int
	object   bool
}

func newJSONCodec(conf *adapters.Config) (adapters.Codec, error) {
	return &jsonCodec{decimals: conf.Bool("decimal_numbers"), max: maxBytes(conf, "max_record_bytes"), object: conf.String("format") == "object"}, nil
}

func (c *jsonCodec) NewDecoder(r io.Reader) adapters.Decoder {
	return &jsonDecoder{c: c, in: newInput(r, charset{name: "utf-8"}), p: jsonParser{decimals: c.decimals, box: &box.Arena{}}}
}

func (c *jsonCodec) NewEncoder(w io.Writer, opts adapters.EncoderOptions) adapters.Encoder {
	return &jsonEncoder{c: c, out: newOutput(w, charset{name: "utf-8"}), n: boolInt(opts.Append), appended: opts.Append}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// States of the JSON decoder between values.
const (
	jsTop      = iota // between top-level values
	jsElem            // after '[' or ',': an element must follow (or ']' after '[')
	jsAfter           // after an element: ',' or ']' must follow
	jsFinished        // a structural error ended the document
	jsResume          // after SetStart: inside an array or between top-level values
)

type jsonDecoder struct {
	position
	c     *jsonCodec
	in    *input
	p     jsonParser
	state int
	empty bool // in jsElem: no element yet, so ']' is allowed
}

var (
	_ adapters.Decoder        = (*jsonDecoder)(nil)
	_ adapters.ReaderAtOffset = (*jsonDecoder)(nil)
)

// SetStart resumes inside a top-level array, just after an element that
// Position reported.
func (d *jsonDecoder) SetStart(off, line int64) {
	d.in.setStart(off, line, true)
	d.off, d.line = off, line
	if off > 0 {
		d.state = jsResume
	}
}

// peek skips whitespace and returns the next byte, or false at the end of
// input (d.in.err tells why).
func (d *jsonDecoder) peek() (byte, bool) {
	for {
		buf := d.in.buf[d.in.r:d.in.w]
		i := 0
		for i < len(buf) && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t') {
			i++
		}
		if i > 0 {
			d.in.consume(i, int64(bytes.Count(buf[:i], []byte{'\n'})))
		}
		if i < len(buf) {
			return buf[i], true
		}
		if !d.in.fill() {
			return 0, false
		}
	}
}

// broken ends the document with a malformed record at the current input
// position; later calls return io.EOF.
func (d *jsonDecoder) broken(format string, args ...any) error {
	d.state = jsFinished
	d.rec++
	return &adapters.RecordError{Record: d.rec, Line: d.in.line, Offset: d.in.off,
		Err: fmt.Errorf("%w: %s; the rest of the document is skipped", ErrNotWellFormed, fmt.Sprintf(format, args...))}
}

func (d *jsonDecoder) endOfInput() error {
	if d.in.err != io.EOF {
		return d.in.err
	}
	if d.state == jsElem || d.state == jsAfter {
		return d.broken("unexpected end of input inside the array")
	}
	d.state = jsFinished
	return io.EOF
}

func (d *jsonDecoder) Decode() (adapters.Record, error) {
	for {
		if d.state == jsFinished {
			return nil, io.EOF
		}
		c, ok := d.peek()
		if !ok {
			return nil, d.endOfInput()
		}
		switch d.state {
		case jsResume:
			switch c {
			case ',':
				d.in.consume(1, 0)
				d.state = jsElem
			case ']':
				d.in.consume(1, 0)
				d.state = jsTop
			default:
				d.state = jsTop
			}
		case jsTop:
			if !valueStart(c) {
				return nil, d.broken("unexpected %q, want a JSON value", c)
			}
			if c == '[' {
				d.in.consume(1, 0)
				d.state, d.empty = jsElem, true
				continue
			}
			return d.element()
		case jsElem:
			if c == ']' && d.empty {
				d.in.consume(1, 0)
				d.state = jsTop
				continue
			}
			if !valueStart(c) {
				return nil, d.broken("unexpected %q, want an array element", c)
			}
			d.empty = false
			d.state = jsAfter
			return d.element()
		case jsAfter:
			switch c {
			case ',':
				d.in.consume(1, 0)
				d.state = jsElem
			case ']':
				d.in.consume(1, 0)
				d.state = jsTop
			default:
				return nil, d.broken("unexpected %q after an array element, want ',' or ']'", c)
			}
		}
	}
}

func valueStart(c byte) bool {
	switch c {
	case '{', '[', '"', '-', 't', 'f', 'n':
		return true
	}
	return c >= '0' && c <= '9'
}

// element reads the value at the head of the input as one record.
func (d *jsonDecoder) element() (adapters.Record, error) {
	startOff, startLine := d.in.off, d.in.line
	n, tooLong, err := d.extent()
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, d.broken("unexpected end of input inside a value starting at line %d, byte offset %d", startLine, startOff)
		}
		return nil, err
	}
	fail := func(err error) error {
		d.rec, d.line, d.off = d.rec+1, d.in.line, d.in.off
		return &adapters.RecordError{Record: d.rec, Line: startLine, Offset: startOff, Err: err}
	}
	if tooLong {
		d.in.consume(n, int64(bytes.Count(d.in.buf[d.in.r:d.in.r+n], []byte{'\n'})))
		return nil, fail(fmt.Errorf("%w: value larger than max_record_bytes (%d)", ErrLineTooLong, d.c.max))
	}
	text := d.in.buf[d.in.r : d.in.r+n]
	s := string(text)
	d.in.consume(n, int64(bytes.Count(text, []byte{'\n'})))
	v, err := d.p.parseDocument(s)
	if err != nil {
		return nil, fail(err)
	}
	rec, ok := v.(map[string]any)
	if !ok {
		return nil, fail(fmt.Errorf("want a JSON object, got %s", jsonKind(v)))
	}
	d.rec, d.line, d.off = d.rec+1, d.in.line, d.in.off
	return rec, nil
}

// extent finds the length of the JSON value at the head of the input by
// matching brackets outside strings; the parser checks the rest. A value
// longer than max_record_bytes is consumed as it is scanned and reported
// with tooLong, with n the length still buffered.
func (d *jsonDecoder) extent() (n int, tooLong bool, err error) {
	first := d.in.buf[d.in.r]
	scalar := first != '{' && first != '[' && first != '"'
	depth, inStr, esc := 0, false, false
	i := 0
	for {
		buf := d.in.buf[d.in.r:d.in.w]
		for ; i < len(buf); i++ {
			c := buf[i]
			if scalar {
				switch c {
				case ',', ']', '}', '[', '{', '"', ' ', '\t', '\r', '\n':
					return i, tooLong, nil
				}
				continue
			}
			if inStr {
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
					if depth == 0 {
						return i + 1, tooLong, nil
					}
				}
				continue
			}
			switch c {
			case '"':
				inStr = true
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, tooLong, nil
				}
			}
		}
		if i > d.c.max {
			d.in.consume(i, int64(bytes.Count(buf[:i], []byte{'\n'})))
			i, tooLong = 0, true
		}
		if !d.in.fill() {
			if d.in.err != io.EOF {
				return 0, false, d.in.err
			}
			if scalar && i > 0 {
				return i, tooLong, nil
			}
			return 0, false, io.ErrUnexpectedEOF
		}
	}
}

type jsonEncoder struct {
	c        *jsonCodec
	out      *output
	buf      []byte
	kb       keyBuf
	n        int // records written to the stream, counting an appended stream as one
	appended bool
	closed   bool
}

func (e *jsonEncoder) Encode(rec adapters.Record) error {
	if e.c.object && e.n > 0 {
		return encodeError("json", fmt.Errorf("%w: format object holds one record per stream", ErrUnsupportedValue))
	}
	b := e.buf[:0]
	switch {
	case e.c.object:
	case e.n == 0:
		b = append(b, "[\n"...)
	default:
		b = append(b, ",\n"...)
	}
	b, err := appendJSON(b, rec, &e.kb)
	e.buf = b
	if err != nil {
		return encodeError("json", err)
	}
	if e.c.object {
		b = append(b, '\n')
	}
	e.n++
	return e.out.write(b)
}

func (e *jsonEncoder) Flush() error { return e.out.flush() }

// Close ends the array; an array with no records is written as [].
func (e *jsonEncoder) Close() error {
	if !e.c.object && !e.closed {
		e.closed = true
		var err error
		if e.n == 0 {
			err = e.out.write([]byte("[]\n"))
		} else {
			err = e.out.write([]byte("\n]\n"))
		}
		if err != nil {
			return err
		}
	}
	return e.out.flush()
}
