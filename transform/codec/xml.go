package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform/codec/internal/box"
)

func init() {
	adapters.RegisterCodec("xml", xmlSpec, newXMLCodec)
}

var xmlSpec = &adapters.Spec{
	Summary: "XML: one record per element at a path, streamed.",
	Description: "The decoder streams the document with constant memory and emits one record per element matching `path`. " +
		"Attributes become fields named with `attr_prefix`, child elements become fields (repeated children become lists, a child with attributes or children a nested object), " +
		"and the text of an element that also has attributes or children goes under `text_key`. A leaf element's text is kept exactly (unless `trim`); an empty element is an empty string. " +
		"Namespaces: names are matched and written by their local part (`namespaces: strip`, xmlns declarations dropped) or exactly as written with their prefix (`keep`); prefixes are not resolved to URIs. " +
		"A bad entity or a duplicate attribute inside a record is a malformed record and decoding goes on. A break in the document's structure (mismatched tags, input ending inside an element) " +
		"is reported as one malformed record, after which Decode returns io.EOF. DTDs are skipped; entities they declare are not expanded. " +
		"The encoder writes `<root>` with one `<record>` element per record: keys starting with `attr_prefix` as attributes, `text_key` as text, other keys as child elements; Close writes the root end tag.",
	Fields: []adapters.Field{
		{Name: "path", Type: adapters.TypeString, Default: "/*/*", Description: "Elements that are records: an absolute path of element names from the root, where `*` matches any name, or `//name` for elements of that name at any depth.", Example: "/Orders/Order"},
		{Name: "attr_prefix", Type: adapters.TypeString, Default: "@", Description: "Prefix of field names made from attributes.", Example: "_"},
		{Name: "text_key", Type: adapters.TypeString, Default: "#text", Description: "Field name of the text of an element that also has attributes or child elements.", Example: "value"},
		{Name: "namespaces", Type: adapters.TypeString, Default: "strip", Enum: []string{"strip", "keep"}, Description: "`strip`: use local names and drop xmlns attributes; `keep`: use names as written, prefix included.", Example: "keep"},
		{Name: "trim", Type: adapters.TypeBool, Default: false, Description: "Trim white space around the text of leaf elements and attributes.", Example: true},
		{Name: "infer_types", Type: adapters.TypeBool, Default: false, Description: "Turn text and attribute values that look like JSON numbers into numbers and true/false into booleans, as the csv codec does.", Example: true},
		decimalField,
		charsetField(),
		sizeField("max_record_bytes", "Largest record element (and largest single tag anywhere) accepted; a larger record is malformed and skipped in constant memory.", "16MiB"),
		{Name: "root", Type: adapters.TypeString, Default: "records", Description: "Name of the root element the encoder writes.", Example: "Orders"},
		{Name: "record", Type: adapters.TypeString, Default: "record", Description: "Name of the element the encoder writes for each record.", Example: "Order"},
	},
	Example: "codec: {type: xml, path: /Orders/Order, root: Orders, record: Order}",
}

type xmlCodec struct {
	segs         []string
	anyDepth     bool
	attrPrefix   string
	textKey      string
	keepNS       bool
	trim         bool
	infer, dec   bool
	cs           charset
	max          int
	root, record string
}

func newXMLCodec(conf *adapters.Config) (adapters.Codec, error) {
	c := &xmlCodec{attrPrefix: conf.String("attr_prefix"), textKey: conf.String("text_key"), keepNS: conf.String("namespaces") == "keep",
		trim: conf.Bool("trim"), infer: conf.Bool("infer_types"), dec: conf.Bool("decimal_numbers"), max: maxBytes(conf, "max_record_bytes"),
		root: conf.String("root"), record: conf.String("record")}
	path := conf.String("path")
	rest, ok := strings.CutPrefix(path, "//")
	if ok {
		c.anyDepth = true
	} else if rest, ok = strings.CutPrefix(path, "/"); !ok {
		return nil, conf.Errorf("path", "must start with / or //, got %q", path)
	}
	c.segs = strings.Split(rest, "/")
	for _, s := range c.segs {
		if s != "*" && !isXMLName(s) {
			return nil, conf.Errorf("path", "%q is not an element name or *", s)
		}
	}
	if c.anyDepth && len(c.segs) != 1 {
		return nil, conf.Errorf("path", "//name takes one element name, got %q", path)
	}
	var err error
	if c.cs, err = parseCharset(conf.String("charset")); err != nil {
		return nil, conf.Errorf("charset", "%v", err)
	}
	if c.textKey == "" {
		return nil, conf.Errorf("text_key", "must not be empty")
	}
	if !isXMLName(c.root) {
		return nil, conf.Errorf("root", "%q is not an XML element name", c.root)
	}
	if !isXMLName(c.record) {
		return nil, conf.Errorf("record", "%q is not an XML element name", c.record)
	}
	return c, nil
}

