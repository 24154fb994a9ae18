package copybook

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/transform/codec/copybook/recvalue"
)

type kind int

const (
	kGroup  kind = iota
	kAlnum       // PIC X / A: a string
	kZoned       // numeric DISPLAY
	kEdited      // numeric-edited DISPLAY
	kPacked      // COMP-3
	kBinary      // COMP, COMP-4, BINARY, COMP-5
	kFloat       // COMP-1, COMP-2
)

// node is one item of the compiled record layout.
type node struct {
	key      string // record key: the name with - turned into _
	name     string // the COBOL name, for messages
	line     int
	kind     kind
	size     int  // bytes of one occurrence; the maximum when !static
	static   bool // no OCCURS DEPENDING ON inside: size is exact
	filler   bool // not in the record
	lenient  bool // in a REDEFINES set: invalid bytes decode to null
	children []*node
	views    []*node // items that REDEFINE this one, decoded over the same bytes
	area     int     // bytes of this item with its views (and its OCCURS), the maximum when !static
	align    int     // SYNCHRONIZED: offset multiple, relative to the record start

	// OCCURS
	occurs         bool
	occMin, occMax int
	depSlot        int // slot of the DEPENDING ON counter, or -1
	counterSlot    int // this item is a DEPENDING ON counter: its slot, or -1

	// elementary items
	pic                       *picture
	digits, scale             int
	signed                    bool
	signLeading, signSeparate bool
	comp5                     bool
	justRight                 bool
	asDecimal                 bool // value is a decimal.Decimal, not an int64
	cacheIdx                  int  // slot in the reader's value cache, or -1
}

// layout is a compiled record.
type layout struct {
	root    *node
	name    string
	maxSize int
	static  bool
	slots   int // DEPENDING ON counters
	cached  int // elementary items small enough for the value cache
}

// maxRecord bounds the size of a record.
const maxRecord = 16 << 20

type compiler struct {
	file        string
	keepFillers bool
	slots       int
	order       map[*item]int // pre-order position, for DEPENDING ON
	nodes       map[*item]*node
	odo         []*item
	offset      int  // static offset while compiling, for SYNCHRONIZED
	known       bool // offset is known statically
	inOccurs    int
	cached      int
}

