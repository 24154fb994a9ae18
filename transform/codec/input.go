package codec

import (
	"bytes"
	"io"
)

// input is a buffered reader of decoded (UTF-8) text that knows the offset
// of its next byte in the original stream and the number of the line it is
// on. Decoders own one input each; it is not safe for concurrent use.
type input struct {
	src  io.Reader // nil until the first read opens it
	open func() (io.Reader, int64, error)
	cs   charset
	buf  []byte
	r, w int
	err  error // sticky error of src, io.EOF at the end
	off  int64 // offset in the original stream of buf[r]
	line int64 // 1-based line number of buf[r]
	// For charsets other than UTF-8: the input read so far, to make the
	// offset exact at the end even after a truncated character.
	raw   *countReader
	base  int64
	clamp int64 // correction made at the end, undone by unread
}

const inputBufSize = 64 << 10

func newInput(r io.Reader, cs charset) *input {
	in := &input{cs: cs, line: 1}
	in.open = func() (io.Reader, int64, error) {
		if cs.kind != csUTF8 {
			in.raw = &countReader{r: r}
			in.base = in.off
			r = in.raw
		}
		return cs.open(r, in.off == 0)
	}
	return in
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// setStart moves the origin: the stream begins at offset off, on the line
// after line or, with midLine, still on line (formats whose records end
// inside a line).
func (in *input) setStart(off, line int64, midLine bool) {
	in.off = off
	in.line = line + 1
	if midLine {
		in.line = line
	}
}

// fill reads more input, keeping buf[r:w]. It returns false when nothing
// more can be read (in.err is set).
func (in *input) fill() bool {
	if in.err != nil {
		return false
	}
	if in.src == nil {
		src, skipped, err := in.open()
		if err != nil {
			in.err = err
			return false
		}
		in.src, in.off = src, in.off+skipped
		in.buf = make([]byte, inputBufSize)
	}
	if in.r > 0 {
		n := copy(in.buf, in.buf[in.r:in.w])
		in.r, in.w = 0, n
	}
	if in.w == len(in.buf) {
		nb := make([]byte, 2*len(in.buf))
		copy(nb, in.buf[:in.w])
		in.buf = nb
	}
	for i := 0; i < 100; i++ {
		n, err := in.src.Read(in.buf[in.w:])
		in.w += n
		if err != nil {
			in.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	in.err = io.ErrNoProgress
	return false
}

// consume advances past n buffered bytes that hold lines newlines.
func (in *input) consume(n int, lines int64) {
	in.off += in.cs.rawLen(in.buf[in.r : in.r+n])
	in.line += lines
	in.r += n
	if in.raw != nil && in.r == in.w && in.err == io.EOF {
		end := in.base + in.raw.n
		in.clamp, in.off = end-in.off, end
	}
}

// readLine returns the next line including its "\n" (absent on the last line
// of a stream without one). The slice is valid until the next call. A line
// longer than max bytes is skipped up to its end and reported with
// tooLong; its bytes are counted in the offset but not returned. At the end
// of input it returns io.EOF (or the reader's error) and no line.
func (in *input) readLine(max int) (line []byte, tooLong bool, err error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(in.buf[in.r+scanned:in.w], '\n'); i >= 0 {
			n := scanned + i + 1
			if tooLong || n > max {
				in.consume(n, 1)
				return nil, true, nil
			}
			line = in.buf[in.r : in.r+n]
			in.consume(n, 1)
			return line, false, nil
		}
		scanned = in.w - in.r
		if scanned > max {
			// Drop what we have of the long line; keep counting.
			in.consume(scanned, 0)
			scanned = 0
			tooLong = true
		}
		if !in.fill() {
			if in.err != io.EOF {
				return nil, false, in.err
			}
			if in.w > in.r || tooLong {
				n := in.w - in.r
				if tooLong || n > max {
					in.consume(n, 1)
					return nil, true, nil
				}
				line = in.buf[in.r:in.w]
				in.consume(n, 1)
				return line, false, nil
			}
			return nil, false, in.err
		}
	}
}

// unread puts back b, the most recently consumed bytes, holding lines
// newlines, so that they are read again.
func (in *input) unread(b []byte, lines int64) {
	if len(b) == 0 {
		return
	}
	nb := make([]byte, 0, len(b)+in.w-in.r+inputBufSize)
	nb = append(nb, b...)
	nb = append(nb, in.buf[in.r:in.w]...)
	in.buf, in.r, in.w = nb[:cap(nb)], 0, len(nb)
	in.off -= in.clamp + in.cs.rawLen(b)
	in.clamp = 0
	in.line -= lines
}

// trimEOL removes a trailing "\n" and the "\r"s before it ("\r\r\n" is a
// common artifact of converting line endings twice).
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	for n := len(b); n > 0 && b[n-1] == '\r'; n-- {
		b = b[:n-1]
	}
	return b
}
