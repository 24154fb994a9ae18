package adapters

// FieldType names the type of a configuration field.
type FieldType string

// Field types a Spec can declare.
const (
	TypeString    FieldType = "string"
	TypeInt       FieldType = "int"
	TypeFloat     FieldType = "float"
	TypeBool      FieldType = "bool"
	TypeDuration  FieldType = "duration"          // "2s", "1m30s"
	TypeSize      FieldType = "size"              // bytes: 1048576, "64KiB", "10MB"
	TypeStrings   FieldType = "[]string"          // a list of strings, or one string
	TypeStringMap FieldType = "map[string]string" // string keys and values
	TypeObject    FieldType = "object"            // nested fields, in Field.Fields
	TypeObjects   FieldType = "[]object"          // a list of objects with Field.Fields
	TypeCodec     FieldType = "codec"             // a codec: "csv" or {type: csv, ...}
	TypeAny       FieldType = "any"               // any YAML value, checked by Field.Check
)

// Spec describes the configuration of a source, sink or codec. It is the one
// source of truth for decoding (unknown keys are errors), defaults,
// validation, `sluice adapters NAME` and the JSON schema.
type Spec struct {
	// Summary is one line for listings.
	Summary string
	// Description is a paragraph or more, in Markdown.
	Description string
	// Fields of the configuration block, in documentation order.
	Fields []Field
	// Example is a YAML snippet of a typical configuration block.
	Example string
	// Check validates relations between fields after each field decoded
	// cleanly. Report a problem with conf.Errorf to name the field at fault.
	Check func(conf *Config) error
}

// Field describes one configuration key.
type Field struct {
	Name        string
	Type        FieldType
	Description string
	// Default is used when the key is absent. A field with no Default is
	// required unless Optional is set.
	Default any
	// Optional fields may be absent and have no default.
	Optional bool
	// Secret fields (passwords, DSNs, tokens) are never printed: not in logs,
	// errors, config dumps nor examples.
	Secret bool
	// Enum lists the allowed values of a string field.
	Enum []string
	// Example value for documentation.
	Example any
	// Fields of an object or list of objects.
	Fields []Field
	// Check validates the decoded value (string, int, float64, bool,
	// time.Duration, int64 for sizes, []string, map[string]string, *Config,
	// []*Config or the raw value for TypeAny).
	Check func(v any) error
}

// Required reports whether the field must be present.
func (f Field) Required() bool { return f.Default == nil && !f.Optional }

// Field returns the field named name, or false.
func (s *Spec) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}