func (c *xmlCodec) NewDecoder(r io.Reader) adapters.Decoder {
	return &xmlDecoder{c: c, in: newInput(r, c.cs), names: map[string]string{}}
}

// xmlNode is an open element inside the record being built.
type xmlNode struct {
	key      string // field name in the parent
	fields   map[string]any
	text     []byte
	children bool
}

type xmlDecoder struct {
	position
	c       *xmlCodec
	in      *input
	stack   []string // open elements, qualified names
	virtual int      // unknown ancestors above stack after SetStart
	names   map[string]string
	attrs   []int // start/end pairs of attribute names and values in the current tag
	started bool  // past the first token
	rooted  bool  // the root element was seen
	done    bool  // no more records: return io.EOF

	// The record being built.
	nodes   []xmlNode
	inRec   bool
	recOff  int64
	recLine int64
	recErr  error
	free    [][]byte // reusable text buffers
	box     box.Arena
}

var (
	_ adapters.Decoder        = (*xmlDecoder)(nil)
	_ adapters.ReaderAtOffset = (*xmlDecoder)(nil)
)

// SetStart resumes after a record element that Position reported: the
// elements above it are assumed open (the parents that path names).
func (d *xmlDecoder) SetStart(off, line int64) {
	d.in.setStart(off, line, true)
	d.off, d.line = off, line
	if off > 0 {
		d.started, d.rooted = true, true
		if d.c.anyDepth {
			d.virtual = 1 << 30
		} else {
			d.virtual = len(d.c.segs) - 1
		}
	}
}

// broken ends the document: the rest cannot be read.
func (d *xmlDecoder) broken(format string, args ...any) error {
	d.done = true
	off, line := d.in.off, d.in.line
	if d.inRec {
		off, line = d.recOff, d.recLine
	}
	d.rec++
	return &adapters.RecordError{Record: d.rec, Line: line, Offset: off,
		Err: fmt.Errorf("%w: %s (at line %d, byte offset %d); the rest of the document is skipped", ErrNotWellFormed, fmt.Sprintf(format, args...), d.in.line, d.in.off)}
}

// need makes n bytes available; false at the end of input.
func (d *xmlDecoder) need(n int) bool {
	for d.in.w-d.in.r < n {
		if !d.in.fill() {
			return false
		}
	}
	return true
}

func (d *xmlDecoder) consume(n int) {
	d.in.consume(n, int64(bytes.Count(d.in.buf[d.in.r:d.in.r+n], []byte{'\n'})))
}

func (d *xmlDecoder) eofErr() error {
	if d.in.err != nil && d.in.err != io.EOF {
		return d.in.err
	}
	return nil
}

func (d *xmlDecoder) Decode() (adapters.Record, error) {
	for !d.done {
		if d.in.r == d.in.w && !d.in.fill() {
			if err := d.eofErr(); err != nil {
				return nil, err
			}
			if len(d.stack) > 0 || d.inRec {
				return nil, d.broken("unexpected end of input inside element <%s>", d.top())
			}
			if !d.rooted {
				return nil, d.broken("no root element")
			}
			d.done = true
			return nil, io.EOF
		}
		var rec adapters.Record
		var err error
		if d.in.buf[d.in.r] != '<' {
			err = d.text()
		} else {
			rec, err = d.markup()
		}
		if err != nil || rec != nil {
			return rec, err
		}
		if d.inRec {
			d.checkSize()
		}
	}
	return nil, io.EOF
}

