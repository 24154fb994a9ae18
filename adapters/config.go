package adapters

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is a decoded, validated configuration block. Its accessors return
// the value of a field declared in the Spec, or its default; asking for an
// undeclared field or the wrong type is a programming error and panics.
type Config struct {
	path   string
	fields []Field
	values map[string]any
	set    map[string]bool
	codecs map[string]string
	opts   *DecodeOptions
}

// FieldError is one problem with a configuration: the file, the key path
// (pipelines.orders.sinks[1].path), the line when the parser knows it, and
// what is wrong.
type FieldError struct {
	File string
	Path string
	Line int
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is a list of configuration problems, reported all at once.
type Errors []*FieldError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Sort orders the problems by file, line and path.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Path < b.Path
	})
}

// AsErrors flattens err into a list of FieldErrors; an error that is not one
// becomes a single FieldError at path.
func AsErrors(err error, path string, line int) Errors {
	if err == nil {
		return nil
	}
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return Errors{fe}
	}
	return Errors{{Path: path, Line: line, Msg: err.Error()}}
}

// DecodeOptions tell Decode where the block sits in its file.
type DecodeOptions struct {
	// File is the config file name, for messages.
	File string
	// Path is the key path of the block, e.g. "pipelines.orders.sources[0]".
	Path string
	// Line returns the line of a key path in File, or 0 when unknown.
	Line func(path string) int
	// Ignore lists keys of the block that belong to the engine rather than
	// the adapter (name, type, from, workers, ...).
	Ignore []string
}

func (o *DecodeOptions) line(path string) int {
	if o == nil || o.Line == nil {
		return 0
	}
	return o.Line(path)
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

type decoder struct {
	opts *DecodeOptions
	errs Errors
}

func (d *decoder) errorf(path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{File: d.opts.File, Path: path, Line: d.opts.line(path), Msg: fmt.Sprintf(format, args...)})
}

// Decode checks raw against spec and returns the decoded configuration. It
// reports every problem at once, as Errors: unknown keys (with the known
// ones), missing required keys, wrong types, values outside an enum, and the
// failures of each field's and the spec's Check.
func Decode(spec *Spec, raw map[string]any, opts DecodeOptions) (*Config, error) {
	d := &decoder{opts: &opts}
	c := d.object(opts.Path, spec.Fields, raw, opts.Ignore)
	if len(d.errs) == 0 && spec.Check != nil {
		if err := spec.Check(c); err != nil {
			d.errs = append(d.errs, AsErrors(err, opts.Path, opts.line(opts.Path))...)
		}
	}
	if len(d.errs) > 0 {
		return c, d.errs
	}
	return c, nil
}

func (d *decoder) object(path string, fields []Field, raw map[string]any, ignore []string) *Config {
	c := &Config{path: path, fields: fields, values: map[string]any{}, set: map[string]bool{}, opts: d.opts}
	known := make(map[string]bool, len(fields)+len(ignore))
	for _, f := range fields {
		known[f.Name] = true
	}
	for _, k := range ignore {
		known[k] = true
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] {
			d.errorf(joinPath(path, k), "unknown key %q (known: %s)", k, fieldNames(fields))
		}
	}
	for _, f := range fields {
		fp := joinPath(path, f.Name)
		v, ok := raw[f.Name]
		if !ok || v == nil {
			if f.Required() {
				d.errorf(fp, "required %s is missing", f.Type)
				continue
			}
			if f.Default == nil {
				continue
			}
			v = f.Default
		} else {
			c.set[f.Name] = true
		}
		val, ok := d.value(fp, f, v)
		if !ok {
			continue
		}
		if f.Check != nil {
			if err := f.Check(val); err != nil {
				d.errs = append(d.errs, AsErrors(err, fp, d.opts.line(fp))...)
				continue
			}
		}
		c.values[f.Name] = val
		if f.Type == TypeCodec {
			if c.codecs == nil {
				c.codecs = map[string]string{}
			}
			c.codecs[f.Name] = codecName(v)
		}
	}
	return c
}

