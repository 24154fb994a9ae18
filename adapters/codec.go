package adapters

import "io"

// Codec turns bytes into records (at sources) and records into bytes (at
// sinks). A Codec is built once from its configuration and shared: it must be
// safe for concurrent use; the decoders and encoders it returns are not.
type Codec interface {
	// NewDecoder returns a decoder reading records from r. The decoder does
	// not close r.
	NewDecoder(r io.Reader) Decoder
	// NewEncoder returns an encoder writing records to w. With opts.Append
	// the output continues a stream an earlier encoder wrote (a temp file
	// resumed after a crash): no header is written again.
	NewEncoder(w io.Writer, opts EncoderOptions) Encoder
}

// EncoderOptions tune a new Encoder.
type EncoderOptions struct {
	// Append continues an existing, non-empty stream: headers and opening
	// brackets were written before.
	Append bool
}

// Decoder reads records one at a time.
type Decoder interface {
	// Decode returns the next record. At the end of the input it returns
	// io.EOF. A malformed record yields a *RecordError; the caller may call
	// Decode again to continue after it. Any other error ends decoding.
	// The returned record belongs to the caller.
	Decode() (Record, error)
	// Position returns the 1-based number of the last record returned (or
	// failed), its line number (0 if the format has no lines) and the byte
	// offset just past it, from which decoding could resume.
	Position() (record, line, offset int64)
}

// Encoder writes records to a stream.
type Encoder interface {
	// Encode writes one record. Output may be buffered until Flush or Close.
	Encode(rec Record) error
	// Flush writes buffered output to the underlying writer.
	Flush() error
	// Close writes any trailer (closing bracket, root end tag) and flushes.
	// It does not close the underlying writer.
	Close() error
}

// CodecFactory builds a codec from its decoded configuration. It may read
// files the configuration names (a copybook, a layout): codecs are built at
// validation time so that such files are checked early.
type CodecFactory func(conf *Config) (Codec, error)

// NoCodec is the codec type name meaning "do not decode": the whole input is
// one message carried in Message.Raw.
const NoCodec = "none"

// ReaderAtOffset is an optional capability of decoders that can start in the
// middle of a stream, at a record boundary returned by Position: tailing
// sources resume with it after a restart.
type ReaderAtOffset interface {
	// SetStart tells the decoder that its input begins at byte offset off of
	// the original stream, with line numbers continuing after line.
	SetStart(off, line int64)
}