// checkSize fails the open record once it is larger than max_record_bytes
// and reports whether it is still good.
func (d *xmlDecoder) checkSize() bool {
	if d.recErr == nil && d.in.off-d.recOff > int64(d.c.max) {
		d.recErr = fmt.Errorf("%w: record element larger than max_record_bytes (%d)", ErrLineTooLong, d.c.max)
		for i := range d.nodes {
			d.nodes[i].text, d.nodes[i].fields = nil, nil
		}
	}
	return d.recErr == nil
}

func (d *xmlDecoder) top() string {
	if len(d.stack) == 0 {
		return "?"
	}
	return d.stack[len(d.stack)-1]
}

// text handles character data up to the next '<'.
func (d *xmlDecoder) text() error {
	for {
		buf := d.in.buf[d.in.r:d.in.w]
		i := bytes.IndexByte(buf, '<')
		if i == 0 {
			return nil
		}
		chunk := buf
		if i > 0 {
			chunk = buf[:i]
		} else if d.inRec {
			// Keep an entity or a CR cut by the end of the buffer.
			if k := bytes.LastIndexByte(chunk, '&'); k >= 0 && bytes.IndexByte(chunk[k:], ';') < 0 && len(chunk)-k < 32 {
				chunk = chunk[:k]
			}
			if n := len(chunk); n > 0 && chunk[n-1] == '\r' {
				chunk = chunk[:n-1]
			}
		}
		if len(chunk) == 0 {
			if !d.in.fill() {
				if err := d.eofErr(); err != nil {
					return err
				}
				return d.broken("unexpected end of input in text")
			}
			continue
		}
		switch {
		case d.inRec:
			if d.checkSize() {
				n := &d.nodes[len(d.nodes)-1]
				var err error
				if n.text, err = appendXMLText(n.text, chunk); err != nil {
					d.recErr = err
				}
			}
		case len(d.stack) == 0 && d.virtual == 0:
			if len(bytes.TrimLeft(chunk, " \t\r\n")) > 0 {
				return d.broken("text outside the root element")
			}
		}
		d.consume(len(chunk))
		if i >= 0 || d.in.r < d.in.w {
			return nil
		}
		if !d.in.fill() {
			return nil // the caller sees the end
		}
	}
}

// markup handles the tag or declaration at the head of the buffer.
func (d *xmlDecoder) markup() (adapters.Record, error) {
	if !d.need(2) {
		if err := d.eofErr(); err != nil {
			return nil, err
		}
		return nil, d.broken("unexpected end of input after '<'")
	}
	switch d.in.buf[d.in.r+1] {
	case '/':
		return d.endTag()
	case '?':
		return nil, d.pi()
	case '!':
		return nil, d.bang()
	}
	return d.startTag()
}

// tagEnd finds the '>' closing the tag at the head of the buffer, outside
// quoted attribute values, reading more input as needed.
func (d *xmlDecoder) tagEnd() (int, error) {
	from := 0
	for {
		buf := d.in.buf[d.in.r:d.in.w]
		var quote byte
		for i := from; i < len(buf); i++ {
			c := buf[i]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '>':
				return i, nil
			}
		}
		if quote == 0 {
			from = len(buf)
		}
		if len(buf) > d.c.max {
			return 0, d.broken("tag longer than max_record_bytes (%d)", d.c.max)
		}
		if !d.in.fill() {
			if err := d.eofErr(); err != nil {
				return 0, err
			}
			return 0, d.broken("unexpected end of input inside a tag")
		}
	}
}

func (d *xmlDecoder) intern(b []byte) string {
	if s, ok := d.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.names) < maxKeyCache {
		d.names[s] = s
	}
	return s
}

// nameLen returns the length of the XML name at the start of b.
func nameLen(b []byte) int {
	i := 0
	for i < len(b) {
		c := b[i]
		if c < 0x80 {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.')) {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			break
		}
		i += n
	}
	return i
}

// localName returns the part of a qualified name after its prefix, or the
// whole name when what follows the last colon is not a name itself.
func localName(name []byte) []byte {
	if i := bytes.LastIndexByte(name, ':'); i >= 0 && i < len(name)-1 {
		if local := name[i+1:]; nameLen(local) == len(local) && (local[0] < '0' || local[0] > '9') && local[0] != '-' && local[0] != '.' {
			return local
		}
	}
	return name
}

