// Package framing splits a byte stream into records and writes records back:
// newline-delimited lines, fixed-length records, records whose length the
// caller finds while parsing them, and variable records with IBM record
// descriptor words (RDW). The fixed_width and copybook codecs share it.
//
// A Reader and a Writer belong to one goroutine.
package framing

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Format is how records are delimited.
type Format int

const (
	// Lines are records ended by a newline byte; the last may lack one.
	Lines Format = iota
	// Fixed records follow each other without separators. Their length is
	// Options.Length, or decided per record by the caller (Window/Consume).
	Fixed
	// RDW records start with a 4-byte record descriptor word whose first two
	// bytes hold the record length including the descriptor.
	RDW
)

// Options configure a Reader or Writer.
type Options struct {
	Format Format
	// Length of Fixed records. Zero means the caller sizes each record
	// with Window and Consume.
	Length int
	// Newlines are the bytes that end a line (one or two of them). A
	// carriage return just before the newline is dropped when StripCR is set.
	Newlines []byte
	StripCR  bool
	// SkipEmpty skips empty lines (they still count as lines).
	SkipEmpty bool
	// LittleEndian RDWs: the length is little-endian, either in bytes 0–1
	// (followed by two zero bytes) or, in a byte-swapped word, in bytes 2–3
	// (after two zero bytes). Big-endian RDWs hold it in bytes 0–1.
	LittleEndian bool
	// MaxRecord bounds a line or a window; 0 means 1 MiB.
	MaxRecord int
}

// ErrRecordTooLong reports a line longer than Options.MaxRecord; the reader
// skips the rest of it.
var ErrRecordTooLong = errors.New("record too long")

// TruncatedError reports a partial record at the end of the input.
type TruncatedError struct {
	Want, Got int
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("truncated record at end of input: want %d bytes, got %d", e.Want, e.Got)
}

// Reader returns the records of a stream.
type Reader struct {
	opts   Options
	src    io.Reader
	buf    []byte
	r, w   int
	err    error // sticky read error, returned once the buffer is drained
	delims [256]bool
	offset int64 // stream offset of buf[r]
	start  int64 // offset of the last record's start
	line   int64
}

// NewReader returns a Reader of src.
func NewReader(src io.Reader, opts Options) *Reader {
	if opts.MaxRecord <= 0 {
		opts.MaxRecord = 1 << 20
	}
	size := 64 << 10
	if opts.Length > size/4 {
		size = opts.Length * 4
	}
	rd := &Reader{opts: opts, src: src, buf: make([]byte, size)}
	for _, b := range opts.Newlines {
		rd.delims[b] = true
	}
	return rd
}

// SetStart makes offsets and line numbers continue from an earlier position:
// the input begins at byte off of the original stream, after line lines.
func (rd *Reader) SetStart(off, line int64) {
	rd.offset, rd.start, rd.line = off, off, line
}

// Offset returns the stream offset just past the last record returned or
// consumed.
func (rd *Reader) Offset() int64 { return rd.offset }

// Start returns the stream offset where the last record began.
func (rd *Reader) Start() int64 { return rd.start }

// Line returns the number of lines read (Lines format only).
func (rd *Reader) Line() int64 { return rd.line }

// fill reads more input so that at least n bytes are buffered, growing the
// buffer when needed. It returns false when the input ended (or failed)
// first; the bytes read are still buffered.
func (rd *Reader) fill(n int) bool {
	for rd.w-rd.r < n {
		if rd.err != nil {
			return false
		}
		if rd.r > 0 && (n > len(rd.buf)-rd.r || rd.w == len(rd.buf)) {
			copy(rd.buf, rd.buf[rd.r:rd.w])
			rd.w -= rd.r
			rd.r = 0
		}
		if n > len(rd.buf) {
			nb := make([]byte, max(n, 2*len(rd.buf)))
			copy(nb, rd.buf[:rd.w])
			rd.buf = nb
		}
		m, err := rd.src.Read(rd.buf[rd.w:])
		rd.w += m
		if err != nil {
			rd.err = err
		}
	}
	return true
}