func fieldNames(fields []Field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", v)
	case bool:
		return fmt.Sprintf("bool %v", v)
	case int, int64, uint64:
		return fmt.Sprintf("number %v", v)
	case float64:
		return fmt.Sprintf("number %v", v)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func (d *decoder) value(path string, f Field, v any) (any, bool) {
	switch f.Type {
	case TypeString:
		s, ok := scalarString(v)
		if !ok {
			d.errorf(path, "want a string, got %s", describe(v))
			return nil, false
		}
		if len(f.Enum) > 0 && !contains(f.Enum, s) {
			d.errorf(path, "invalid value %q (allowed: %s)", redact(f, s), strings.Join(f.Enum, ", "))
			return nil, false
		}
		return s, true
	case TypeInt:
		n, err := toInt(v)
		if err != nil {
			d.errorf(path, "want an integer, got %s", describe(v))
			return nil, false
		}
		return n, true
	case TypeFloat:
		x, err := toFloat(v)
		if err != nil {
			d.errorf(path, "want a number, got %s", describe(v))
			return nil, false
		}
		return x, true
	case TypeBool:
		switch b := v.(type) {
		case bool:
			return b, true
		case string:
			if p, err := strconv.ParseBool(b); err == nil {
				return p, true
			}
		}
		d.errorf(path, "want true or false, got %s", describe(v))
		return nil, false
	case TypeDuration:
		dur, err := toDuration(v)
		if err != nil {
			d.errorf(path, "want a duration like 500ms, 2s or 1h30m, got %s", describe(v))
			return nil, false
		}
		return dur, true
	case TypeSize:
		n, err := ParseSize(v)
		if err != nil {
			d.errorf(path, "%v", err)
			return nil, false
		}
		return n, true
	case TypeStrings:
		if s, ok := scalarString(v); ok {
			return []string{s}, true
		}
		list, ok := v.([]any)
		if !ok {
			d.errorf(path, "want a list of strings, got %s", describe(v))
			return nil, false
		}
		out := make([]string, 0, len(list))
		good := true
		for i, e := range list {
			s, ok := scalarString(e)
			if !ok {
				d.errorf(fmt.Sprintf("%s[%d]", path, i), "want a string, got %s", describe(e))
				good = false
				continue
			}
			if len(f.Enum) > 0 && !contains(f.Enum, s) {
				d.errorf(fmt.Sprintf("%s[%d]", path, i), "invalid value %q (allowed: %s)", s, strings.Join(f.Enum, ", "))
				good = false
				continue
			}
			out = append(out, s)
		}
		return out, good
	case TypeStringMap:
		m, ok := v.(map[string]any)
		if !ok {
			d.errorf(path, "want a mapping of strings, got %s", describe(v))
			return nil, false
		}
		out := make(map[string]string, len(m))
		good := true
		for k, e := range m {
			s, ok := scalarString(e)
			if !ok {
				d.errorf(joinPath(path, k), "want a string, got %s", describe(e))
				good = false
				continue
			}
			out[k] = s
		}
		return out, good
	case TypeObject:
		m, ok := v.(map[string]any)
		if !ok {
			d.errorf(path, "want a mapping, got %s", describe(v))
			return nil, false
		}
		n := len(d.errs)
		c := d.object(path, f.Fields, m, nil)
		return c, len(d.errs) == n
	case TypeObjects:
		list, ok := v.([]any)
		if !ok {
			d.errorf(path, "want a list of mappings, got %s", describe(v))
			return nil, false
		}
		n := len(d.errs)
		out := make([]*Config, 0, len(list))
		for i, e := range list {
			ep := fmt.Sprintf("%s[%d]", path, i)
			m, ok := e.(map[string]any)
			if !ok {
				d.errorf(ep, "want a mapping, got %s", describe(e))
				continue
			}
			out = append(out, d.object(ep, f.Fields, m, nil))
		}
		return out, len(d.errs) == n
	case TypeCodec:
		return d.codec(path, v)
	case TypeAny:
		return v, true
	}
	d.errorf(path, "field type %q is not supported", f.Type)
	return nil, false
}

func (d *decoder) codec(path string, v any) (any, bool) {
	var name string
	var rest map[string]any
	switch cv := v.(type) {
	case string:
		name = cv
	case map[string]any:
		t, ok := cv["type"]
		if !ok {
			d.errorf(path, "codec needs a type (known: %s)", strings.Join(append(Codecs(), NoCodec), ", "))
			return nil, false
		}
		name, ok = t.(string)
		if !ok {
			d.errorf(joinPath(path, "type"), "want a string, got %s", describe(t))
			return nil, false
		}
		rest = cv
	default:
		d.errorf(path, "want a codec name or a mapping with a type, got %s", describe(v))
		return nil, false
	}
	if name == NoCodec {
		if len(rest) > 1 {
			d.errorf(path, "codec %q takes no options", NoCodec)
			return nil, false
		}
		return nil, true
	}
	entry, err := lookup(kindCodec, name)
	if err != nil {
		d.errorf(joinPath(path, "type"), "%v", err)
		return nil, false
	}
	if rest == nil {
		rest = map[string]any{}
	}
	n := len(d.errs)
	sub := *d.opts
	sub.Path = path
	sub.Ignore = []string{"type"}
	sd := &decoder{opts: &sub}
	c := sd.object(path, entry.spec.Fields, rest, sub.Ignore)
	d.errs = append(d.errs, sd.errs...)
	if len(d.errs) != n {
		return nil, false
	}
	if entry.spec.Check != nil {
		if err := entry.spec.Check(c); err != nil {
			d.errs = append(d.errs, AsErrors(err, path, d.opts.line(path))...)
			return nil, false
		}
	}
	codec, err := entry.codec(c)
	if err != nil {
		d.errs = append(d.errs, AsErrors(err, path, d.opts.line(path))...)
		return nil, false
	}
	return codec, true
}

func codecName(v any) string {
	switch cv := v.(type) {
	case string:
		return cv
	case map[string]any:
		s, _ := cv["type"].(string)
		return s
	}
	return ""
}

func redact(f Field, s string) string {
	if f.Secret {
		return "[redacted]"
	}
	return s
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func scalarString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case int:
		return strconv.Itoa(s), true
	case int64:
		return strconv.FormatInt(s, 10), true
	case uint64:
		return strconv.FormatUint(s, 10), true
	case float64:
		return strconv.FormatFloat(s, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(s), true
	}
	return "", false
}

func toInt(v any) (int64, error) {
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int64:
		return n, nil
	case uint64:
		if n > math.MaxInt64 {
			return 0, errors.New("out of range")
		}
		return int64(n), nil
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), nil
		}
	case string:
		return strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	}
	return 0, errors.New("not an integer")
}

