package codec

import (
	"fmt"
	"io"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/internal/box"
)

func init() {
	adapters.RegisterCodec("jsonl", jsonlSpec, newJSONLCodec)
}

var decimalField = adapters.Field{
	Name: "decimal_numbers", Type: adapters.TypeBool, Default: false,
	Description: "Decode numbers with a fraction or exponent as exact decimal.Decimal values instead of float64 (integers are always int64, or uint64 above the int64 range).",
	Example:     true,
}

var jsonlSpec = &adapters.Spec{
	Summary: "JSON Lines: one JSON object per line.",
	Description: "Each non-blank line holds one JSON object, which becomes a record. Integers decode to int64 (uint64 above its range), other numbers to float64 " +
		"or, with `decimal_numbers`, to exact decimals. A line that is not a valid JSON object is a malformed record (with its line number and byte offset) and decoding goes on with the next line. " +
		"The encoder writes one object per line with sorted keys; times as RFC 3339 strings with nanoseconds, decimals as numbers with all their digits, bytes as base64.",
	Fields: []adapters.Field{
		decimalField,
		sizeField("max_line_bytes", "Longest line accepted; a longer line is a malformed record, skipped without being held in memory.", "16MiB"),
	},
	Example: "codec: {type: jsonl, decimal_numbers: true}",
}

type jsonlCodec struct {
	decimals bool
	max      int
}

func newJSONLCodec(conf *adapters.Config) (adapters.Codec, error) {
	return &jsonlCodec{decimals: conf.Bool("decimal_numbers"), max: maxBytes(conf, "max_line_bytes")}, nil
}

func (c *jsonlCodec) NewDecoder(r io.Reader) adapters.Decoder {
	return &jsonlDecoder{c: c, in: newInput(r, charset{name: "utf-8"}), p: jsonParser{decimals: c.decimals, box: &box.Arena{}}}
}

func (c *jsonlCodec) NewEncoder(w io.Writer, _ adapters.EncoderOptions) adapters.Encoder {
	return &jsonlEncoder{out: newOutput(w, charset{name: "utf-8"})}
}

type jsonlDecoder struct {
	position
	c  *jsonlCodec
	in *input
	p  jsonParser
}

var (
	_ adapters.Decoder        = (*jsonlDecoder)(nil)
	_ adapters.ReaderAtOffset = (*jsonlDecoder)(nil)
)

func (d *jsonlDecoder) SetStart(off, line int64) {
	d.in.setStart(off, line, false)
	d.off, d.line = off, line
}

func (d *jsonlDecoder) Decode() (adapters.Record, error) {
	for {
		startOff, startLine := d.in.off, d.in.line
		line, tooLong, err := d.in.readLine(d.c.max)
		if err != nil {
			return nil, err
		}
		fail := func(err error) error {
			d.rec, d.line, d.off = d.rec+1, startLine, d.in.off
			return &adapters.RecordError{Record: d.rec, Line: startLine, Offset: startOff, Err: err}
		}
		if tooLong {
			return nil, fail(fmt.Errorf("%w: line longer than max_line_bytes (%d)", ErrLineTooLong, d.c.max))
		}
		for n := len(line); n > 0 && (line[n-1] == ' ' || line[n-1] == '\t' || line[n-1] == '\r' || line[n-1] == '\n'); n-- {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue
		}
		v, err := d.p.parseDocument(string(line))
		if err != nil {
			return nil, fail(err)
		}
		rec, ok := v.(map[string]any)
		if !ok {
			return nil, fail(fmt.Errorf("want a JSON object, got %s", jsonKind(v)))
		}
		d.rec, d.line, d.off = d.rec+1, startLine, d.in.off
		return rec, nil
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	}
	return "a number"
}

type jsonlEncoder struct {
	out *output
	buf []byte
	kb  keyBuf
}

func (e *jsonlEncoder) Encode(rec adapters.Record) error {
	var err error
	e.buf, err = appendJSON(e.buf[:0], rec, &e.kb)
	if err != nil {
		return encodeError("jsonl", err)
	}
	e.buf = append(e.buf, '\n')
	return e.out.write(e.buf)
}

func (e *jsonlEncoder) Flush() error { return e.out.flush() }
func (e *jsonlEncoder) Close() error { return e.out.flush() }
