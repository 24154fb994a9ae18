// Package fixedwidth is the fixed_width codec: records cut into fields by
// byte position, from a layout in the pipeline config. Text in UTF-8, ASCII,
// ISO 8859-1, Windows-1252 or an EBCDIC code page; one record per line or
// fixed-length records without newlines; several record types (header,
// detail, trailer) chosen by a discriminator. The codec registers itself as
// "fixed_width" from init.
package fixedwidth

import (
	"bytes"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/framing"
	"github.com/sluicehq/sluice/transform/codec/copybook/recvalue"
	"github.com/sluicehq/sluice/transform/codec/internal/box"
)

// codec is immutable after newCodec and shared by its decoders and encoders.
type codec struct {
	cs        *charset
	recLen    int // 0: lines
	crlf      bool
	types     []recordType
	typeField string // "" without record_types
	byName    map[string]*recordType
}

var (
	_ adapters.Codec          = (*codec)(nil)
	_ adapters.Decoder        = (*decoder)(nil)
	_ adapters.ReaderAtOffset = (*decoder)(nil)
	_ adapters.Encoder        = (*encoder)(nil)
)

func newCodec(conf *adapters.Config) (adapters.Codec, error) {
	cs, err := newCharset(conf.String("charset"))
	if err != nil {
		return nil, conf.Errorf("charset", "%v", err)
	}
	c := &codec{cs: cs, crlf: conf.String("line_ending") == "crlf", byName: map[string]*recordType{}}
	if conf.Has("record_length") {
		c.recLen = conf.Int("record_length")
		if c.recLen < 1 {
			return nil, conf.Errorf("record_length", "want 1 or more, got %d", c.recLen)
		}
	}
	switch {
	case conf.Has("fields") == conf.Has("record_types"):
		return nil, conf.Errorf("fields", "give either fields or record_types")
	case conf.Has("fields"):
		fs, err := compileFields(conf.Objects("fields"), cs, c.recLen)
		if err != nil {
			return nil, err
		}
		if len(fs) == 0 {
			return nil, conf.Errorf("fields", "the layout has no fields")
		}
		c.types = []recordType{{fields: fs}}
	default:
		c.typeField = conf.String("type_field")
		if c.typeField == "" {
			return nil, conf.Errorf("type_field", "type_field is empty")
		}
		for _, tc := range conf.Objects("record_types") {
			rt, err := c.compileType(tc)
			if err != nil {
				return nil, err
			}
			c.types = append(c.types, rt)
		}
		if len(c.types) == 0 {
			return nil, conf.Errorf("record_types", "no record types")
		}
	}
	for i := range c.types {
		rt := &c.types[i]
		rt.index = i
		rt.size = max(fieldsEnd(rt.fields), rt.mOff+len(rt.mValue))
		if c.recLen > 0 {
			rt.size = c.recLen
		}
		if rt.name != "" {
			c.byName[rt.name] = rt
		}
	}
	return c, nil
}

func (c *codec) compileType(tc *adapters.Config) (recordType, error) {
	rt := recordType{name: tc.String("name")}
	if rt.name == "" {
		return rt, tc.Errorf("name", "record type name is empty")
	}
	if _, dup := c.byName[rt.name]; dup {
		return rt, tc.Errorf("name", "duplicate record type %q", rt.name)
	}
	c.byName[rt.name] = nil
	if w := tc.Object("when"); w != nil {
		start, length := w.Int("start"), w.Int("length")
		if start < 1 || length < 1 {
			return rt, w.Errorf("start", "want start and length of 1 or more (start is 1-based), got %d and %d", start, length)
		}
		if c.recLen > 0 && start-1+length > c.recLen {
			return rt, w.Errorf("length", "discriminator ends past record_length %d", c.recLen)
		}
		val, err := c.cs.encode(nil, w.String("value"))
		if err != nil {
			return rt, w.Errorf("value", "%v", err)
		}
		if len(val) > length {
			return rt, w.Errorf("value", "value %q is longer than length %d", w.String("value"), length)
		}
		for len(val) < length {
			val = append(val, c.cs.space)
		}
		rt.match, rt.mOff, rt.mValue = true, start-1, val
	}
	fs, err := compileFields(tc.Objects("fields"), c.cs, c.recLen)
	if err != nil {
		return rt, err
	}
	for _, f := range fs {
		if f.name == c.typeField {
			return rt, tc.Errorf("fields", "field %q clashes with type_field", f.name)
		}
	}
	rt.fields = fs
	return rt, nil
}

func (c *codec) framing() framing.Options {
	if c.recLen > 0 {
		return framing.Options{Format: framing.Fixed, Length: c.recLen}
	}
	return framing.Options{Format: framing.Lines, Newlines: c.cs.nl, StripCR: true, SkipEmpty: true}
}

// NewDecoder implements adapters.Codec.
func (c *codec) NewDecoder(r io.Reader) adapters.Decoder {
	return &decoder{c: c, rd: framing.NewReader(r, c.framing()), caches: make([]*recvalue.Cache, len(c.types))}
}

// NewEncoder implements adapters.Codec.
func (c *codec) NewEncoder(w io.Writer, _ adapters.EncoderOptions) adapters.Encoder {
	nl := []byte{c.cs.lf}
	if c.crlf {
		nl = []byte{c.cs.lf - '\n' + '\r', c.cs.lf}
		if c.cs.table != nil {
			nl[0] = c.cs.table.MustByte('\r')
		}
	}
	return &encoder{c: c, w: framing.NewWriter(w, c.framing(), nl)}
}

