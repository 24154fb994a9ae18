// Package filekittest holds helpers for tests of file-like adapters: small,
// exact codecs registered under test-only names, so that such tests do not
// depend on the behaviour of the production codecs.
//
//   - "test-lines": one record {line: TEXT} per line. A line holding a NUL
//     byte is a fatal (non-record) error: "binary data". It implements
//     adapters.ReaderAtOffset.
//   - "test-jsonl": one JSON object per line; a malformed line is an
//     *adapters.RecordError and decoding goes on. Numbers decode as int64
//     when integral, else float64.
//   - "test-array": a JSON array, one object per line between "[" and "]"
//     lines: a codec with a header and a trailer, for temp-file recovery.
package filekittest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/sluicehq/sluice/adapters"
)

var once sync.Once

// RegisterCodecs registers the test codecs; it may be called many times.
func RegisterCodecs() {
	once.Do(func() {
		spec := &adapters.Spec{Summary: "test codec"}
		adapters.RegisterCodec("test-lines", spec, func(*adapters.Config) (adapters.Codec, error) { return Lines{}, nil })
		adapters.RegisterCodec("test-jsonl", spec, func(*adapters.Config) (adapters.Codec, error) { return JSONL{}, nil })
		adapters.RegisterCodec("test-array", spec, func(*adapters.Config) (adapters.Codec, error) { return Array{}, nil })
	})
}

// Codec returns a registered codec by name, or panics.
func Codec(name string) adapters.Codec {
	RegisterCodecs()
	c, err := adapters.NewCodec(name, adapters.DecodeOptions{})
	if err != nil {
		panic(err)
	}
	return c
}

// lineReader splits input into lines and keeps the position.
type lineReader struct {
	r                 *bufio.Reader
	rec, line, offset int64
}

func (l *lineReader) next() ([]byte, error) {
	b, err := l.r.ReadBytes('\n')
	if len(b) == 0 && err != nil {
		return nil, err
	}
	l.offset += int64(len(b))
	l.line++
	return bytes.TrimRight(b, "\r\n"), nil
}

func (l *lineReader) Position() (int64, int64, int64) { return l.rec, l.line, l.offset }

func (l *lineReader) SetStart(off, line int64) { l.offset, l.line = off, line }

// Lines is the "test-lines" codec.
type Lines struct{}

// NewDecoder implements adapters.Codec.
func (Lines) NewDecoder(r io.Reader) adapters.Decoder {
	return &linesDec{lineReader{r: bufio.NewReader(r)}}
}

// NewEncoder implements adapters.Codec.
func (Lines) NewEncoder(w io.Writer, _ adapters.EncoderOptions) adapters.Encoder {
	return &lineEnc{w: bufio.NewWriter(w), enc: func(r adapters.Record) ([]byte, error) {
		s, ok := r["line"].(string)
		if !ok {
			return nil, errors.New("record has no string field line")
		}
		return []byte(s), nil
	}}
}

type linesDec struct{ lineReader }

func (d *linesDec) Decode() (adapters.Record, error) {
	b, err := d.next()
	if err != nil {
		return nil, err
	}
	d.rec++
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, errors.New("binary data")
	}
	return adapters.Record{"line": string(b)}, nil
}

// JSONL is the "test-jsonl" codec.
type JSONL struct{}

// NewDecoder implements adapters.Codec.
func (JSONL) NewDecoder(r io.Reader) adapters.Decoder {
	return &jsonlDec{lineReader{r: bufio.NewReader(r)}}
}

// NewEncoder implements adapters.Codec.
func (JSONL) NewEncoder(w io.Writer, _ adapters.EncoderOptions) adapters.Encoder {
	return &lineEnc{w: bufio.NewWriter(w), enc: marshal}
}

type jsonlDec struct{ lineReader }

func (d *jsonlDec) Decode() (adapters.Record, error) {
	start := d.offset
	b, err := d.next()
	if err != nil {
		return nil, err
	}
	d.rec++
	rec, err := unmarshal(b)
	if err != nil {
		return nil, &adapters.RecordError{Record: d.rec, Line: d.line, Offset: start, Err: err}
	}
	return rec, nil
}

func unmarshal(b []byte) (adapters.Record, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				m[k] = i
			} else {
				f, _ := n.Float64()
				m[k] = f
			}
		}
	}
	return m, nil
}

func marshal(r adapters.Record) ([]byte, error) {
	// Sorted keys keep golden output stable.
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(r[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// lineEnc writes one encoded record per line, between an optional header
// and trailer.
type lineEnc struct {
	w               *bufio.Writer
	enc             func(adapters.Record) ([]byte, error)
	header, trailer string
	sep             string
	started         bool
	n               int
}

func (e *lineEnc) Encode(r adapters.Record) error {
	b, err := e.enc(r)
	if err != nil {
		return err
	}
	if !e.started {
		e.started = true
		e.w.WriteString(e.header)
	} else if e.sep != "" && e.n > 0 {
		e.w.WriteString(e.sep)
	}
	e.n++
	e.w.Write(b)
	if e.sep == "" {
		e.w.WriteByte('\n')
	}
	return nil
}

func (e *lineEnc) Flush() error { return e.w.Flush() }

func (e *lineEnc) Close() error {
	if !e.started {
		e.w.WriteString(e.header)
	}
	e.w.WriteString(e.trailer)
	return e.w.Flush()
}

// Array is the "test-array" codec.
type Array struct{}

// NewDecoder implements adapters.Codec: it reads back what the encoder wrote.
func (Array) NewDecoder(r io.Reader) adapters.Decoder {
	return &arrayDec{lineReader{r: bufio.NewReader(r)}}
}

// NewEncoder implements adapters.Codec. With opts.Append the header and the
// first separator are not written again.
func (Array) NewEncoder(w io.Writer, opts adapters.EncoderOptions) adapters.Encoder {
	e := &lineEnc{w: bufio.NewWriter(w), enc: marshal, header: "[\n", trailer: "\n]\n", sep: ",\n", started: opts.Append}
	if opts.Append {
		e.n = 1
	}
	return e
}

type arrayDec struct{ lineReader }

func (d *arrayDec) Decode() (adapters.Record, error) {
	for {
		b, err := d.next()
		if err != nil {
			return nil, err
		}
		b = bytes.TrimSuffix(b, []byte(","))
		if s := string(b); s == "[" || s == "]" || s == "" {
			continue
		}
		d.rec++
		rec, err := unmarshal(b)
		if err != nil {
			return nil, fmt.Errorf("array element %d: %w", d.rec, err)
		}
		return rec, nil
	}
}
