package codec

import "errors"

var (
	// ErrLineTooLong reports a line or record longer than the codec's limit
	// (max_line_bytes, max_record_bytes). It is wrapped in a RecordError and
	// decoding continues after the offending line or record.
	ErrLineTooLong = errors.New("record too long")
	// ErrNotWellFormed reports a JSON or XML document whose structure is
	// broken, so that no further record can be found in it.
	ErrNotWellFormed = errors.New("document is not well-formed")
	// ErrUnsupportedValue reports a record value an encoder cannot write.
	ErrUnsupportedValue = errors.New("unsupported value")
)