func toFloat(v any) (float64, error) {
	switch n := v.(type) {
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case uint64:
		return float64(n), nil
	case float64:
		return n, nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(n), 64)
	}
	return 0, errors.New("not a number")
}

func toDuration(v any) (time.Duration, error) {
	switch n := v.(type) {
	case int:
		if n == 0 {
			return 0, nil
		}
	case int64:
		if n == 0 {
			return 0, nil
		}
	case string:
		return time.ParseDuration(strings.TrimSpace(n))
	}
	return 0, errors.New("not a duration")
}

// ParseSize parses a byte size: a number of bytes, or a number with a unit
// (B, KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024).
func ParseSize(v any) (int64, error) {
	if n, err := toInt(v); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("want a size of zero or more bytes, got %d", n)
		}
		return n, nil
	}
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("want a size like 512, 64KiB or 10MB, got %s", describe(v))
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, err := strconv.ParseFloat(t[:i], 64)
	if err != nil || i == 0 {
		return 0, fmt.Errorf("want a size like 512, 64KiB or 10MB, got %q", s)
	}
	units := map[string]float64{
		"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	}
	mul, ok := units[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("unknown size unit in %q (use B, KB, MB, GB, KiB, MiB, GiB)", s)
	}
	return int64(num * mul), nil
}

