package transform

import "github.com/sluicehq/sluice/adapters"

func init() {
	RegisterStage("filter", StageDoc{
		Summary:     "Keep a message when an expression is true; drop it otherwise.",
		Description: "The value is an expression that must yield true or false. Dropped messages are counted, not dead-lettered. An expression that fails at run time (a missing field compared with a number, say) sends the message to the dead-letter queue.",
		Example:     "filter: record.amount > 0 && record.status != \"CANCELLED\"\n",
		Schema:      map[string]any{"type": "string"},
	}, newFilter)
}

type filterStage struct{ prog *Program }

func newFilter(raw any, ctx *BuildContext) (Stage, error) {
	src, ok := raw.(string)
	if !ok {
		return nil, ctx.Errorf("", "want an expression string")
	}
	p, err := CompileBool(src)
	if err != nil {
		return nil, ctx.Errorf("", "%v", err)
	}
	return &filterStage{prog: p}, nil
}

func (s *filterStage) Apply(r *Runner, m adapters.Message, out []adapters.Message) ([]adapters.Message, error) {
	keep, err := r.EvalBool(s.prog, m.Record, m.Meta)
	if err != nil {
		return out, err
	}
	if keep {
		out = append(out, m)
	}
	return out, nil
}
