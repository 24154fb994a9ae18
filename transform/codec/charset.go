package codec

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/sluicehq/sluice/adapters"
)

// Charsets are the character sets the text codecs read and write.
var charsetNames = []string{"utf-8", "utf-16", "utf-16le", "utf-16be", "windows-1252", "iso-8859-1", "iso-8859-15"}

type charsetKind int

const (
	csUTF8   charsetKind = iota
	csSingle             // one byte per character: windows-1252, iso-8859-*
	csUTF16
)

// charset is a parsed charset option. Decoders turn the input into UTF-8
// and count, for every decoded byte they consume, the input bytes it came
// from, so that offsets stay exact in the original stream.
type charset struct {
	name string
	kind charsetKind
	enc  encoding.Encoding // nil for UTF-8
	// utf-16 only: bigEndian is the byte order to assume without a BOM;
	// detect lets a BOM decide.
	bigEndian bool
	detect    bool
}

func parseCharset(name string) (charset, error) {
	switch name {
	case "", "utf-8":
		return charset{name: "utf-8", kind: csUTF8}, nil
	case "utf-16":
		return charset{name: name, kind: csUTF16, detect: true}, nil
	case "utf-16le":
		return charset{name: name, kind: csUTF16}, nil
	case "utf-16be":
		return charset{name: name, kind: csUTF16, bigEndian: true}, nil
	case "windows-1252":
		return charset{name: name, kind: csSingle, enc: charmap.Windows1252}, nil
	case "iso-8859-1":
		return charset{name: name, kind: csSingle, enc: charmap.ISO8859_1}, nil
	case "iso-8859-15":
		return charset{name: name, kind: csSingle, enc: charmap.ISO8859_15}, nil
	}
	return charset{}, fmt.Errorf("unknown charset %q", name)
}

func (c charset) utf16(bigEndian bool, bom unicode.BOMPolicy) encoding.Encoding {
	if bigEndian {
		return unicode.UTF16(unicode.BigEndian, bom)
	}
	return unicode.UTF16(unicode.LittleEndian, bom)
}

// rawLen returns how many input bytes produced the decoded UTF-8 bytes b.
// It is exact for any split of the decoded stream: single-byte charsets give
// one character per input byte, UTF-16 two bytes per character below U+10000
// and four above (a four-byte UTF-8 sequence).
func (c charset) rawLen(b []byte) int64 {
	switch c.kind {
	case csSingle:
		n := 0
		for _, x := range b {
			if x&0xC0 != 0x80 {
				n++
			}
		}
		return int64(n)
	case csUTF16:
		n := 0
		for _, x := range b {
			if x&0xC0 != 0x80 {
				n += 2
				if x >= 0xF0 {
					n += 2
				}
			}
		}
		return int64(n)
	}
	return int64(len(b))
}

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// open prepares r for decoding: it skips a byte-order mark when atStart and
// returns a reader of UTF-8 text and the number of input bytes skipped.
func (c charset) open(r io.Reader, atStart bool) (io.Reader, int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var skipped int64
	if atStart {
		head, err := br.Peek(3)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			if len(head) == 0 {
				return nil, 0, err
			}
		}
		switch {
		case c.kind != csUTF16 && bytes.HasPrefix(head, bomUTF8):
			skipped = 3
		case c.kind == csUTF16 && bytes.HasPrefix(head, bomUTF16LE) && (c.detect || !c.bigEndian):
			skipped = 2
			c.bigEndian = false
		case c.kind == csUTF16 && bytes.HasPrefix(head, bomUTF16BE) && (c.detect || c.bigEndian):
			skipped = 2
			c.bigEndian = true
		}
		if _, err := br.Discard(int(skipped)); err != nil {
			return nil, 0, err
		}
	}
	switch c.kind {
	case csUTF8:
		return br, skipped, nil
	case csUTF16:
		return newUTF16Reader(br, c.bigEndian), skipped, nil
	}
	return transform.NewReader(br, c.enc.NewDecoder()), skipped, nil
}

// output writes encoded records: UTF-8 text goes through the charset's
// encoder one record at a time, so that a character the charset cannot hold
// fails that record only.
type output struct {
	w   *bufio.Writer
	cs  charset
	enc *encoding.Encoder
	buf []byte
}

func newOutput(w io.Writer, cs charset) *output {
	o := &output{w: bufio.NewWriterSize(w, 64<<10), cs: cs}
	switch cs.kind {
	case csSingle:
		o.enc = cs.enc.NewEncoder()
	case csUTF16:
		o.enc = cs.utf16(cs.bigEndian, unicode.IgnoreBOM).NewEncoder()
	}
	return o
}

// writeBOM writes the charset's byte-order mark (UTF-8 when asked for,
// UTF-16 always for charset utf-16).
func (o *output) writeBOM(utf8BOM bool) error {
	var err error
	switch {
	case o.cs.kind == csUTF8 && utf8BOM:
		_, err = o.w.Write(bomUTF8)
	case o.cs.kind == csUTF16 && o.cs.detect:
		_, err = o.w.Write(bomUTF16LE)
	}
	return err
}

// write converts UTF-8 text b to the output charset and buffers it.
func (o *output) write(b []byte) error {
	if o.enc == nil {
		_, err := o.w.Write(b)
		return err
	}
	out, _, err := transform.Append(o.enc, o.buf[:0], b)
	if err != nil {
		return adapters.PermanentError(fmt.Errorf("%w: text cannot be written in charset %s: %v", ErrUnsupportedValue, o.cs.name, err))
	}
	o.buf = out
	_, err = o.w.Write(out)
	return err
}

func (o *output) flush() error { return o.w.Flush() }

// charsetField is the spec of the charset option shared by the codecs.
func charsetField() adapters.Field {
	return adapters.Field{
		Name: "charset",
		Type: adapters.TypeString,
		Description: "Character set of the text. Decoders convert it to UTF-8 and encoders back; byte offsets always count bytes of the original stream. " +
			"`utf-16` reads the byte order from a byte-order mark (little-endian without one) and writes little-endian with a BOM; `utf-16le`/`utf-16be` skip a matching BOM on input and write none. A UTF-8 BOM is skipped on input.",
		Default: "utf-8",
		Enum:    charsetNames,
		Example: "windows-1252",
	}
}
