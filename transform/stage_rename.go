package transform

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/adapters"
)

func init() {
	RegisterStage("rename", StageDoc{
		Summary: "Rename record fields.",
		Description: "The value maps old field names to new ones; both may be dotted paths, so a field can move " +
			"into or out of a nested object (missing objects on the new path are created). All renames happen " +
			"at once: `{a: b, b: a}` swaps two fields. A missing old field is skipped; an existing field at the " +
			"new name is replaced. A new path that runs through a non-object value sends the message to the " +
			"dead-letter queue.",
		Example: "rename:\n  CUST_NO: customer_id\n  ADDR.CITY: city\n",
		Schema: map[string]any{"type": "object", "minProperties": 1,
			"additionalProperties": map[string]any{"type": "string"}},
	}, newRename)
}

type renameStage struct {
	from, to [][]string
}

func newRename(raw any, ctx *BuildContext) (Stage, error) {
	m, ok := raw.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, ctx.Errorf("", "want a mapping of old field names to new ones")
	}
	var errs adapters.Errors
	s := &renameStage{}
	targets := map[string]string{} // new → old
	for _, old := range sortedKeys(m) {
		p := ctx.Path + "." + old
		from, err := splitPath(old)
		if err != nil {
			errs = append(errs, ctx.Errorf(p, "%v", err))
			continue
		}
		name, ok := m[old].(string)
		if !ok {
			errs = append(errs, ctx.Errorf(p, "want the new field name, got %s", kindName(m[old])))
			continue
		}
		to, err := splitPath(name)
		if err != nil {
			errs = append(errs, ctx.Errorf(p, "%v", err))
			continue
		}
		if name == old {
			errs = append(errs, ctx.Errorf(p, "renames %s to itself", old))
			continue
		}
		if prev, dup := targets[name]; dup {
			errs = append(errs, ctx.Errorf(p, "%s and %s are both renamed to %s", prev, old, name))
			continue
		}
		for t, o := range targets {
			if strings.HasPrefix(t, name+".") || strings.HasPrefix(name, t+".") {
				errs = append(errs, ctx.Errorf(p, "new name %s overlaps %s (the new name of %s)", name, t, o))
			}
		}
		targets[name] = old
		s.from = append(s.from, from)
		s.to = append(s.to, to)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func (s *renameStage) Apply(_ *Runner, m adapters.Message, out []adapters.Message) ([]adapters.Message, error) {
	if m.Record == nil {
		return append(out, m), nil
	}
	var small [8]any
	var foundSmall [8]bool
	vals, found := small[:0], foundSmall[:0]
	for _, f := range s.from {
		v, ok := findPath(m.Record, f)
		vals, found = append(vals, v), append(found, ok)
	}
	for i, f := range s.from {
		if found[i] {
			deletePath(m.Record, f)
		}
	}
	// Check every new path before assigning, so that a message sent to the
	// dead-letter queue is restored as it came.
	for i, t := range s.to {
		if !found[i] {
			continue
		}
		if err := settable(m.Record, t); err != nil {
			for j, f := range s.from {
				if found[j] {
					_ = setPath(m.Record, f, vals[j]) // the path existed a moment ago
				}
			}
			return out, fmt.Errorf("rename %s to %s: %w", strings.Join(s.from[i], "."), strings.Join(t, "."), err)
		}
	}
	for i, t := range s.to {
		if found[i] {
			_ = setPath(m.Record, t, vals[i]) // checked above
		}
	}
	return append(out, m), nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
