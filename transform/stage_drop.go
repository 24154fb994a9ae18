package transform

import (
	"fmt"

	"github.com/sluicehq/sluice/adapters"
)

func init() {
	RegisterStage("drop", StageDoc{
		Summary: "Delete record fields.",
		Description: "The value is a list of field names (or one name); dotted paths delete inside nested " +
			"objects. A missing field is skipped. To drop whole messages, use filter.",
		Example: "drop: [CUST_FILLER, address.line3]\n",
		Schema: map[string]any{"oneOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string"}},
		}},
	}, newDrop)
}

type dropStage struct{ fields [][]string }

func newDrop(raw any, ctx *BuildContext) (Stage, error) {
	var list []any
	switch v := raw.(type) {
	case string:
		list = []any{v}
	case []any:
		list = v
	}
	if len(list) == 0 {
		return nil, ctx.Errorf("", "want a list of field names")
	}
	var errs adapters.Errors
	s := &dropStage{}
	seen := map[string]bool{}
	for i, e := range list {
		p := fmt.Sprintf("%s[%d]", ctx.Path, i)
		if _, ok := raw.(string); ok {
			p = ctx.Path
		}
		name, ok := e.(string)
		if !ok {
			errs = append(errs, ctx.Errorf(p, "want a field name, got %s", kindName(e)))
			continue
		}
		path, err := splitPath(name)
		if err != nil {
			errs = append(errs, ctx.Errorf(p, "%v", err))
			continue
		}
		if seen[name] {
			errs = append(errs, ctx.Errorf(p, "%s is listed twice", name))
			continue
		}
		seen[name] = true
		s.fields = append(s.fields, path)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func (s *dropStage) Apply(_ *Runner, m adapters.Message, out []adapters.Message) ([]adapters.Message, error) {
	if m.Record != nil {
		for _, f := range s.fields {
			deletePath(m.Record, f)
		}
	}
	return append(out, m), nil
}
