package copybook

import "github.com/sluicehq/sluice/adapters"

var spec = &adapters.Spec{
	Summary: "Records described by a COBOL copybook: EBCDIC or ASCII, packed, binary and zoned numbers, REDEFINES, OCCURS DEPENDING ON.",
	Description: `The copybook is read and checked when the pipeline is validated; a copybook that
cannot be parsed is reported as ` + "`copybook FILE:LINE: what is wrong`" + `.

Each record is a Record whose keys are the copybook's data names with ` + "`-`" + ` turned
into ` + "`_`" + `; groups are nested records, OCCURS are lists. PIC X and A are strings;
numbers without decimal places (and at most 18 digits) are int64; numbers with
implied decimals (V, P), with more than 18 digits, and edited pictures (ZZ9.99,
-9(3).99, $$,$$9.99CR) are exact decimals keeping the picture's scale; COMP-1 and
COMP-2 are float64. A numeric DISPLAY field of spaces or low-values, and a packed
field of low-values, is null.

REDEFINES: every view is decoded and appears under its own name. Since only one view
of a set is usually meaningful for a given record, a field inside a REDEFINES set
whose bytes are invalid for its picture is null instead of an error. The encoder
writes one view per set: the first that the record holds without nulls, preferring
views that are not a single PIC X item; else the first it holds.

OCCURS DEPENDING ON: the counter must be an integer item before the table; each
record's layout follows its counter. When encoding, the list must have exactly as
many entries as the counter says.

FILLER items are skipped (keep_fillers: true keeps them as FILLER_1, FILLER_2, ... per
group). VALUE clauses and level-88 condition names are ignored; level-66 RENAMES are
checked but produce no field (the renamed items are already in the record).
SYNCHRONIZED binary items are aligned relative to the record start (not supported
inside OCCURS); JUSTIFIED RIGHT items are padded on the left. COPY statements,
USAGE INDEX/POINTER/NATIONAL, PIC N/G/U/E, and DECIMAL-POINT IS COMMA are not supported.

Record formats: fixed (records back to back; with OCCURS DEPENDING ON each record is
as long as its counters make it), variable (each record starts with a 4-byte RDW
whose length includes the RDW), text (one record per line; short lines are padded
with spaces; meant for DISPLAY-only layouts, since binary fields may contain newline
bytes; EBCDIC lines end at NL 0x15 or LF 0x25).`,
	Fields: []adapters.Field{
		{Name: "copybook", Type: adapters.TypeString, Example: "/etc/sluice/CUSTMAST.cpy",
			Description: "Path of the copybook file; a relative path is relative to the directory of the pipeline file."},
		{Name: "record", Type: adapters.TypeString, Optional: true, Example: "CUSTOMER-RECORD",
			Description: "The 01-level record to use when the copybook defines several."},
		{Name: "encoding", Type: adapters.TypeString, Default: "cp037",
			Enum:        []string{"cp037", "cp273", "cp500", "cp875", "cp1047", "cp1140", "ascii", "iso-8859-1", "windows-1252"},
			Description: "Character set of the data. EBCDIC code pages store zoned digits as 0xF0-0xF9 with the sign in the zone nibble; ascii, iso-8859-1 and windows-1252 use ASCII digits with overpunch letters ({, A-I, }, J-R)."},
		{Name: "record_format", Type: adapters.TypeString, Default: "fixed", Enum: []string{"fixed", "variable", "text"},
			Description: "fixed: records back to back; variable: records with an RDW (record descriptor word); text: one record per line."},
		{Name: "rdw", Type: adapters.TypeString, Default: "big", Enum: []string{"big", "little"},
			Description: "Byte order of the RDW length (variable records). little reads the length from bytes 0-1 or, after two zero bytes, from bytes 2-3."},
		{Name: "source_format", Type: adapters.TypeString, Default: "auto", Enum: []string{"auto", "fixed", "free"},
			Description: "Reference format of the copybook: fixed (columns 1-6 sequence, 7 indicator: * comment, - continuation, 8-72 code, 73-80 ignored), free, or auto (fixed when every line fits it)."},
		{Name: "keep_fillers", Type: adapters.TypeBool, Default: false, Description: "Keep FILLER items in records, as FILLER_1, FILLER_2, ..."},
		{Name: "trim", Type: adapters.TypeString, Default: "right", Enum: []string{"right", "both", "none"},
			Description: "What to remove from PIC X values: right removes the padding (trailing spaces and low-values, leading for JUSTIFIED RIGHT), both removes them on both sides, none keeps every byte."},
		{Name: "comp5_byte_order", Type: adapters.TypeString, Default: "big", Enum: []string{"big", "little"},
			Description: "Byte order of COMP-5 (native binary) items: big on IBM mainframes, little for data from x86 COBOL compilers. COMP, COMP-4 and BINARY are always big-endian."},
		{Name: "float_format", Type: adapters.TypeString, Default: "ibm", Enum: []string{"ibm", "ieee"},
			Description: "COMP-1/COMP-2 format: ibm hexadecimal floating point, or ieee 754 big-endian."},
	},
	Example: `codec:
  type: copybook
  copybook: /etc/sluice/CUSTMAST.cpy
  encoding: cp037
  record_format: variable
`,
}

func init() {
	adapters.RegisterCodec(Name, spec, newCodec)
}