func isXMLName(s string) bool { return s != "" && nameLen([]byte(s)) == len(s) }

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (d *xmlDecoder) startTag() (adapters.Record, error) {
	end, err := d.tagEnd()
	if err != nil {
		return nil, err
	}
	tag := d.in.buf[d.in.r : d.in.r+end] // without '>'
	selfClosing := end > 1 && tag[end-1] == '/'
	if selfClosing {
		tag = tag[:end-1]
	}
	n := nameLen(tag[1:])
	if n == 0 {
		return nil, d.broken("invalid character %q after '<'", d.in.buf[d.in.r+1])
	}
	name := d.intern(tag[1 : 1+n])
	// Attributes.
	d.attrs = d.attrs[:0]
	i := 1 + n
	for i < len(tag) {
		j := i
		for j < len(tag) && isSpaceByte(tag[j]) {
			j++
		}
		if j == len(tag) {
			break
		}
		if j == i {
			return nil, d.broken("want white space before attribute in <%s>", name)
		}
		an := nameLen(tag[j:])
		if an == 0 {
			return nil, d.broken("invalid character %q in tag <%s>", tag[j], name)
		}
		k := j + an
		for k < len(tag) && isSpaceByte(tag[k]) {
			k++
		}
		if k == len(tag) || tag[k] != '=' {
			return nil, d.broken("attribute %s of <%s> has no value", tag[j:j+an], name)
		}
		k++
		for k < len(tag) && isSpaceByte(tag[k]) {
			k++
		}
		if k == len(tag) || (tag[k] != '"' && tag[k] != '\'') {
			return nil, d.broken("value of attribute %s of <%s> is not quoted", tag[j:j+an], name)
		}
		q := bytes.IndexByte(tag[k+1:], tag[k])
		if q < 0 {
			return nil, d.broken("unterminated value of attribute %s of <%s>", tag[j:j+an], name)
		}
		v := tag[k+1 : k+1+q]
		if bytes.IndexByte(v, '<') >= 0 {
			return nil, d.broken("'<' in the value of attribute %s of <%s>", tag[j:j+an], name)
		}
		d.attrs = append(d.attrs, j, j+an, k+1, k+1+q)
		i = k + 2 + q
	}
	if len(d.stack) == 0 && d.virtual == 0 {
		if d.rooted {
			return nil, d.broken("second root element <%s>", name)
		}
		d.rooted = true
	}
	d.started = true
	d.stack = append(d.stack, name)
	switch {
	case d.inRec:
		d.openChild(name, tag)
	case d.matches():
		d.inRec, d.recErr = true, nil
		d.recOff, d.recLine = d.in.off, d.in.line
		d.nodes = append(d.nodes[:0], xmlNode{text: d.textBuf()})
		d.addAttrs(&d.nodes[0], tag)
	}
	d.consume(end + 1)
	if selfClosing {
		return d.closeElement()
	}
	return nil, nil
}

// recycle keeps a text buffer for the next element unless it is large.
func (d *xmlDecoder) recycle(b []byte) {
	if b != nil && cap(b) <= 64<<10 {
		d.free = append(d.free, b)
	}
}

func (d *xmlDecoder) textBuf() []byte {
	if n := len(d.free); n > 0 {
		b := d.free[n-1]
		d.free = d.free[:n-1]
		return b[:0]
	}
	return nil
}

// matches reports whether the open element stack selects a record.
func (d *xmlDecoder) matches() bool {
	name := d.stack[len(d.stack)-1]
	if d.c.anyDepth {
		return d.nameIs(name, d.c.segs[0])
	}
	if d.virtual+len(d.stack) != len(d.c.segs) {
		return false
	}
	for k, el := range d.stack {
		if !d.nameIs(el, d.c.segs[d.virtual+k]) {
			return false
		}
	}
	return true
}

