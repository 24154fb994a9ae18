package fixedwidth

import (
	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/copybook/codepage"
)

// Name is the codec's type name in pipeline configs.
const Name = "fixed_width"

var fieldFields = []adapters.Field{
	{Name: "name", Type: adapters.TypeString, Description: "Field name in the record.", Example: "account"},
	{Name: "start", Type: adapters.TypeInt, Optional: true,
		Description: "1-based byte position of the field's first byte. Give `start` with `length`, or `width` alone to place the field right after the previous one.", Example: 11},
	{Name: "length", Type: adapters.TypeInt, Optional: true, Description: "Field length in bytes, with `start`."},
	{Name: "width", Type: adapters.TypeInt, Optional: true,
		Description: "Field length in bytes; the field starts right after the previous field (at 1 for the first)."},
	{Name: "type", Type: adapters.TypeString, Default: "string", Enum: []string{"string", "int", "decimal", "date", "bool"},
		Description: "Value type: string; int (int64); decimal (exact, with `scale` implied decimal places); date (time.Time in UTC, see `format`); bool (`true_value`/`false_value`). A blank number, date or bool, or a date of all zeros, is null."},
	{Name: "scale", Type: adapters.TypeInt, Default: int64(0),
		Description: "Decimal: implied decimal places. `0012340` with scale 2 is 123.40. Text with an explicit point (`123.40`) is read as written."},
	{Name: "explicit_point", Type: adapters.TypeBool, Default: false,
		Description: "Decimal: the decimal point is written (`00123.40`) instead of implied (`0012340`); a non-zero value without a point is then a malformed record."},
	{Name: "format", Type: adapters.TypeString, Default: "YYYYMMDD",
		Description: "Date: a COBOL-style picture (YYYY or CCYY, YY, MM, DD, DDD day of year, HH, MI, SS; other characters literal) or a Go layout (`2006-01-02`)."},
	{Name: "trim", Type: adapters.TypeBool, Default: true,
		Description: "String: remove spaces and the pad character around the value when decoding."},
	{Name: "justify", Type: adapters.TypeString, Optional: true, Enum: []string{"left", "right"},
		Description: "Encoding: which side the value sits on. Default right for int and decimal, left otherwise."},
	{Name: "pad", Type: adapters.TypeString, Optional: true,
		Description: "Encoding: one character filling the rest of the field. Default `0` for int and decimal (after a leading sign), space otherwise. Null values are written as spaces."},
	{Name: "sign", Type: adapters.TypeString, Default: "leading", Enum: []string{"leading", "trailing"},
		Description: "Int and decimal: where an encoded minus sign goes. Decoding accepts a sign on either side."},
	{Name: "true_value", Type: adapters.TypeString, Default: "Y", Description: "Bool: text of true (compared without case)."},
	{Name: "false_value", Type: adapters.TypeString, Default: "N", Description: "Bool: text of false (compared without case)."},
}

var spec = &adapters.Spec{
	Summary: "Fixed-width records from a field layout: text or EBCDIC, lines or fixed-length records, several record types.",
	Description: `Each record is a line (default) or, with ` + "`record_length`" + `, a block of that many
bytes with no separator. Fields are cut by byte position: ` + "`start`" + ` (1-based) and
` + "`length`" + `, or consecutive ` + "`width`" + `s. Positions count bytes, also in UTF-8.

Files with headers, trailers or several kinds of detail records use
` + "`record_types`" + `: each type has a discriminator (` + "`when`" + `: the bytes at
start/length equal value) and its own fields; the first type that matches is used,
a type without ` + "`when`" + ` matches every record. The decoded record gets the type's name in
` + "`type_field`" + ` (default ` + "`_type`" + `); the encoder picks the layout by that field and writes
the discriminator value.

A field that does not parse (letters in an int, a bad date) makes that record a
malformed record; decoding goes on with the next. Short lines are read as if padded
with spaces. Empty lines are skipped. EBCDIC lines end at NL (0x15) or LF (0x25);
the encoder writes the code page's LF (0x25).`,
	Fields: []adapters.Field{
		{Name: "charset", Type: adapters.TypeString, Default: "utf-8", Enum: charsets(),
			Description: "Character set of the data: utf-8, ascii, iso-8859-1, windows-1252 or an EBCDIC code page."},
		{Name: "record_length", Type: adapters.TypeInt, Optional: true,
			Description: "Records are blocks of this many bytes without newlines. Absent: one record per line."},
		{Name: "line_ending", Type: adapters.TypeString, Default: "lf", Enum: []string{"lf", "crlf"},
			Description: "Encoding, line records: what ends each line. Decoding accepts both."},
		{Name: "fields", Type: adapters.TypeObjects, Optional: true, Fields: fieldFields,
			Description: "The layout of every record. Give this or `record_types`."},
		{Name: "record_types", Type: adapters.TypeObjects, Optional: true,
			Description: "Several layouts, chosen per record by a discriminator.",
			Fields: []adapters.Field{
				{Name: "name", Type: adapters.TypeString, Description: "Type name, stored in `type_field`.", Example: "header"},
				{Name: "when", Type: adapters.TypeObject, Optional: true,
					Description: "Discriminator: the record is of this type when its bytes at start/length equal value (in the charset). Absent: every record matches.",
					Fields: []adapters.Field{
						{Name: "start", Type: adapters.TypeInt, Description: "1-based position."},
						{Name: "length", Type: adapters.TypeInt, Description: "Length in bytes."},
						{Name: "value", Type: adapters.TypeString, Description: "Text the bytes must equal (shorter values are padded with spaces)."},
					}},
				{Name: "fields", Type: adapters.TypeObjects, Fields: fieldFields, Description: "Layout of this type."},
			}},
		{Name: "type_field", Type: adapters.TypeString, Default: "_type",
			Description: "With `record_types`: the record field holding the type name."},
	},
	Example: `codec:
  type: fixed_width
  charset: cp037
  record_types:
    - name: header
      when: {start: 1, length: 1, value: H}
      fields:
        - {name: file_date, start: 2, length: 8, type: date}
    - name: detail
      when: {start: 1, length: 1, value: D}
      fields:
        - {name: account, start: 2, length: 10}
        - {name: amount, width: 9, type: decimal, scale: 2}
        - {name: booked, width: 8, type: date, format: YYYYMMDD}
`,
}

func charsets() []string {
	return append([]string{"utf-8"}, codepage.Names()...)
}

func init() {
	adapters.RegisterCodec(Name, spec, newCodec)
}
