package codec

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/internal/box"
)

func init() {
	adapters.RegisterCodec("csv", csvSpec, newCSVCodec)
}

var csvSpec = &adapters.Spec{
	Summary: "Delimited text: RFC 4180 CSV, Excel CSV, TSV and custom dialects, in several character sets.",
	Description: "Each row becomes a record of strings keyed by the header row (`header: true`) or by `columns`, or `col1`, `col2`, ... without either. " +
		"Quoted fields may hold delimiters, quotes (doubled, or after `escape`) and line breaks. Empty lines are skipped. " +
		"A malformed row (an unterminated quote, a stray quote without `lazy_quotes`, a wrong field count with `strict_columns`) is a malformed record with its line number and byte offset; decoding goes on with the next row " +
		"(after an unterminated quote, with the line after the row's first line). " +
		"The encoder writes a header row first unless `header: false` or appending; its columns are `columns`, or the keys of the first record in natural order (col2 before col10). Keys outside the columns are not written.",
	Fields: []adapters.Field{
		{Name: "dialect", Type: adapters.TypeString, Default: "rfc4180", Enum: []string{"rfc4180", "excel", "tsv"},
			Description: "Preset: `rfc4180` (comma, double quote, CRLF written), `excel` (comma, CRLF, UTF-8 BOM written and skipped on input; set `delimiter: \";\"` for European locales), `tsv` (tab, double quote, LF written). Other options override the preset.", Example: "excel"},
		{Name: "delimiter", Type: adapters.TypeString, Optional: true, Description: "Field separator, one ASCII character (`\\t` for tab). Default: from the dialect.", Example: ";"},
		{Name: "quote", Type: adapters.TypeString, Default: `"`, Description: "Quote character, one ASCII character, or empty for none.", Example: "'"},
		{Name: "escape", Type: adapters.TypeString, Default: "", Description: "Escape character (for example a backslash): the character after it is taken literally, inside quotes or not. Empty means quotes inside quoted fields are doubled.", Example: `\`},
		{Name: "comment", Type: adapters.TypeString, Default: "", Description: "Lines starting with this character are skipped.", Example: "#"},
		{Name: "header", Type: adapters.TypeBool, Default: true, Description: "The first row (after `skip_rows`) names the columns; the encoder writes it.", Example: false},
		{Name: "columns", Type: adapters.TypeStrings, Optional: true, Description: "Column names by position. With `header: true` the header row is read and replaced by these names; resuming a stream in the middle (a tailing source) needs them.", Example: []string{"order_no", "customer", "amount"}},
		{Name: "trim", Type: adapters.TypeBool, Default: false, Description: "Remove spaces and tabs around fields (outside quotes).", Example: true},
		{Name: "lazy_quotes", Type: adapters.TypeBool, Default: false, Description: "Accept a quote inside an unquoted field, and a quote not followed by a delimiter inside a quoted field, as literal characters.", Example: true},
		{Name: "strict_columns", Type: adapters.TypeBool, Default: false, Description: "A row with more or fewer fields than the columns is malformed. Otherwise missing fields are absent from the record and extra fields are named col<N>.", Example: true},
		{Name: "skip_rows", Type: adapters.TypeInt, Default: 0, Description: "Number of lines to skip at the start of the stream, before the header.", Example: 2},
		charsetField(),
		{Name: "infer_types", Type: adapters.TypeBool, Default: false, Description: "Turn fields that look like JSON numbers into int64 or float64 (or decimals with `decimal_numbers`), and true/false into booleans. Numbers with leading zeros stay strings.", Example: true},
		decimalField,
		sizeField("max_record_bytes", "Longest row accepted, line breaks in quoted fields included; a longer row is malformed.", "4MiB"),
		{Name: "line_ending", Type: adapters.TypeString, Optional: true, Enum: []string{"lf", "crlf"}, Description: "Line ending the encoder writes. Default: from the dialect.", Example: "lf"},
		{Name: "bom", Type: adapters.TypeBool, Optional: true, Description: "Write a UTF-8 byte-order mark at the start of a new stream. Default: true for excel.", Example: true},
		{Name: "quote_all", Type: adapters.TypeBool, Default: false, Description: "Quote every field the encoder writes, not only those that need it.", Example: true},
	},
	Example: `codec: {type: csv, dialect: excel, delimiter: ";", charset: windows-1252}`,
}

// csvCodec is an immutable CSV configuration.
type csvCodec struct {
	delim, quote, escape, comment byte // 0: none
	header, trim, lazy, strict    bool
	columns                       []string
	skipRows                      int
	cs                            charset
	infer, decimals               bool
	max                           int
	eol                           string
	bom, quoteAll                 bool
}

func newCSVCodec(conf *adapters.Config) (adapters.Codec, error) {
	c := &csvCodec{delim: ',', quote: '"', eol: "\r\n"}
	switch conf.String("dialect") {
	case "excel":
		c.bom = true
	case "tsv":
		c.delim, c.eol = '\t', "\n"
	}
	var err error
	if conf.Has("delimiter") {
		if c.delim, err = csvChar(conf.String("delimiter"), false); err != nil {
			return nil, conf.Errorf("delimiter", "%v", err)
		}
	}
	if c.quote, err = csvChar(conf.String("quote"), true); err != nil {
		return nil, conf.Errorf("quote", "%v", err)
	}
	if c.escape, err = csvChar(conf.String("escape"), true); err != nil {
		return nil, conf.Errorf("escape", "%v", err)
	}
	if c.comment, err = csvChar(conf.String("comment"), true); err != nil {
		return nil, conf.Errorf("comment", "%v", err)
	}
	if c.quote != 0 && c.quote == c.delim {
		return nil, conf.Errorf("quote", "must differ from the delimiter %q", c.delim)
	}
	if c.escape != 0 && (c.escape == c.delim || c.escape == c.quote) {
		return nil, conf.Errorf("escape", "must differ from the delimiter and the quote")
	}
	if c.comment != 0 && (c.comment == c.delim || c.comment == c.quote) {
		return nil, conf.Errorf("comment", "must differ from the delimiter and the quote")
	}
	if c.cs, err = parseCharset(conf.String("charset")); err != nil {
		return nil, conf.Errorf("charset", "%v", err)
	}
	c.header, c.trim, c.lazy, c.strict = conf.Bool("header"), conf.Bool("trim"), conf.Bool("lazy_quotes"), conf.Bool("strict_columns")
	c.columns = conf.Strings("columns")
	if c.skipRows = conf.Int("skip_rows"); c.skipRows < 0 {
		return nil, conf.Errorf("skip_rows", "must be zero or more, got %d", c.skipRows)
	}
	c.infer, c.decimals = conf.Bool("infer_types"), conf.Bool("decimal_numbers")
	c.max = maxBytes(conf, "max_record_bytes")
	if conf.Has("line_ending") {
		c.eol = eolOf(conf.String("line_ending"))
	}
	if conf.Has("bom") {
		c.bom = conf.Bool("bom")
	}
	c.quoteAll = conf.Bool("quote_all")
	if c.quote == 0 && c.quoteAll {
		return nil, conf.Errorf("quote_all", "needs a quote character")
	}
	seen := map[string]bool{}
	for _, col := range c.columns {
		if col == "" || seen[col] {
			return nil, conf.Errorf("columns", "column names must be unique and not empty, got %q", col)
		}
		seen[col] = true
	}
	return c, nil
}

// csvChar parses a one-character option; `\t` and "tab" mean a tab.
func csvChar(s string, emptyOK bool) (byte, error) {
	switch s {
	case `\t`, "tab":
		return '\t', nil
	case "":
		if emptyOK {
			return 0, nil
		}
		return 0, errors.New("must be one character, got an empty string")
	}
	if len(s) != 1 || s[0] >= 0x80 || s[0] == '\n' || s[0] == '\r' {
		return 0, fmt.Errorf("must be one ASCII character other than a line break, got %q", s)
	}
	return s[0], nil
}

func (c *csvCodec) NewDecoder(r io.Reader) adapters.Decoder {
	return &csvDecoder{c: c, in: newInput(r, c.cs)}
}

type csvDecoder struct {
	position
	c       *csvCodec
	in      *input
	names   []string
	started bool
	resumed bool
	fatal   error
	out     []byte // field contents of the current row
	spans   []int  // start and end of each field in out
	extra   []byte // continuation lines of the current row, to put back
	nlines  int64  // lines of the current row
	lost    bool   // a line of the current row was too long and is gone
	box     box.Arena
}

var (
	_ adapters.Decoder        = (*csvDecoder)(nil)
	_ adapters.ReaderAtOffset = (*csvDecoder)(nil)
)

func (d *csvDecoder) SetStart(off, line int64) {
	d.in.setStart(off, line, false)
	d.off, d.line = off, line
	d.resumed = off > 0
}

// start skips the leading rows and reads the header.
func (d *csvDecoder) start() error {
	d.started = true
	d.names = d.c.columns
	if d.resumed {
		if d.c.header && len(d.c.columns) == 0 {
			d.fatal = errors.New("csv: cannot resume in the middle of a stream with header: true and no columns: set columns")
		}
		return d.fatal
	}
	for i := 0; i < d.c.skipRows; i++ {
		if _, _, err := d.in.readLine(d.c.max); err != nil {
			return err
		}
	}
	if !d.c.header {
		return nil
	}
	for {
		ok, err := d.row()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			var re *adapters.RecordError
			if errors.As(err, &re) {
				d.fatal = fmt.Errorf("csv: header row at line %d: %v", d.in.line-1, re.Err)
			} else {
				d.fatal = fmt.Errorf("csv: header row: %w", err)
			}
			return d.fatal
		}
		if !ok {
			continue
		}
		break
	}
	d.off, d.line = d.in.off, d.in.line-1
	if len(d.c.columns) > 0 {
		return nil
	}
	s := string(d.out)
	names := make([]string, len(d.spans)/2)
	seen := make(map[string]bool, len(names))
	for i := range names {
		name := s[d.spans[2*i]:d.spans[2*i+1]]
		if name == "" {
			name = "col" + strconv.Itoa(i+1)
		}
		for base, n := name, 2; seen[name]; n++ {
			name = base + "_" + strconv.Itoa(n)
		}
		seen[name] = true
		names[i] = name
	}
	d.names = names
	return nil
}

func (d *csvDecoder) Decode() (adapters.Record, error) {
	if d.fatal != nil {
		return nil, d.fatal
	}
	if !d.started {
		if err := d.start(); err != nil {
			return nil, err
		}
	}
	for {
		startOff, startLine := d.in.off, d.in.line
		ok, err := d.row()
		if err != nil {
			var re *adapters.RecordError
			if errors.As(err, &re) {
				d.rec, d.line, d.off = d.rec+1, d.in.line-1, d.in.off
				re.Record, re.Line, re.Offset = d.rec, startLine, startOff
			}
			return nil, err
		}
		if !ok {
			continue
		}
		if d.c.strict && len(d.spans)/2 != len(d.names) {
			d.rec, d.line, d.off = d.rec+1, d.in.line-1, d.in.off
			return nil, &adapters.RecordError{Record: d.rec, Line: startLine, Offset: startOff,
				Err: fmt.Errorf("want %d fields, got %d", len(d.names), len(d.spans)/2)}
		}
		d.rec, d.line, d.off = d.rec+1, d.in.line-1, d.in.off
		return d.record(), nil
	}
}

// record builds the record of the current row: one string holds every
// field and the values are slices of it.
func (d *csvDecoder) record() adapters.Record {
	s := string(d.out)
	n := len(d.spans) / 2
	rec := make(adapters.Record, n)
	for i := 0; i < n; i++ {
		v := s[d.spans[2*i]:d.spans[2*i+1]]
		var name string
		if i < len(d.names) {
			name = d.names[i]
		} else {
			name = "col" + strconv.Itoa(i+1)
		}
		if d.c.infer {
			rec[name] = inferValue(v, d.c.decimals, &d.box)
		} else {
			rec[name] = d.box.String(v)
		}
	}
	return rec
}

// csvRowError is a malformed row; Decode fills in where it is.
func csvRowError(format string, args ...any) error {
	return &adapters.RecordError{Err: fmt.Errorf(format, args...)}
}

// row parses the next row into d.out and d.spans. It returns false for a
// line that holds no row (empty, a comment).
func (d *csvDecoder) row() (bool, error) {
	line, tooLong, err := d.in.readLine(d.c.max)
	if err != nil {
		return false, err
	}
	if tooLong {
		return false, csvRowError("%w: line longer than max_record_bytes (%d)", ErrLineTooLong, d.c.max)
	}
	body := trimEOL(line)
	if len(body) == 0 || (d.c.comment != 0 && body[0] == d.c.comment) {
		return false, nil
	}
	d.out, d.spans, d.extra, d.nlines, d.lost = d.out[:0], d.spans[:0], d.extra[:0], 1, false
	c := d.c
	if (c.quote == 0 || bytes.IndexByte(body, c.quote) < 0) && (c.escape == 0 || bytes.IndexByte(body, c.escape) < 0) && !c.trim {
		// Fast path: no quotes, no escapes.
		d.out = append(d.out, body...)
		base := 0
		for {
			i := bytes.IndexByte(d.out[base:], c.delim)
			if i < 0 {
				d.spans = append(d.spans, base, len(d.out))
				return true, nil
			}
			d.spans = append(d.spans, base, base+i)
			base += i + 1
		}
	}
	if err = d.slowRow(line); err != nil && d.nlines > 1 && !d.lost {
		if _, malformed := err.(*adapters.RecordError); malformed {
			// Only the first line is taken as broken: the lines after it
			// may well be good rows (an unbalanced quote swallowed them).
			d.in.unread(d.extra, d.nlines-1)
		}
	}
	return true, err
}

func isSpace(c, delim byte) bool { return (c == ' ' || c == '\t') && c != delim }

// slowRow parses a row with quotes, escapes or trimming; it reads more lines
// while a quoted field is open.
func (d *csvDecoder) slowRow(line []byte) error {
	c := d.c
	text := line
	i := 0
	for {
		// Start of a field.
		fieldStart := len(d.out)
		if c.trim {
			for i < len(text) && isSpace(text[i], c.delim) {
				i++
			}
		}
		if c.quote != 0 && i < len(text) && text[i] == c.quote {
			i++
			for {
				// Inside quotes.
				j := i
				for j < len(text) && text[j] != c.quote && (c.escape == 0 || text[j] != c.escape) {
					j++
				}
				d.out = append(d.out, text[i:j]...)
				if j == len(text) {
					next, err := d.moreLine()
					if err != nil {
						return err
					}
					text, i = next, 0
					continue
				}
				if text[j] == c.escape {
					if j+1 < len(text) {
						d.out = append(d.out, text[j+1])
						i = j + 2
						continue
					}
					i = j + 1
					continue
				}
				// A quote: doubled, closing, or stray.
				if j+1 < len(text) && text[j+1] == c.quote {
					d.out = append(d.out, c.quote)
					i = j + 2
					continue
				}
				k := j + 1
				if c.trim {
					for k < len(text) && isSpace(text[k], c.delim) {
						k++
					}
				}
				if k == len(text) || text[k] == c.delim || text[k] == '\n' || (text[k] == '\r' && k+1 < len(text) && text[k+1] == '\n') {
					i = k
					break
				}
				if !c.lazy {
					return csvRowError("unexpected %q after the closing quote of field %d", text[k], len(d.spans)/2+1)
				}
				d.out = append(d.out, c.quote)
				i = j + 1
			}
		} else {
			// Unquoted field.
			for i < len(text) {
				b := text[i]
				if b == c.delim || b == '\n' || (b == '\r' && i+1 < len(text) && text[i+1] == '\n') {
					break
				}
				if b == c.escape && c.escape != 0 && i+1 < len(text) {
					d.out = append(d.out, text[i+1])
					i += 2
					if i == len(text) && text[i-1] == '\n' {
						// An escaped line break: the field goes on.
						next, err := d.moreLine()
						if err != nil {
							return err
						}
						text, i = next, 0
					}
					continue
				}
				if b == c.quote && c.quote != 0 && !c.lazy {
					return csvRowError("bare %q in unquoted field %d (set lazy_quotes to accept it)", b, len(d.spans)/2+1)
				}
				d.out = append(d.out, b)
				i++
			}
			if c.trim {
				for len(d.out) > fieldStart && isSpace(d.out[len(d.out)-1], c.delim) {
					d.out = d.out[:len(d.out)-1]
				}
			}
		}
		d.spans = append(d.spans, fieldStart, len(d.out))
		if i < len(text) && text[i] == c.delim {
			i++
			continue
		}
		return nil
	}
}

// moreLine reads the next line of a row whose quoted field goes on. When
// there is none, or the row grows too long, the row is malformed (and row
// puts the lines after its first back to be read again).
func (d *csvDecoder) moreLine() ([]byte, error) {
	next, tooLong, err := d.in.readLine(d.c.max)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if tooLong {
		d.lost = true
		return nil, csvRowError("%w: row longer than max_record_bytes (%d)", ErrLineTooLong, d.c.max)
	}
	if err == io.EOF || len(d.extra)+len(next) > d.c.max {
		if err == nil {
			d.extra = append(d.extra, next...)
			d.nlines++
		}
		if err == io.EOF {
			return nil, csvRowError("field %d is not terminated before the end of input", len(d.spans)/2+1)
		}
		return nil, csvRowError("%w: field %d is not terminated within max_record_bytes (%d)", ErrLineTooLong, len(d.spans)/2+1, d.c.max)
	}
	d.extra = append(d.extra, next...)
	d.nlines++
	return d.extra[len(d.extra)-len(next):], nil
}

// NewEncoder returns a CSV encoder.
func (c *csvCodec) NewEncoder(w io.Writer, opts adapters.EncoderOptions) adapters.Encoder {
	return &csvEncoder{c: c, out: newOutput(w, c.cs), cols: c.columns, started: opts.Append}
}

type csvEncoder struct {
	c       *csvCodec
	out     *output
	cols    []string
	started bool
	buf     []byte
	field   []byte
}

func (e *csvEncoder) Encode(rec adapters.Record) error {
	cols := e.cols
	if cols == nil {
		cols = make([]string, 0, len(rec))
		for k := range rec {
			cols = append(cols, k)
		}
		slices.SortFunc(cols, naturalCompare)
	}
	b := e.buf[:0]
	var err error
	if !e.started && e.c.header {
		for i, col := range cols {
			if b, err = e.appendField(b, i, []byte(col)); err != nil {
				return encodeError("csv", fmt.Errorf("header: %w", err))
			}
		}
		b = append(b, e.c.eol...)
	}
	for i, col := range cols {
		e.field, err = appendText(e.field[:0], rec[col])
		if err != nil {
			return encodeError("csv", fmt.Errorf("field %q: %w", col, err))
		}
		if len(cols) == 1 && len(e.field) == 0 && e.c.quote != 0 {
			// A lone empty field would be an empty line, which readers skip.
			b = append(b, e.c.quote, e.c.quote)
			continue
		}
		if b, err = e.appendField(b, i, e.field); err != nil {
			return encodeError("csv", fmt.Errorf("field %q: %w", col, err))
		}
	}
	b = append(b, e.c.eol...)
	e.buf = b
	if !e.started {
		if err := e.out.writeBOM(e.c.bom); err != nil {
			return err
		}
	}
	if err := e.out.write(b); err != nil {
		return err
	}
	e.started, e.cols = true, cols
	return nil
}

// appendField appends field number i (0-based) with its leading delimiter,
// quoted or escaped as needed.
func (e *csvEncoder) appendField(b []byte, i int, s []byte) ([]byte, error) {
	c := e.c
	if i > 0 {
		b = append(b, c.delim)
	}
	need := c.quoteAll
	for j := 0; j < len(s) && !need; j++ {
		switch ch := s[j]; {
		case ch == c.delim, ch == '\n', ch == '\r', ch == c.quote && c.quote != 0, ch == c.escape && c.escape != 0:
			need = true
		}
	}
	if !need && len(s) > 0 && (isSpace(s[0], c.delim) || isSpace(s[len(s)-1], c.delim) || (c.comment != 0 && i == 0 && s[0] == c.comment)) {
		need = true
	}
	if !need {
		return append(b, s...), nil
	}
	if c.quote == 0 {
		if c.escape == 0 {
			return b, fmt.Errorf("%w: %q needs quoting but the dialect has no quote or escape character", ErrUnsupportedValue, s)
		}
		for j := 0; j < len(s); j++ {
			if ch := s[j]; ch == c.delim || ch == '\n' || ch == '\r' || ch == c.escape || (i == 0 && j == 0 && ch == c.comment) {
				b = append(b, c.escape)
			}
			b = append(b, s[j])
		}
		return b, nil
	}
	b = append(b, c.quote)
	for j := 0; j < len(s); j++ {
		switch ch := s[j]; {
		case ch == c.quote && c.escape != 0:
			b = append(b, c.escape, ch)
		case ch == c.quote:
			b = append(b, ch, ch)
		case ch == c.escape && c.escape != 0:
			b = append(b, ch, ch)
		default:
			b = append(b, ch)
		}
	}
	return append(b, c.quote), nil
}

func (e *csvEncoder) Flush() error { return e.out.flush() }
func (e *csvEncoder) Close() error { return e.out.flush() }

// naturalCompare orders strings with runs of digits compared as numbers,
// so that col2 comes before col10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			if c := cmp.Compare(da, db); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
