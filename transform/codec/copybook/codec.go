// Package copybook is the copybook codec: records laid out by a COBOL
// copybook, in EBCDIC or ASCII, with zoned, packed, binary and floating
// point numbers, REDEFINES and OCCURS DEPENDING ON; fixed-length,
// variable-length (RDW) or line records. It registers itself as "copybook"
// from init.
//
// The subpackages hold what the fixed_width codec shares: codepage (the
// character sets), framing (record boundaries) and recvalue (value
// conversions).
package copybook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codepage"
	"github.com/sluicehq/sluice/transform/codec/copybook/framing"
)

// Name is the codec's type name in pipeline configs.
const Name = "copybook"

type recordFormat int

const (
	fmtFixed recordFormat = iota
	fmtVariable
	fmtText
)

// codec is immutable after newCodec and shared.
type codec struct {
	l      *layout
	o      *valueOptions
	format recordFormat
	little bool // RDW byte order
	nl     []byte
	lf     byte
}

var (
	_ adapters.Codec          = (*codec)(nil)
	_ adapters.Decoder        = (*decoder)(nil)
	_ adapters.ReaderAtOffset = (*decoder)(nil)
	_ adapters.Encoder        = (*encoder)(nil)
)

func newCodec(conf *adapters.Config) (adapters.Codec, error) {
	path := conf.String("copybook")
	if f := conf.File(); f != "" && !filepath.IsAbs(path) {
		// a copybook ships with the configuration: relative to its file
		path = filepath.Join(filepath.Dir(f), path)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, conf.Errorf("copybook", "read copybook: %v", err)
	}
	format := map[string]sourceFormat{"auto": formatAuto, "fixed": formatFixed, "free": formatFree}[conf.String("source_format")]
	roots, err := parseCopybook(path, src, format)
	if err != nil {
		return nil, conf.Errorf("copybook", "%v", err)
	}
	root, err := selectRoot(path, roots, conf.String("record"))
	if err != nil {
		return nil, conf.Errorf("record", "%v", err)
	}
	l, err := compile(path, root, conf.Bool("keep_fillers"))
	if err != nil {
		return nil, conf.Errorf("copybook", "%v", err)
	}
	table, err := codepage.Lookup(conf.String("encoding"))
	if err != nil {
		return nil, conf.Errorf("encoding", "%v", err)
	}
	o := &valueOptions{
		table: table, ebcdic: table.EBCDIC(),
		trim:        map[string]trimMode{"right": trimRight, "both": trimBoth, "none": trimNone}[conf.String("trim")],
		comp5Little: conf.String("comp5_byte_order") == "little",
		ieee:        conf.String("float_format") == "ieee",
		space:       table.MustByte(' '), plus: table.MustByte('+'), minus: table.MustByte('-'),
	}
	c := &codec{l: l, o: o, little: conf.String("rdw") == "little", lf: table.MustByte('\n')}
	c.format = map[string]recordFormat{"fixed": fmtFixed, "variable": fmtVariable, "text": fmtText}[conf.String("record_format")]
	c.nl = []byte{c.lf}
	if o.ebcdic {
		c.nl = []byte{table.MustByte('\u0085'), c.lf}
	}
	return c, nil
}

func (c *codec) framing() framing.Options {
	switch c.format {
	case fmtVariable:
		return framing.Options{Format: framing.RDW, LittleEndian: c.little}
	case fmtText:
		return framing.Options{Format: framing.Lines, Newlines: c.nl, StripCR: !c.o.ebcdic, SkipEmpty: true,
			MaxRecord: max(c.l.maxSize*2, 1<<20)}
	}
	if c.l.static {
		return framing.Options{Format: framing.Fixed, Length: c.l.maxSize}
	}
	return framing.Options{Format: framing.Fixed}
}

// NewDecoder implements adapters.Codec.
func (c *codec) NewDecoder(r io.Reader) adapters.Decoder {
	return &decoder{c: c, rd: framing.NewReader(r, c.framing()), r: newReader(c.l, c.o)}
}

