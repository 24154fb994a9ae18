package adapters_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/adapters"
)

// kvCodec reads and writes lines of key=value pairs separated by a
// configurable string: "id=7;name=Ada".
type kvCodec struct{ sep string }

func (c kvCodec) NewDecoder(r io.Reader) adapters.Decoder {
	return &kvDecoder{sep: c.sep, sc: bufio.NewScanner(r)}
}

func (c kvCodec) NewEncoder(w io.Writer, opts adapters.EncoderOptions) adapters.Encoder {
	return &kvEncoder{sep: c.sep, w: bufio.NewWriter(w)}
}

type kvDecoder struct {
	sep        string
	sc         *bufio.Scanner
	rec, line  int64
	off, start int64
}

func (d *kvDecoder) Decode() (adapters.Record, error) {
	if !d.sc.Scan() {
		if err := d.sc.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	d.rec++
	d.line++
	d.start = d.off
	d.off += int64(len(d.sc.Bytes())) + 1
	rec := adapters.Record{}
	for _, pair := range strings.Split(d.sc.Text(), d.sep) {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			// A malformed record: report it; the caller may go on.
			return nil, &adapters.RecordError{Record: d.rec, Line: d.line, Offset: d.start, Err: fmt.Errorf("%q is not key=value", pair)}
		}
		rec[k] = v
	}
	return rec, nil
}

func (d *kvDecoder) Position() (record, line, offset int64) { return d.rec, d.line, d.off }

type kvEncoder struct {
	sep string
	w   *bufio.Writer
}

func (e *kvEncoder) Encode(rec adapters.Record) error {
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			e.w.WriteString(e.sep)
		}
		fmt.Fprintf(e.w, "%s=%v", k, rec[k])
	}
	return e.w.WriteByte('\n')
}

func (e *kvEncoder) Flush() error { return e.w.Flush() }
func (e *kvEncoder) Close() error { return e.w.Flush() }

func init() {
	adapters.RegisterCodec("example_kv", &adapters.Spec{
		Summary: "key=value lines.",
		Fields:  []adapters.Field{{Name: "separator", Type: adapters.TypeString, Default: ";", Description: "Between pairs."}},
	}, func(conf *adapters.Config) (adapters.Codec, error) {
		return kvCodec{sep: conf.String("separator")}, nil
	})
}

// A codec is built once from its configuration ("kv" or {type: kv, ...})
// and shared; its decoders report a malformed record as a *RecordError and
// go on with the next.
func Example_codec() {
	codec, err := adapters.NewCodec(map[string]any{"type": "example_kv", "separator": ";"}, adapters.DecodeOptions{Path: "codec"})
	if err != nil {
		panic(err)
	}
	dec := codec.NewDecoder(strings.NewReader("id=1;name=Ada\nbroken\nid=3;name=Grace\n"))
	for {
		rec, err := dec.Decode()
		var re *adapters.RecordError
		switch {
		case errors.Is(err, io.EOF):
			var out strings.Builder
			enc := codec.NewEncoder(&out, adapters.EncoderOptions{})
			_ = enc.Encode(adapters.Record{"name": "Linus", "id": int64(4)})
			_ = enc.Close()
			fmt.Print("encoded: ", out.String())
			return
		case errors.As(err, &re):
			fmt.Println("skipped:", re)
			continue
		case err != nil:
			panic(err)
		}
		fmt.Println(rec["id"], rec["name"])
	}
	// Output:
	// 1 Ada
	// skipped: record 2 (line 2, byte offset 14): "broken" is not key=value
	// 3 Grace
	// encoded: id=4;name=Linus
}