// nameIs matches an element name against a path segment: exactly, by its
// local part, or any name for "*".
func (d *xmlDecoder) nameIs(name, seg string) bool {
	if seg == "*" || name == seg {
		return true
	}
	if i := strings.IndexByte(name, ':'); i >= 0 && strings.IndexByte(seg, ':') < 0 {
		return name[i+1:] == seg
	}
	return false
}

// key returns the field name of an element or attribute name.
func (d *xmlDecoder) key(name string) string {
	if d.c.keepNS {
		return name
	}
	if local := localName([]byte(name)); len(local) < len(name) {
		return d.intern(local)
	}
	return name
}

func (d *xmlDecoder) openChild(name string, tag []byte) {
	if d.recErr != nil {
		d.nodes = append(d.nodes, xmlNode{})
		return
	}
	d.nodes[len(d.nodes)-1].children = true
	d.nodes = append(d.nodes, xmlNode{key: d.key(name), text: d.textBuf()})
	d.addAttrs(&d.nodes[len(d.nodes)-1], tag)
}

func (d *xmlDecoder) addAttrs(n *xmlNode, tag []byte) {
	if d.recErr != nil {
		return
	}
	for a := 0; a < len(d.attrs); a += 4 {
		raw := tag[d.attrs[a]:d.attrs[a+1]]
		if !d.c.keepNS && (string(raw) == "xmlns" || bytes.HasPrefix(raw, []byte("xmlns:"))) {
			continue
		}
		if !d.c.keepNS {
			raw = localName(raw)
		}
		k := d.attrKey(raw)
		if n.fields == nil {
			n.fields = make(map[string]any, 8)
		}
		if _, dup := n.fields[k]; dup {
			d.recErr = fmt.Errorf("duplicate attribute %s", raw)
			return
		}
		v, err := appendXMLText(nil, tag[d.attrs[a+2]:d.attrs[a+3]])
		if err != nil {
			d.recErr = err
			return
		}
		n.fields[k] = d.scalar(v)
	}
}

// attrKey returns attr_prefix + name, interned.
func (d *xmlDecoder) attrKey(raw []byte) string {
	p := d.c.attrPrefix
	var tmp [128]byte
	b := append(append(tmp[:0], p...), raw...)
	return d.intern(b)
}

func (d *xmlDecoder) scalar(b []byte) any {
	if d.c.trim {
		b = bytes.TrimSpace(b)
	}
	if d.c.infer {
		return inferValue(string(b), d.c.dec, &d.box)
	}
	return d.box.String(string(b))
}

func (d *xmlDecoder) endTag() (adapters.Record, error) {
	end, err := d.tagEnd()
	if err != nil {
		return nil, err
	}
	tag := d.in.buf[d.in.r : d.in.r+end]
	n := nameLen(tag[2:])
	if n == 0 || len(bytes.TrimRight(tag[2+n:], " \t\r\n")) > 0 {
		return nil, d.broken("malformed end tag %q", tag)
	}
	name := tag[2 : 2+n]
	if len(d.stack) == 0 {
		if d.virtual == 0 {
			return nil, d.broken("end tag </%s> without a start tag", name)
		}
		d.virtual--
		d.consume(end + 1)
		return nil, nil
	}
	if top := d.stack[len(d.stack)-1]; top != string(name) {
		return nil, d.broken("end tag </%s> does not match <%s>", name, top)
	}
	d.consume(end + 1)
	return d.closeElement()
}

// closeElement pops the innermost element; closing a record element returns
// the record.
func (d *xmlDecoder) closeElement() (adapters.Record, error) {
	d.stack = d.stack[:len(d.stack)-1]
	if !d.inRec {
		return nil, nil
	}
	if len(d.nodes) > 1 {
		n := d.nodes[len(d.nodes)-1]
		d.nodes = d.nodes[:len(d.nodes)-1]
		if d.recErr == nil {
			parent := &d.nodes[len(d.nodes)-1]
			if parent.fields == nil {
				parent.fields = make(map[string]any, 8)
			}
			v := d.nodeValue(&n)
			if old, ok := parent.fields[n.key]; ok {
				if list, ok := old.([]any); ok {
					parent.fields[n.key] = append(list, v)
				} else {
					parent.fields[n.key] = []any{old, v}
				}
			} else {
				parent.fields[n.key] = v
			}
		}
		d.recycle(n.text)
		return nil, nil
	}
	// The record element itself.
	root := &d.nodes[0]
	d.inRec = false
	d.recycle(root.text)
	d.rec, d.line, d.off = d.rec+1, d.in.line, d.in.off
	if d.recErr != nil {
		err := d.recErr
		d.recErr = nil
		return nil, &adapters.RecordError{Record: d.rec, Line: d.recLine, Offset: d.recOff, Err: err}
	}
	rec := root.fields
	if rec == nil {
		rec = make(adapters.Record, 1)
	}
	if t := d.mixedText(root); t != nil {
		rec[d.c.textKey] = t
	}
	root.fields = nil
	return rec, nil
}