func (rd *Reader) readErr() error {
	if rd.err == io.EOF {
		return io.EOF
	}
	return rd.err
}

// Next returns the next record: a line without its newline, a Fixed record
// of Options.Length bytes, or the data of an RDW record. The slice is valid
// until the next call. At the end of the input it returns io.EOF. A
// *TruncatedError or ErrRecordTooLong concerns one record; the caller may
// call Next again. Other errors come from the underlying reader.
func (rd *Reader) Next() ([]byte, error) {
	switch rd.opts.Format {
	case Lines:
		return rd.nextLine()
	case RDW:
		return rd.nextRDW()
	default:
		if rd.opts.Length <= 0 {
			return nil, errors.New("framing: Next on Fixed records without a length; use Window")
		}
		return rd.take(rd.opts.Length)
	}
}

func (rd *Reader) take(n int) ([]byte, error) {
	rd.start = rd.offset
	if err := rd.need(n); err != nil {
		return nil, err
	}
	rec := rd.buf[rd.r : rd.r+n]
	rd.consume(n)
	return rec, nil
}

// need buffers n bytes. When the input ends first it consumes the rest and
// returns a *TruncatedError, or io.EOF when nothing was left.
func (rd *Reader) need(n int) error {
	if rd.fill(n) {
		return nil
	}
	got := rd.w - rd.r
	if got == 0 {
		return rd.readErr()
	}
	if rd.err != io.EOF {
		return rd.err
	}
	rd.consume(got)
	return &TruncatedError{Want: n, Got: got}
}

// IsRecordError reports whether an error of Next concerns one record only
// (a truncated record, a line too long), so that reading may go on.
func IsRecordError(err error) bool {
	var te *TruncatedError
	return errors.As(err, &te) || errors.Is(err, ErrRecordTooLong)
}

func (rd *Reader) consume(n int) {
	rd.r += n
	rd.offset += int64(n)
}

func (rd *Reader) indexNewline(b []byte) int {
	if len(rd.opts.Newlines) == 1 {
		return bytes.IndexByte(b, rd.opts.Newlines[0])
	}
	for i, c := range b {
		if rd.delims[c] {
			return i
		}
	}
	return -1
}

func (rd *Reader) nextLine() ([]byte, error) {
	for {
		rd.start = rd.offset
		scanned := 0
		for {
			i := rd.indexNewline(rd.buf[rd.r+scanned : rd.w])
			if i >= 0 {
				end := rd.r + scanned + i
				line := rd.buf[rd.r:end]
				rd.consume(end + 1 - rd.r)
				rd.line++
				if len(line) > rd.opts.MaxRecord {
					return nil, ErrRecordTooLong
				}
				if rd.opts.StripCR && len(line) > 0 && line[len(line)-1] == '\r' {
					line = line[:len(line)-1]
				}
				if len(line) == 0 && rd.opts.SkipEmpty {
					break
				}
				return line, nil
			}
			scanned = rd.w - rd.r
			if scanned > rd.opts.MaxRecord {
				return nil, rd.skipLongLine()
			}
			if !rd.fill(scanned + 1) {
				if scanned == 0 {
					return nil, rd.readErr()
				}
				if rd.err != io.EOF {
					return nil, rd.err
				}
				line := rd.buf[rd.r:rd.w]
				rd.consume(scanned)
				rd.line++
				if rd.opts.StripCR && line[len(line)-1] == '\r' {
					line = line[:len(line)-1]
				}
				return line, nil
			}
		}
	}
}

// skipLongLine discards input up to and including the next newline.
func (rd *Reader) skipLongLine() error {
	for {
		if i := rd.indexNewline(rd.buf[rd.r:rd.w]); i >= 0 {
			rd.consume(i + 1)
			rd.line++
			return ErrRecordTooLong
		}
		rd.consume(rd.w - rd.r)
		if !rd.fill(1) {
			if rd.err != io.EOF {
				return rd.err
			}
			rd.line++
			return ErrRecordTooLong
		}
	}
}