// NewEncoder implements adapters.Codec. Copybook output has no header, so
// opts.Append changes nothing.
func (c *codec) NewEncoder(w io.Writer, _ adapters.EncoderOptions) adapters.Encoder {
	return &encoder{c: c, w: framing.NewWriter(w, c.framing(), []byte{c.lf}), wr: newWriter(c.l, c.o)}
}

type decoder struct {
	c   *codec
	rd  *framing.Reader
	r   *reader
	rec int64
	pad []byte
}

// SetStart implements adapters.ReaderAtOffset.
func (d *decoder) SetStart(off, line int64) { d.rd.SetStart(off, line) }

// Position implements adapters.Decoder.
func (d *decoder) Position() (record, line, offset int64) {
	if d.c.format == fmtText {
		line = d.rd.Line()
	}
	return d.rec, line, d.rd.Offset()
}

func (d *decoder) fail(err error) error {
	_, line, _ := d.Position()
	return &adapters.RecordError{Record: d.rec, Line: line, Offset: d.rd.Start(), Err: err}
}

// Decode implements adapters.Decoder.
func (d *decoder) Decode() (adapters.Record, error) {
	if d.c.format == fmtFixed && !d.c.l.static {
		return d.decodeWindow()
	}
	data, err := d.rd.Next()
	if err != nil {
		if framing.IsRecordError(err) {
			d.rec++
			return nil, d.fail(err)
		}
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("copybook: read: %w", err)
	}
	d.rec++
	if d.c.format == fmtText {
		if len(data) > d.c.l.maxSize {
			return nil, d.fail(fmt.Errorf("line of %d bytes is longer than the record (%d)", len(data), d.c.l.maxSize))
		}
		// A short line reads as if padded with spaces.
		d.pad = append(d.pad[:0], data...)
		for len(d.pad) < d.c.l.maxSize {
			d.pad = append(d.pad, d.c.o.space)
		}
		data = d.pad
	}
	rec, n, err := d.r.record(data)
	if err != nil {
		return nil, d.fail(err)
	}
	if d.c.format == fmtVariable && n != len(data) {
		return nil, d.fail(fmt.Errorf("record has %d bytes, the layout uses %d", len(data), n))
	}
	return rec, nil
}

// decodeWindow decodes fixed records whose length depends on OCCURS
// DEPENDING ON counters.
func (d *decoder) decodeWindow() (adapters.Record, error) {
	w, err := d.rd.Window(d.c.l.maxSize)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("copybook: read: %w", err)
	}
	d.rec++
	rec, n, err := d.r.record(w)
	if err == nil {
		d.rd.Consume(n)
		return rec, nil
	}
	// Find the record's length from its counters alone, to go on after it.
	n, lerr := d.r.group(d.c.l.root, w, 0, nil)
	if lerr != nil {
		var se *shortError
		if errors.As(lerr, &se) && len(w) < d.c.l.maxSize {
			d.rd.Consume(len(w)) // the input ends inside this record
			return nil, d.fail(err)
		}
		d.rd.Consume(len(w))
		return nil, fmt.Errorf("copybook: record %d at byte offset %d: cannot find where the next record starts: %w", d.rec, d.rd.Start(), lerr)
	}
	d.rd.Consume(n)
	return nil, d.fail(err)
}

type encoder struct {
	c  *codec
	w  *framing.Writer
	wr *writer
}

// Encode implements adapters.Encoder. A record that does not fit the
// copybook is not written; the error names the field.
func (e *encoder) Encode(rec adapters.Record) error {
	b, err := e.wr.record(rec)
	if err != nil {
		return fmt.Errorf("copybook: %w", err)
	}
	if e.c.format == fmtText {
		for _, nl := range e.c.nl {
			if i := bytes.IndexByte(b, nl); i >= 0 {
				return fmt.Errorf("copybook: record has a newline byte (0x%02X) at byte %d, which record_format text cannot carry", nl, i+1)
			}
		}
	}
	return e.w.Write(b)
}

// Flush implements adapters.Encoder.
func (e *encoder) Flush() error { return e.w.Flush() }

// Close implements adapters.Encoder: there is no trailer.
func (e *encoder) Close() error { return e.w.Flush() }