// match returns the record type of rec, or nil.
func (c *codec) match(rec []byte) *recordType {
	for i := range c.types {
		rt := &c.types[i]
		if !rt.match {
			return rt
		}
		if matchPadded(rec, rt.mOff, rt.mValue, c.cs.space) {
			return rt
		}
	}
	return nil
}

// matchPadded compares rec[off:off+len(want)], read as padded with spaces
// past its end, with want.
func matchPadded(rec []byte, off int, want []byte, space byte) bool {
	for i, w := range want {
		got := space
		if off+i < len(rec) {
			got = rec[off+i]
		}
		if got != w {
			return false
		}
	}
	return true
}

type decoder struct {
	c       *codec
	rd      *framing.Reader
	rec     int64
	scratch []byte
	text    []byte
	spans   []span
	caches  []*recvalue.Cache // per record type: the last value of each field
	box     box.Arena
}

type span struct {
	name       string
	start, end int
	raw        []byte // the field's bytes, for the cache
	field      int    // index of the field in the cache, or -1
}

// SetStart implements adapters.ReaderAtOffset.
func (d *decoder) SetStart(off, line int64) { d.rd.SetStart(off, line) }

// Position implements adapters.Decoder.
func (d *decoder) Position() (record, line, offset int64) {
	if d.c.recLen > 0 {
		return d.rec, 0, d.rd.Offset()
	}
	return d.rec, d.rd.Line(), d.rd.Offset()
}

func (d *decoder) fail(err error) error {
	line := d.rd.Line()
	if d.c.recLen > 0 {
		line = 0
	}
	return &adapters.RecordError{Record: d.rec, Line: line, Offset: d.rd.Start(), Err: err}
}

// Decode implements adapters.Decoder.
func (d *decoder) Decode() (adapters.Record, error) {
	raw, err := d.rd.Next()
	if err != nil {
		if framing.IsRecordError(err) {
			d.rec++
			return nil, d.fail(err)
		}
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("fixed_width: read: %w", err)
	}
	d.rec++
	rt := d.c.match(raw)
	if rt == nil {
		n := min(len(raw), 16)
		return nil, d.fail(fmt.Errorf("no record type matches (record starts %q)", d.c.cs.decodeString(raw[:n], &d.scratch)))
	}
	out := make(adapters.Record, len(rt.fields)+1)
	if d.c.typeField != "" {
		out[d.c.typeField] = rt.name
	}
	cache := d.caches[rt.index]
	if cache == nil {
		cache = recvalue.NewCache(len(rt.fields))
		d.caches[rt.index] = cache
	}
	// String fields share one allocation: their text is gathered in
	// d.text and cut from a single string at the end.
	text, spans := d.text[:0], d.spans[:0]
	for i := range rt.fields {
		f := &rt.fields[i]
		var b []byte
		if f.off < len(raw) {
			b = raw[f.off:min(f.off+f.len, len(raw))]
		}
		cached := len(b) <= recvalue.MaxCached
		if cached {
			if v, ok := cache.Get(i, b); ok {
				out[f.name] = v
				continue
			}
		}
		if f.kind == kString {
			start := len(text)
			text = f.appendString(d.c.cs, text, b)
			sp := span{name: f.name, start: start, end: len(text), field: -1}
			if cached {
				sp.raw, sp.field = b, i
			}
			spans = append(spans, sp)
			continue
		}
		v, err := f.decode(d.c.cs, b, &d.scratch, &d.box)
		if err != nil {
			d.text, d.spans = text, spans
			return nil, d.fail(fmt.Errorf("field %s (bytes %d-%d, %q): %w", f.name, f.off+1, f.off+f.len, d.c.cs.decodeString(b, &d.scratch), err))
		}
		if cached {
			cache.Put(i, b, v)
		}
		out[f.name] = v
	}
	all := string(text)
	for _, sp := range spans {
		v := d.box.String(all[sp.start:sp.end])
		out[sp.name] = v
		if sp.field >= 0 {
			cache.Put(sp.field, sp.raw, v)
		}
	}
	d.text, d.spans = text, spans
	return out, nil
}

type encoder struct {
	c       *codec
	w       *framing.Writer
	buf     []byte
	scratch []byte
}

// Encode implements adapters.Encoder. A record that does not fit the layout
// (a value too long, a number with too many decimal places, an unknown
// record type) is not written and its error names the field.
func (e *encoder) Encode(rec adapters.Record) error {
	rt := &e.c.types[0]
	if e.c.typeField != "" {
		name, _ := rec[e.c.typeField].(string)
		var ok bool
		if rt, ok = e.c.byName[name]; !ok || rt == nil {
			return fmt.Errorf("fixed_width: record %s %q names no record type", e.c.typeField, name)
		}
	}
	if cap(e.buf) < rt.size {
		e.buf = make([]byte, rt.size)
	}
	buf := e.buf[:rt.size]
	fill(buf, e.c.cs.space)
	for i := range rt.fields {
		f := &rt.fields[i]
		if err := f.encode(e.c.cs, buf[f.off:f.off+f.len], rec[f.name], &e.scratch); err != nil {
			return fmt.Errorf("fixed_width: field %s: %w", f.name, err)
		}
	}
	if rt.match {
		copy(buf[rt.mOff:], rt.mValue)
	}
	if e.c.recLen == 0 {
		for _, nl := range e.c.cs.nl {
			if bytes.IndexByte(buf, nl) >= 0 {
				return fmt.Errorf("fixed_width: record contains a newline byte")
			}
		}
	}
	return e.w.Write(buf)
}

// Flush implements adapters.Encoder.
func (e *encoder) Flush() error { return e.w.Flush() }

// Close implements adapters.Encoder: fixed-width output has no trailer.
func (e *encoder) Close() error { return e.w.Flush() }