// nodeValue is the value of a closed child element: its text when it has
// neither attributes nor children, otherwise an object.
func (d *xmlDecoder) nodeValue(n *xmlNode) any {
	if n.fields == nil && !n.children {
		return d.scalar(n.text)
	}
	if n.fields == nil {
		n.fields = make(map[string]any, 1)
	}
	if t := d.mixedText(n); t != nil {
		n.fields[d.c.textKey] = t
	}
	return n.fields
}

// mixedText is the text of an element with attributes or children: all of
// it when there are no children, else trimmed, nil when there is none.
func (d *xmlDecoder) mixedText(n *xmlNode) any {
	t := n.text
	if n.children || d.c.trim {
		t = bytes.TrimSpace(t)
	}
	if len(t) == 0 {
		return nil
	}
	return d.scalar(t)
}

// pi skips a processing instruction, checking the XML declaration's
// encoding against the charset.
func (d *xmlDecoder) pi() error {
	d.need(6)
	decl := !d.started && bytes.HasPrefix(d.in.buf[d.in.r:d.in.w], []byte("<?xml ")) && d.in.off <= 3
	d.started = true
	if decl {
		end := bytes.Index(d.in.buf[d.in.r:d.in.w], []byte("?>"))
		for end < 0 && d.in.w-d.in.r < 4096 && d.in.fill() {
			end = bytes.Index(d.in.buf[d.in.r:d.in.w], []byte("?>"))
		}
		if end > 0 {
			if err := d.checkEncoding(d.in.buf[d.in.r : d.in.r+end]); err != nil {
				d.done = true
				return err
			}
		}
	}
	return d.until(2, "?>", nil)
}