func (c *compiler) errorf(line int, format string, args ...any) error {
	return &SyntaxError{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// compile builds the layout of one record.
func compile(file string, root *item, keepFillers bool) (*layout, error) {
	c := &compiler{file: file, keepFillers: keepFillers, order: map[*item]int{}, nodes: map[*item]*node{}, known: true}
	var number func(it *item)
	number = func(it *item) {
		c.order[it] = len(c.order)
		for _, ch := range it.children {
			number(ch)
		}
	}
	number(root)
	if root.occurs {
		return nil, c.errorf(root.line, "OCCURS is not allowed at level %02d", root.level)
	}
	n, err := c.node(root, inherited{})
	if err != nil {
		return nil, err
	}
	if err := c.resolveDepends(); err != nil {
		return nil, err
	}
	l := &layout{root: n, name: root.name, maxSize: n.size, static: n.static, slots: c.slots, cached: c.cached}
	n.area = n.size
	if l.maxSize == 0 {
		return nil, c.errorf(root.line, "record %s has no storage", root.describe())
	}
	return l, nil
}

// inherited holds the clauses a group passes to its items.
type inherited struct {
	usage                              usage
	usageSet                           bool
	signSet, signLeading, signSeparate bool
	lenient                            bool
}

func (c *compiler) node(it *item, inh inherited) (*node, error) {
	if it.usageSet {
		if inh.usageSet && inh.usage != it.usage {
			return nil, c.errorf(it.line, "%s: USAGE differs from its group's", it.describe())
		}
		inh.usage, inh.usageSet = it.usage, true
	}
	if it.signSet {
		inh.signSet, inh.signLeading, inh.signSeparate = true, it.signLeading, it.signSeparate
	}
	n := &node{
		key: strings.ReplaceAll(it.name, "-", "_"), name: it.name, line: it.line,
		filler: it.filler() && !c.keepFillers, lenient: inh.lenient,
		occurs: it.occurs, occMin: it.occMin, occMax: it.occMax, depSlot: -1, counterSlot: -1,
		static: true,
	}
	if it.name == "" {
		n.name = "FILLER"
	}
	c.nodes[it] = n
	if it.occurs {
		if it.level == 1 || it.level == 77 {
			return nil, c.errorf(it.line, "OCCURS is not allowed at level %02d", it.level)
		}
		if it.depends != nil {
			c.odo = append(c.odo, it)
			n.static = false
		}
		c.inOccurs++
		defer func() { c.inOccurs-- }()
	}
	if len(it.children) == 0 && it.level != 0 {
		if err := c.elementary(it, n, inh); err != nil {
			return nil, err
		}
	} else {
		if err := c.group(it, n, inh); err != nil {
			return nil, err
		}
	}
	if it.occurs {
		if n.size > 0 && it.occMax > maxRecord/n.size {
			return nil, c.errorf(it.line, "%s: record larger than %d bytes", it.describe(), maxRecord)
		}
		if !n.static || it.occMin != it.occMax {
			c.known = false
		} else if c.known {
			c.offset += n.size * (it.occMax - 1)
		}
	}
	return n, nil
}

func (c *compiler) group(it *item, n *node, inh inherited) error {
	n.kind = kGroup
	if it.justRight {
		return c.errorf(it.line, "%s: JUSTIFIED applies to elementary items, not groups", it.describe())
	}
	fillers := 0
	keys := map[string]int{}
	var base *node // the first item of the current REDEFINES set
	var baseItem *item
	setStart, setEnd, setKnown := 0, 0, false
	for i, ch := range it.children {
		chInh := inh
		isView := ch.redefines != ""
		if isView || i+1 < len(it.children) && it.children[i+1].redefines != "" {
			chInh.lenient = true
		}
		if isView {
			if base == nil || !strings.EqualFold(ch.redefines, baseItem.name) && !strings.EqualFold(ch.redefines, it.children[i-1].name) {
				return c.errorf(ch.line, "%s REDEFINES %s: it must follow %s at the same level", ch.describe(), ch.redefines, ch.redefines)
			}
			if ch.occurs || baseItem.occurs {
				return c.errorf(ch.line, "%s REDEFINES %s: items with OCCURS cannot redefine or be redefined", ch.describe(), ch.redefines)
			}
			c.offset, c.known = setStart, setKnown // a view starts where its set starts
		} else {
			if base != nil && c.known {
				c.offset = max(c.offset, setEnd)
			}
			setStart, setKnown = c.offset, c.known
		}
		cn, err := c.node(ch, chInh)
		if err != nil {
			return err
		}
		if isView {
			base.views = append(base.views, cn)
			if grow := cn.align + cn.size - base.area; grow > 0 {
				n.size += grow
				base.area += grow
			}
			setEnd = max(setEnd, c.offset)
		} else {
			base, baseItem = cn, ch
			cn.area = cn.align + cn.size
			if ch.occurs {
				cn.area = cn.size * ch.occMax
			}
			n.size += cn.area
			setEnd = c.offset
			n.children = append(n.children, cn)
		}
		n.static = n.static && cn.static
		if n.size > maxRecord {
			return c.errorf(ch.line, "record larger than %d bytes", maxRecord)
		}
		if cn.filler {
			continue
		}
		if ch.filler() {
			fillers++
			cn.key = fmt.Sprintf("FILLER_%d", fillers)
		}
		if prev, dup := keys[strings.ToUpper(cn.key)]; dup {
			return c.errorf(ch.line, "%s: duplicate name in group %s (first at line %d)", ch.describe(), it.describe(), prev)
		}
		keys[strings.ToUpper(cn.key)] = ch.line
	}
	if base != nil && c.known {
		c.offset = max(c.offset, setEnd)
	}
	return nil
}

func (c *compiler) elementary(it *item, n *node, inh inherited) error {
	p := it.pic
	us := inh.usage
	if it.justRight && (p == nil || p.class != picAlnum) {
		return c.errorf(it.line, "%s: JUSTIFIED applies to alphanumeric items only", it.describe())
	}
	if inh.signSet && (p == nil || p.class != picNumeric || !p.signed) {
		return c.errorf(it.line, "%s: a SIGN clause needs a signed numeric picture (S9...)", it.describe())
	}
	switch {
	case us == usageFloat4 || us == usageFloat8:
		if p != nil {
			return c.errorf(it.line, "%s: COMP-1 and COMP-2 items take no PICTURE", it.describe())
		}
		n.kind, n.size = kFloat, 4
		if us == usageFloat8 {
			n.size = 8
		}
	case p == nil:
		return c.errorf(it.line, "%s has no PICTURE", it.describe())
	case p.class == picAlnum:
		if us != usageDisplay {
			return c.errorf(it.line, "%s: PIC %s cannot have a binary or packed USAGE", it.describe(), it.picText)
		}
		n.kind, n.size, n.justRight = kAlnum, p.size, it.justRight
	case p.class == picEdited:
		if us != usageDisplay {
			return c.errorf(it.line, "%s: edited PIC %s cannot have a binary or packed USAGE", it.describe(), it.picText)
		}
		n.kind, n.size, n.pic = kEdited, p.size, p
		n.digits, n.scale, n.signed, n.asDecimal = p.digits, p.scale, p.signed, true
	default:
		n.pic, n.digits, n.scale, n.signed = p, p.digits, p.scale, p.signed
		n.asDecimal = p.scale != 0 || p.digits > 18
		switch us {
		case usageDisplay:
			n.kind, n.size = kZoned, p.digits
			n.signLeading, n.signSeparate = inh.signLeading, inh.signSeparate
			if n.signSeparate {
				n.size++
			}
		case usagePacked:
			n.kind, n.size = kPacked, p.digits/2+1
		case usageBinary, usageComp5:
			n.kind, n.comp5 = kBinary, us == usageComp5
			switch {
			case p.digits <= 4:
				n.size = 2
			case p.digits <= 9:
				n.size = 4
			case p.digits <= 18:
				n.size = 8
			default:
				return c.errorf(it.line, "%s: binary items hold at most 18 digits, PIC %s has %d", it.describe(), it.picText, p.digits)
			}
		}
	}
	if it.sync && (n.kind == kBinary || n.kind == kFloat) {
		if c.inOccurs > 0 {
			return c.errorf(it.line, "%s: SYNCHRONIZED inside OCCURS is not supported", it.describe())
		}
		if !c.known {
			return c.errorf(it.line, "%s: SYNCHRONIZED after a variable-length table is not supported", it.describe())
		}
		if r := c.offset % n.size; r != 0 {
			n.align = n.size - r
		}
		c.offset += n.align
	}
	c.offset += n.size
	n.cacheIdx = -1
	if n.size <= recvalue.MaxCached {
		n.cacheIdx = c.cached
		c.cached++
	}
	return nil
}

// resolveDepends finds the counter of each OCCURS DEPENDING ON.
func (c *compiler) resolveDepends() error {
	for _, it := range c.odo {
		var found []*item
		for cand := range c.order {
			if matches(cand, it.depends) {
				found = append(found, cand)
			}
		}
		ref := strings.Join(it.depends, " OF ")
		switch {
		case len(found) == 0:
			return c.errorf(it.line, "%s DEPENDING ON %s: no such item in the record", it.describe(), ref)
		case len(found) > 1:
			return c.errorf(it.line, "%s DEPENDING ON %s: the name is ambiguous, qualify it with OF", it.describe(), ref)
		}
		cnt, cn := found[0], c.nodes[found[0]]
		switch {
		case cn.kind != kZoned && cn.kind != kPacked && cn.kind != kBinary || cn.scale != 0 || cn.asDecimal:
			return c.errorf(it.line, "%s DEPENDING ON %s: the counter must be an integer item", it.describe(), ref)
		case c.order[cnt] >= c.order[it]:
			return c.errorf(it.line, "%s DEPENDING ON %s: the counter must come before the table", it.describe(), ref)
		case c.occursAbove(cnt):
			return c.errorf(it.line, "%s DEPENDING ON %s: the counter cannot be inside an OCCURS", it.describe(), ref)
		}
		if cn.counterSlot < 0 {
			cn.counterSlot = c.slots
			c.slots++
		}
		c.nodes[it].depSlot = cn.counterSlot
	}
	return nil
}

func (c *compiler) occursAbove(it *item) bool {
	for p := it; p != nil; p = p.parent {
		if p.occurs {
			return true
		}
	}
	return false
}

// matches reports whether it is named ref[0] within groups named ref[1:].
func matches(it *item, ref []string) bool {
	if !strings.EqualFold(it.name, ref[0]) {
		return false
	}
	q := ref[1:]
	for p := it.parent; p != nil && len(q) > 0; p = p.parent {
		if strings.EqualFold(p.name, q[0]) {
			q = q[1:]
		}
	}
	return len(q) == 0
}

// selectRoot picks the record named name, or the only one.
func selectRoot(file string, roots []*item, name string) (*item, error) {

	if name != "" {
		var names []string
		for _, r := range roots {
			if strings.EqualFold(r.name, name) {
				return r, nil
			}
			names = append(names, r.describe())
		}
		return nil, fmt.Errorf("copybook %s has no record %q (records: %s)", file, name, strings.Join(names, ", "))
	}
	if len(roots) == 1 {
		return roots[0], nil
	}
	var names []string
	for _, r := range roots {
		names = append(names, r.describe())
	}
	return nil, fmt.Errorf("copybook %s defines several records (%s): set record to choose one", file, strings.Join(names, ", "))
}
