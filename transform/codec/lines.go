package codec

import (
	"bytes"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/adapters"
)

func init() {
	adapters.RegisterCodec("lines", linesSpec, newLinesCodec)
}

var linesSpec = &adapters.Spec{
	Summary: "One record per line of text: {line: \"...\"}.",
	Description: "Each line (ended by LF or CRLF, which are removed) becomes a record with one string field. " +
		"A line longer than `max_line_bytes` is a malformed record: it is skipped without being held in memory and decoding goes on. " +
		"The encoder writes the configured field of each record and a line ending; a record without the field, or whose value holds a line break, fails on its own.",
	Fields: []adapters.Field{
		{Name: "field", Type: adapters.TypeString, Default: "line", Description: "Name of the record field holding the line.", Example: "message"},
		charsetField(),
		sizeField("max_line_bytes", "Longest line accepted, in decoded bytes; a longer line is a malformed record.", "1MiB"),
		{Name: "skip_empty", Type: adapters.TypeBool, Default: false, Description: "Skip empty lines (after the line ending is removed) instead of emitting records with an empty string.", Example: true},
		{Name: "line_ending", Type: adapters.TypeString, Default: "lf", Enum: []string{"lf", "crlf"}, Description: "Line ending the encoder writes.", Example: "crlf"},
	},
	Example: "codec: {type: lines, field: message, charset: windows-1252}",
}

type linesCodec struct {
	field     string
	cs        charset
	max       int
	skipEmpty bool
	eol       string
}

func newLinesCodec(conf *adapters.Config) (adapters.Codec, error) {
	cs, err := parseCharset(conf.String("charset"))
	if err != nil {
		return nil, conf.Errorf("charset", "%v", err)
	}
	c := &linesCodec{field: conf.String("field"), cs: cs, max: maxBytes(conf, "max_line_bytes"), skipEmpty: conf.Bool("skip_empty"), eol: eolOf(conf.String("line_ending"))}
	if c.field == "" {
		return nil, conf.Errorf("field", "must not be empty")
	}
	return c, nil
}

func maxBytes(conf *adapters.Config, name string) int {
	n := conf.Size(name)
	if n <= 0 || n > 1<<40 {
		n = 1 << 40
	}
	return int(n)
}

func eolOf(s string) string {
	if s == "crlf" {
		return "\r\n"
	}
	return "\n"
}

func (c *linesCodec) NewDecoder(r io.Reader) adapters.Decoder {
	return &linesDecoder{c: c, in: newInput(r, c.cs)}
}

func (c *linesCodec) NewEncoder(w io.Writer, opts adapters.EncoderOptions) adapters.Encoder {
	return &linesEncoder{c: c, out: newOutput(w, c.cs), started: opts.Append}
}

// position is the Position state every decoder keeps.
type position struct {
	rec, line, off int64
}

func (p *position) Position() (record, line, offset int64) { return p.rec, p.line, p.off }

type linesDecoder struct {
	position
	c  *linesCodec
	in *input
}

var (
	_ adapters.Decoder        = (*linesDecoder)(nil)
	_ adapters.ReaderAtOffset = (*linesDecoder)(nil)
)

func (d *linesDecoder) SetStart(off, line int64) {
	d.in.setStart(off, line, false)
	d.off, d.line = off, line
}

func (d *linesDecoder) Decode() (adapters.Record, error) {
	for {
		startOff, startLine := d.in.off, d.in.line
		line, tooLong, err := d.in.readLine(d.c.max)
		if err != nil {
			return nil, err
		}
		if tooLong {
			d.rec, d.line, d.off = d.rec+1, startLine, d.in.off
			return nil, &adapters.RecordError{Record: d.rec, Line: startLine, Offset: startOff,
				Err: fmt.Errorf("%w: line longer than max_line_bytes (%d)", ErrLineTooLong, d.c.max)}
		}
		text := trimEOL(line)
		if d.c.skipEmpty && len(text) == 0 {
			continue
		}
		d.rec, d.line, d.off = d.rec+1, startLine, d.in.off
		return adapters.Record{d.c.field: string(text)}, nil
	}
}

type linesEncoder struct {
	c       *linesCodec
	out     *output
	buf     []byte
	started bool
}

func (e *linesEncoder) Encode(rec adapters.Record) error {
	v, ok := rec[e.c.field]
	if !ok {
		return encodeError("lines", fmt.Errorf("%w: record has no field %q", ErrUnsupportedValue, e.c.field))
	}
	var err error
	if b, isBytes := v.([]byte); isBytes {
		e.buf = append(e.buf[:0], b...)
	} else if e.buf, err = appendText(e.buf[:0], v); err != nil {
		return encodeError("lines", err)
	}
	if bytes.IndexByte(e.buf, '\n') >= 0 || bytes.HasSuffix(e.buf, []byte{'\r'}) {
		return encodeError("lines", fmt.Errorf("%w: field %q holds a line break", ErrUnsupportedValue, e.c.field))
	}
	e.buf = append(e.buf, e.c.eol...)
	if !e.started {
		e.started = true
		if err := e.out.writeBOM(false); err != nil {
			return err
		}
	}
	return e.out.write(e.buf)
}

func (e *linesEncoder) Flush() error { return e.out.flush() }
func (e *linesEncoder) Close() error { return e.out.flush() }