// CorruptRDWError reports a record descriptor word that cannot be right; the
// rest of the stream cannot be framed.
type CorruptRDWError struct {
	Offset int64
	Header [4]byte
}

func (e *CorruptRDWError) Error() string {
	return fmt.Sprintf("invalid record descriptor word % X at byte offset %d (wrong rdw byte order, or not a variable-length file?)", e.Header[:], e.Offset)
}

func (rd *Reader) nextRDW() ([]byte, error) {
	rd.start = rd.offset
	if err := rd.need(4); err != nil {
		return nil, err
	}
	var h [4]byte
	copy(h[:], rd.buf[rd.r:rd.r+4])
	n, ok := rdwLength(h, rd.opts.LittleEndian)
	if !ok {
		return nil, &CorruptRDWError{Offset: rd.offset, Header: h}
	}
	if err := rd.need(n); err != nil {
		return nil, err
	}
	rec := rd.buf[rd.r+4 : rd.r+n]
	rd.consume(n)
	return rec, nil
}

func rdwLength(h [4]byte, little bool) (int, bool) {
	var n int
	switch {
	case !little:
		n = int(binary.BigEndian.Uint16(h[:2]))
		if h[2] != 0 || h[3] != 0 {
			return 0, false
		}
	case h[0] == 0 && h[1] == 0:
		n = int(binary.LittleEndian.Uint16(h[2:]))
	default:
		n = int(binary.LittleEndian.Uint16(h[:2]))
		if h[2] != 0 || h[3] != 0 {
			return 0, false
		}
	}
	return n, n >= 4
}

// Window returns up to max buffered bytes starting at the next record, for
// a caller that finds the record's length while parsing it; fewer only at
// the end of the input. It returns io.EOF when no byte is left. The caller
// then calls Consume with the record's length. The slice is valid until the
// next call.
func (rd *Reader) Window(max int) ([]byte, error) {
	rd.start = rd.offset
	if !rd.fill(max) {
		if rd.w == rd.r {
			return nil, rd.readErr()
		}
		if rd.err != io.EOF {
			return nil, rd.err
		}
		return rd.buf[rd.r:rd.w], nil
	}
	return rd.buf[rd.r : rd.r+max], nil
}

// Consume marks n bytes of the window as read.
func (rd *Reader) Consume(n int) { rd.consume(n) }

// Writer writes records.
type Writer struct {
	opts    Options
	w       *bufio.Writer
	newline []byte
}

// NewWriter returns a Writer to w. For Lines, newline is written after each
// record.
func NewWriter(w io.Writer, opts Options, newline []byte) *Writer {
	return &Writer{opts: opts, w: bufio.NewWriterSize(w, 64<<10), newline: newline}
}

// MaxRDWData is the largest record an RDW can describe.
const MaxRDWData = 0xFFFF - 4

// Write writes one record. It is written whole or, on a framing error, not
// at all.
func (fw *Writer) Write(rec []byte) error {
	switch fw.opts.Format {
	case Lines:
		if _, err := fw.w.Write(rec); err != nil {
			return err
		}
		_, err := fw.w.Write(fw.newline)
		return err
	case RDW:
		if len(rec) > MaxRDWData {
			return fmt.Errorf("record of %d bytes is too long for a record descriptor word (max %d)", len(rec), MaxRDWData)
		}
		var h [4]byte
		if fw.opts.LittleEndian {
			binary.LittleEndian.PutUint16(h[:2], uint16(len(rec)+4))
		} else {
			binary.BigEndian.PutUint16(h[:2], uint16(len(rec)+4))
		}
		if _, err := fw.w.Write(h[:]); err != nil {
			return err
		}
	}
	_, err := fw.w.Write(rec)
	return err
}

// Flush writes buffered records to the underlying writer.
func (fw *Writer) Flush() error { return fw.w.Flush() }
