package transform

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/adapters"
)

func init() {
	RegisterStage("map", StageDoc{
		Summary: "Assign or delete record fields with expressions.",
		Description: "The value is a mapping of field name to expression. Every expression is evaluated " +
			"against the record as it entered the stage, then the results are assigned, so the order of " +
			"the keys does not matter. A dotted name (`customer.name`) assigns inside a nested object, " +
			"creating it when missing. A null value (`field: ~`) deletes the field. A number or boolean " +
			"value is a constant; to assign a constant string, quote it inside the expression: `'\"EUR\"'`.",
		Example: "map:\n  order_id: int(record.ORDER_NO)\n  customer: trim(record.CUST)\n  CUST: ~\n",
		Schema:  map[string]any{"type": "object", "additionalProperties": map[string]any{"type": []string{"string", "number", "boolean", "null"}}},
	}, newMap)
}

type assignment struct {
	field []string // path of the target field
	prog  *Program // nil: delete; else the expression
	value any      // constant when prog is nil and del is false
	del   bool
	konst bool
}

type mapStage struct {
	assigns []assignment
}

func newMap(raw any, ctx *BuildContext) (Stage, error) {
	m, ok := raw.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, ctx.Errorf("", "want a mapping of field names to expressions")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs adapters.Errors
	s := &mapStage{}
	for _, k := range keys {
		path := ctx.Path + "." + k
		field := strings.Split(k, ".")
		for _, part := range field {
			if part == "" {
				errs = append(errs, ctx.Errorf(path, "field name %q has an empty part", k))
			}
		}
		a := assignment{field: field}
		switch v := m[k].(type) {
		case nil:
			a.del = true
		case string:
			p, err := Compile(v)
			if err != nil {
				errs = append(errs, ctx.Errorf(path, "%v", err))
				continue
			}
			a.prog = p
		case bool, int, int64, uint64, float64:
			a.konst, a.value = true, Normalize(v)
		default:
			errs = append(errs, ctx.Errorf(path, "want an expression string, got a %s", kindName(v)))
			continue
		}
		s.assigns = append(s.assigns, a)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func kindName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

func (s *mapStage) Apply(r *Runner, m adapters.Message, out []adapters.Message) ([]adapters.Message, error) {
	if m.Record == nil {
		m.Record = adapters.Record{}
	}
	// Evaluate everything against the input first, then assign.
	var small [8]any
	vals := small[:0]
	for i := range s.assigns {
		a := &s.assigns[i]
		if a.prog == nil {
			vals = append(vals, a.value)
			continue
		}
		v, err := r.Eval(a.prog, m.Record, m.Meta)
		if err != nil {
			return out, fmt.Errorf("map %s: %w", strings.Join(a.field, "."), err)
		}
		vals = append(vals, v)
	}
	for i := range s.assigns {
		a := &s.assigns[i]
		if a.del {
			deletePath(m.Record, a.field)
			continue
		}
		if err := setPath(m.Record, a.field, vals[i]); err != nil {
			return out, fmt.Errorf("map %s: %w", strings.Join(a.field, "."), err)
		}
	}
	return append(out, m), nil
}

func setPath(rec adapters.Record, path []string, v any) error {
	cur := rec
	for i, p := range path[:len(path)-1] {
		next, ok := cur[p]
		if !ok || next == nil {
			n := adapters.Record{}
			cur[p] = n
			cur = n
			continue
		}
		nm, ok := next.(adapters.Record)
		if !ok {
			return fmt.Errorf("%s is a %T, not an object", strings.Join(path[:i+1], "."), next)
		}
		cur = nm
	}
	cur[path[len(path)-1]] = v
	return nil
}

func deletePath(rec adapters.Record, path []string) {
	cur := rec
	for _, p := range path[:len(path)-1] {
		nm, ok := cur[p].(adapters.Record)
		if !ok {
			return
		}
		cur = nm
	}
	delete(cur, path[len(path)-1])
}