// Path returns the key path of the block, or of one of its fields when name
// is given, for error messages.
func (c *Config) Path(name ...string) string {
	p := c.path
	for _, n := range name {
		p = joinPath(p, n)
	}
	return p
}

// Errorf returns a *FieldError naming field name of this block, with the file
// and line where they are known. Adapters use it in Spec.Check and factories
// so that their messages point at the key at fault.
func (c *Config) Errorf(name, format string, args ...any) error {
	p := c.Path()
	if name != "" {
		p = c.Path(name)
	}
	fe := &FieldError{Path: p, Msg: fmt.Sprintf(format, args...)}
	if c.opts != nil {
		fe.File = c.opts.File
		fe.Line = c.opts.line(p)
	}
	return fe
}

func (c *Config) get(name string, t FieldType) any {
	for _, f := range c.fields {
		if f.Name == name {
			if f.Type != t {
				panic(fmt.Sprintf("adapters: field %q is %s, not %s", name, f.Type, t))
			}
			return c.values[name]
		}
	}
	panic(fmt.Sprintf("adapters: no field %q in spec", name))
}

// IsSet reports whether the user gave the key explicitly.
func (c *Config) IsSet(name string) bool { return c.set[name] }

// Has reports whether the field has a value, given or defaulted.
func (c *Config) Has(name string) bool {
	_, ok := c.values[name]
	return ok
}

// String returns a string field ("" when optional and absent).
func (c *Config) String(name string) string {
	s, _ := c.get(name, TypeString).(string)
	return s
}

// Int returns an integer field.
func (c *Config) Int(name string) int {
	n, _ := c.get(name, TypeInt).(int64)
	return int(n)
}

// Int64 returns an integer field.
func (c *Config) Int64(name string) int64 {
	n, _ := c.get(name, TypeInt).(int64)
	return n
}

// Float returns a number field.
func (c *Config) Float(name string) float64 {
	x, _ := c.get(name, TypeFloat).(float64)
	return x
}

// Bool returns a boolean field.
func (c *Config) Bool(name string) bool {
	b, _ := c.get(name, TypeBool).(bool)
	return b
}

// Duration returns a duration field.
func (c *Config) Duration(name string) time.Duration {
	d, _ := c.get(name, TypeDuration).(time.Duration)
	return d
}

// Size returns a byte-size field.
func (c *Config) Size(name string) int64 {
	n, _ := c.get(name, TypeSize).(int64)
	return n
}

// Strings returns a list-of-strings field.
func (c *Config) Strings(name string) []string {
	l, _ := c.get(name, TypeStrings).([]string)
	return l
}

// StringMap returns a string-map field.
func (c *Config) StringMap(name string) map[string]string {
	m, _ := c.get(name, TypeStringMap).(map[string]string)
	return m
}

// Object returns a nested block, or nil when optional and absent.
func (c *Config) Object(name string) *Config {
	o, _ := c.get(name, TypeObject).(*Config)
	return o
}

// Objects returns a list of nested blocks.
func (c *Config) Objects(name string) []*Config {
	l, _ := c.get(name, TypeObjects).([]*Config)
	return l
}

// Codec returns a codec field; nil means codec "none".
func (c *Config) Codec(name string) Codec {
	cd, _ := c.get(name, TypeCodec).(Codec)
	return cd
}

// CodecName returns the type name of a codec field ("csv", "none").
func (c *Config) CodecName(name string) string {
	c.get(name, TypeCodec)
	if n := c.codecs[name]; n != "" {
		return n
	}
	return NoCodec
}

// Any returns the raw value of a TypeAny field.
func (c *Config) Any(name string) any { return c.get(name, TypeAny) }

// File returns the name of the config file the block was decoded from, or ""
// when it did not come from a file. Adapters resolve relative paths in their
// configuration (a program, a copybook) against the file's directory.
func (c *Config) File() string {
	if c.opts == nil {
		return ""
	}
	return c.opts.File
}