// checkEncoding compares the encoding an XML declaration names with the
// charset option.
func (d *xmlDecoder) checkEncoding(decl []byte) error {
	i := bytes.Index(decl, []byte("encoding"))
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(decl[i+len("encoding"):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '=' {
		return nil
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) < 2 {
		return nil
	}
	q := bytes.IndexByte(rest[1:], rest[0])
	if q < 0 {
		return nil
	}
	declared := string(rest[1 : 1+q])
	norm := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(declared))
	ok := false
	switch d.c.cs.name {
	case "utf-8":
		ok = norm == "utf8" || norm == "usascii" || norm == "ascii"
	case "utf-16", "utf-16le", "utf-16be":
		ok = strings.HasPrefix(norm, "utf16")
	case "windows-1252":
		ok = norm == "windows1252" || norm == "cp1252"
	case "iso-8859-1":
		ok = norm == "iso88591" || norm == "latin1" || norm == "l1"
	case "iso-8859-15":
		ok = norm == "iso885915" || norm == "latin9"
	}
	if ok {
		return nil
	}
	return fmt.Errorf("xml: the document declares encoding %q but the codec reads charset %s: set the charset option to match", declared, d.c.cs.name)
}

// bang handles comments, CDATA sections and the DOCTYPE.
func (d *xmlDecoder) bang() error {
	d.need(9)
	buf := d.in.buf[d.in.r:d.in.w]
	switch {
	case bytes.HasPrefix(buf, []byte("<!--")):
		return d.until(4, "-->", nil)
	case bytes.HasPrefix(buf, []byte("<![CDATA[")):
		if len(d.stack) == 0 && d.virtual == 0 {
			return d.broken("CDATA section outside the root element")
		}
		if !d.inRec {
			return d.until(9, "]]>", nil)
		}
		return d.until(9, "]]>", func(chunk []byte) {
			if d.checkSize() {
				n := &d.nodes[len(d.nodes)-1]
				n.text = appendNormalized(n.text, chunk)
			}
		})
	case bytes.HasPrefix(buf, []byte("<!DOCTYPE")):
		if d.rooted {
			return d.broken("DOCTYPE after the root element")
		}
		return d.doctype()
	}
	if len(buf) < 9 {
		if err := d.eofErr(); err != nil {
			return err
		}
	}
	return d.broken("invalid markup after '<!'")
}

// until consumes the opener (skip bytes) and everything up to and including
// term, passing the content to keep in chunks.
func (d *xmlDecoder) until(skip int, term string, keep func([]byte)) error {
	d.consume(skip)
	t := []byte(term)
	for {
		buf := d.in.buf[d.in.r:d.in.w]
		if k := bytes.Index(buf, t); k >= 0 {
			if keep != nil {
				keep(buf[:k])
			}
			d.consume(k + len(t))
			return nil
		}
		if n := len(buf) - (len(t) - 1); n > 0 {
			if keep != nil {
				keep(buf[:n])
			}
			d.consume(n)
		}
		if !d.in.fill() {
			if err := d.eofErr(); err != nil {
				return err
			}
			return d.broken("unexpected end of input before %q", term)
		}
	}
}

// doctype skips a document type declaration, internal subset included.
func (d *xmlDecoder) doctype() error {
	depth := 0
	var quote byte
	i := 0
	for {
		buf := d.in.buf[d.in.r:d.in.w]
		for ; i < len(buf); i++ {
			c := buf[i]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '[':
				depth++
			case c == ']':
				depth--
			case c == '>' && depth <= 0:
				d.consume(i + 1)
				return nil
			}
		}
		if len(buf) > d.c.max {
			return d.broken("DOCTYPE longer than max_record_bytes (%d)", d.c.max)
		}
		if !d.in.fill() {
			if err := d.eofErr(); err != nil {
				return err
			}
			return d.broken("unexpected end of input in the DOCTYPE")
		}
	}
}

var errXMLEntity = errors.New("invalid entity reference")

// appendXMLText appends character data with entity and character
// references replaced and line endings normalised to "\n".
func appendXMLText(dst, src []byte) ([]byte, error) {
	for {
		i := bytes.IndexByte(src, '&')
		if i < 0 {
			return appendNormalized(dst, src), nil
		}
		dst = appendNormalized(dst, src[:i])
		src = src[i:]
		semi := bytes.IndexByte(src, ';')
		if semi < 0 || semi > 32 {
			return dst, fmt.Errorf("%w: '&' not followed by a reference (write &amp;)", errXMLEntity)
		}
		ref := src[1:semi]
		switch string(ref) {
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "amp":
			dst = append(dst, '&')
		case "quot":
			dst = append(dst, '"')
		case "apos":
			dst = append(dst, '\'')
		default:
			if len(ref) < 2 || ref[0] != '#' {
				return dst, fmt.Errorf("%w: &%s; is not a predefined entity (DTD entities are not expanded)", errXMLEntity, ref)
			}
			var n uint64
			var err error
			if ref[1] == 'x' {
				n, err = strconv.ParseUint(string(ref[2:]), 16, 32)
			} else {
				n, err = strconv.ParseUint(string(ref[1:]), 10, 32)
			}
			if err != nil || !isXMLChar(rune(n)) {
				return dst, fmt.Errorf("%w: &%s; is not a valid character", errXMLEntity, ref)
			}
			dst = utf8.AppendRune(dst, rune(n))
		}
		src = src[semi+1:]
	}
}

// appendNormalized appends text turning "\r\n" and lone "\r" into "\n".
func appendNormalized(dst, src []byte) []byte {
	for {
		i := bytes.IndexByte(src, '\r')
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(dst, src[:i]...)
		dst = append(dst, '\n')
		src = src[i+1:]
		if len(src) > 0 && src[0] == '\n' {
			src = src[1:]
		}
	}
}

// isXMLChar reports whether XML 1.0 allows r in a document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
