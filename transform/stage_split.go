package transform

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/adapters"
)

func init() {
	RegisterStage("split", StageDoc{
		Summary: "Turn an array field into one message per element.",
		Description: "`field` (a dotted path) must hold an array; each element becomes a message. With `as`, the " +
			"element is stored under that field; without it, an object element's fields are merged into the top " +
			"level (overriding parent fields of the same name) and any other element is stored under `value`. " +
			"`keep` says which parent fields each message carries: `all` (the default: every field but the array), " +
			"`none`, or a list of dotted paths. Child IDs are derived from the parent's ID and the element's index, " +
			"so a replayed message splits into the same IDs; metadata is copied. An empty array drops the message " +
			"(counted as a drop); a missing or non-array field sends it to the dead-letter queue. The short form " +
			"`split: items` is `split: {field: items}`.",
		Example: "split:\n  field: items\n  keep: [order_id, customer]\n",
		Schema: map[string]any{"oneOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "object", "additionalProperties": false, "required": []string{"field"},
				"properties": map[string]any{
					"field": map[string]any{"type": "string"},
					"as":    map[string]any{"type": "string"},
					"keep": map[string]any{"oneOf": []any{
						map[string]any{"enum": []string{"all", "none"}},
						map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
					}},
				}},
		}},
	}, newSplit)
}

type splitStage struct {
	field   []string
	name    string   // field, for errors
	as      []string // nil: merge an object element, else "value"
	keepAll bool
	keep    [][]string // when !keepAll; empty keeps nothing
}

func newSplit(raw any, ctx *BuildContext) (Stage, error) {
	if s, ok := raw.(string); ok {
		raw = map[string]any{"field": s}
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, ctx.Errorf("", "want {field: ARRAY_FIELD, as: ..., keep: ...} or the field name")
	}
	var errs adapters.Errors
	for _, k := range sortedKeys(m) {
		if k != "field" && k != "as" && k != "keep" {
			errs = append(errs, ctx.Errorf(ctx.Path+"."+k, "unknown key %q (known: as, field, keep)", k))
		}
	}
	s := &splitStage{keepAll: true}
	if f, ok := m["field"].(string); !ok {
		errs = append(errs, ctx.Errorf(ctx.Path+".field", "required field name is missing"))
	} else if p, err := splitPath(f); err != nil {
		errs = append(errs, ctx.Errorf(ctx.Path+".field", "%v", err))
	} else {
		s.field, s.name = p, f
	}
	if v, has := m["as"]; has {
		if a, ok := v.(string); !ok {
			errs = append(errs, ctx.Errorf(ctx.Path+".as", "want a field name"))
		} else if p, err := splitPath(a); err != nil {
			errs = append(errs, ctx.Errorf(ctx.Path+".as", "%v", err))
		} else {
			s.as = p
		}
	}
	switch k := m["keep"].(type) {
	case nil:
		if _, has := m["keep"]; has {
			errs = append(errs, ctx.Errorf(ctx.Path+".keep", "want all, none or a list of fields"))
		}
	case string:
		switch k {
		case "all":
		case "none":
			s.keepAll = false
		default:
			errs = append(errs, ctx.Errorf(ctx.Path+".keep", "invalid value %q (allowed: all, none, or a list of fields)", k))
		}
	case []any:
		s.keepAll = false
		for i, e := range k {
			p := fmt.Sprintf("%s.keep[%d]", ctx.Path, i)
			f, ok := e.(string)
			if !ok {
				errs = append(errs, ctx.Errorf(p, "want a field name"))
				continue
			}
			path, err := splitPath(f)
			if err != nil {
				errs = append(errs, ctx.Errorf(p, "%v", err))
				continue
			}
			s.keep = append(s.keep, path)
		}
	default:
		errs = append(errs, ctx.Errorf(ctx.Path+".keep", "want all, none or a list of fields"))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func (s *splitStage) Apply(_ *Runner, m adapters.Message, out []adapters.Message) ([]adapters.Message, error) {
	v, found := findPath(m.Record, s.field)
	if !found {
		return out, fmt.Errorf("split: field %s is missing", s.name)
	}
	items, ok := v.([]any)
	if !ok {
		return out, fmt.Errorf("split: field %s is %s, not an array", s.name, describeValue(v))
	}
	if len(items) == 0 {
		return out, nil
	}
	// Each child gets its own copy of the kept parent fields; the last one
	// gets the original values, since the parent message is consumed. The
	// parent's record itself is left as it was, in case the message is
	// dead-lettered.
	var parent adapters.Record
	if s.keepAll {
		parent = withoutPath(m.Record, s.field)
	} else if len(s.keep) > 0 {
		parent = adapters.Record{}
		for _, k := range s.keep {
			if kv, ok := findPath(m.Record, k); ok {
				if err := setPath(parent, k, kv); err != nil {
					return out, fmt.Errorf("split: keep %s: %w", strings.Join(k, "."), err)
				}
			}
		}
	}
	if s.as != nil {
		if err := settable(parent, s.as); err != nil {
			return out, fmt.Errorf("split: as %s: %w", strings.Join(s.as, "."), err)
		}
	}
	for i, item := range items {
		last := i == len(items)-1
		var rec adapters.Record
		switch {
		case parent == nil:
			rec = make(adapters.Record, 4)
		case last:
			rec = parent
		default:
			rec = deepCopy(parent).(adapters.Record)
		}
		if err := s.place(rec, item); err != nil {
			return out, fmt.Errorf("split: element %d: %w", i, err)
		}
		child := adapters.Message{ID: adapters.NewID(m.ID, strconv.Itoa(i)), Record: rec, Time: m.Time, Meta: m.Meta}
		if !last && m.Meta != nil {
			child.Meta = m.CloneMeta()
		}
		out = append(out, child)
	}
	return out, nil
}

// withoutPath returns a copy of rec without path, copying only the objects
// along the path.
func withoutPath(rec adapters.Record, path []string) adapters.Record {
	out := make(adapters.Record, len(rec))
	for k, v := range rec {
		out[k] = v
	}
	if len(path) == 1 {
		delete(out, path[0])
		return out
	}
	if sub, ok := rec[path[0]].(adapters.Record); ok {
		out[path[0]] = withoutPath(sub, path[1:])
	}
	return out
}

// settable reports why setPath(rec, path, v) would fail.
func settable(rec adapters.Record, path []string) error {
	cur := rec
	for i, p := range path[:len(path)-1] {
		next, ok := cur[p]
		if !ok || next == nil {
			return nil
		}
		nm, ok := next.(adapters.Record)
		if !ok {
			return fmt.Errorf("%s is %s, not an object", strings.Join(path[:i+1], "."), describeValue(next))
		}
		cur = nm
	}
	return nil
}

func (s *splitStage) place(rec adapters.Record, item any) error {
	if s.as != nil {
		return setPath(rec, s.as, item)
	}
	if obj, ok := item.(adapters.Record); ok {
		for k, v := range obj {
			rec[k] = v
		}
		return nil
	}
	rec["value"] = item
	return nil
}

// findPath returns the value at a path of nested objects.
func findPath(rec adapters.Record, path []string) (any, bool) {
	cur := rec
	for i, p := range path {
		v, ok := cur[p]
		if !ok {
			return nil, false
		}
		if i == len(path)-1 {
			return v, true
		}
		if cur, ok = v.(adapters.Record); !ok {
			return nil, false
		}
	}
	return nil, false
}
