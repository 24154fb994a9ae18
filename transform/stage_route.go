package transform

import (
	"fmt"
	"sort"

	"github.com/sluicehq/sluice/adapters"
)

func init() {
	RegisterStage("route", StageDoc{
		Summary: "Send each message to named queues; must be the last stage.",
		Description: "Short form: a list of `{when, to}` rules; the first rule whose `when` is true wins, and a " +
			"rule without `when` is the default. Long form: `{mode: first | all, routes: [...], default: QUEUE}`; " +
			"with `mode: all` a message goes to every queue whose rule matches (fan-out). A message that matches " +
			"nothing and has no default goes to the pipeline's dead-letter queue, never nowhere.",
		Example: "route:\n  - when: record.amount >= 10000\n    to: large\n  - to: orders\n",
		Schema: map[string]any{"oneOf": []any{
			map[string]any{"type": "array", "items": routeRuleSchema},
			map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
				"mode":    map[string]any{"enum": []string{"first", "all"}},
				"routes":  map[string]any{"type": "array", "items": routeRuleSchema},
				"default": map[string]any{"type": "string"},
			}},
		}},
	}, newRoute)
}

var routeRuleSchema = map[string]any{"type": "object", "additionalProperties": false, "required": []string{"to"},
	"properties": map[string]any{"when": map[string]any{"type": "string"}, "to": map[string]any{"type": "string"}}}

type routeRule struct {
	when *Program
	to   []string
}

type routeStage struct {
	all     bool
	rules   []routeRule
	deflt   []string
	targets []string
}

func newRoute(raw any, ctx *BuildContext) (Stage, error) {
	s := &routeStage{}
	var errs adapters.Errors
	var list []any
	listPath := ctx.Path
	switch v := raw.(type) {
	case []any:
		list = v
	case map[string]any:
		for k := range v {
			if k != "mode" && k != "routes" && k != "default" {
				errs = append(errs, ctx.Errorf(ctx.Path+"."+k, "unknown key %q (known: default, mode, routes)", k))
			}
		}
		switch mode := v["mode"]; mode {
		case nil, "first":
		case "all":
			s.all = true
		default:
			errs = append(errs, ctx.Errorf(ctx.Path+".mode", "invalid value %v (allowed: first, all)", mode))
		}
		if d, ok := v["default"]; ok {
			q, ok := d.(string)
			if !ok {
				errs = append(errs, ctx.Errorf(ctx.Path+".default", "want a queue name"))
			} else if !ctx.Queues[q] {
				errs = append(errs, ctx.Errorf(ctx.Path+".default", "queue %q is not declared (declared: %s)", q, queueList(ctx.Queues)))
			} else {
				s.deflt = []string{q}
			}
		}
		routes, ok := v["routes"].([]any)
		if !ok {
			errs = append(errs, ctx.Errorf(ctx.Path+".routes", "want a list of {when, to} rules"))
		}
		list = routes
		listPath = ctx.Path + ".routes"
	default:
		return nil, ctx.Errorf("", "want a list of {when, to} rules or a mapping with routes")
	}
	for i, e := range list {
		p := fmt.Sprintf("%s[%d]", listPath, i)
		rm, ok := e.(map[string]any)
		if !ok {
			errs = append(errs, ctx.Errorf(p, "want a mapping with when and to"))
			continue
		}
		for k := range rm {
			if k != "when" && k != "to" {
				errs = append(errs, ctx.Errorf(p+"."+k, "unknown key %q (known: to, when)", k))
			}
		}
		to, ok := rm["to"].(string)
		if !ok {
			errs = append(errs, ctx.Errorf(p+".to", "required queue name is missing"))
			continue
		}
		if !ctx.Queues[to] {
			errs = append(errs, ctx.Errorf(p+".to", "queue %q is not declared (declared: %s)", to, queueList(ctx.Queues)))
			continue
		}
		w, has := rm["when"]
		if !has {
			if s.deflt != nil {
				errs = append(errs, ctx.Errorf(p, "a second default route (a rule without when)"))
			}
			s.deflt = []string{to}
			continue
		}
		src, ok := w.(string)
		if !ok {
			errs = append(errs, ctx.Errorf(p+".when", "want an expression string"))
			continue
		}
		prog, err := CompileBool(src)
		if err != nil {
			errs = append(errs, ctx.Errorf(p+".when", "%v", err))
			continue
		}
		s.rules = append(s.rules, routeRule{when: prog, to: []string{to}})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	seen := map[string]bool{}
	for _, r := range s.rules {
		seen[r.to[0]] = true
	}
	if s.deflt != nil {
		seen[s.deflt[0]] = true
	}
	for q := range seen {
		s.targets = append(s.targets, q)
	}
	sort.Strings(s.targets)
	return s, nil
}

func queueList(qs map[string]bool) string {
	names := make([]string, 0, len(qs))
	for q := range qs {
		names = append(names, q)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return joinNames(names)
}

// Apply passes the message on; routing happens in Route.
func (s *routeStage) Apply(r *Runner, m adapters.Message, out []adapters.Message) ([]adapters.Message, error) {
	return append(out, m), nil
}

func (s *routeStage) Queues() []string { return s.targets }

func (s *routeStage) Route(r *Runner, m *adapters.Message) ([]string, error) {
	var out []string
	for _, rule := range s.rules {
		ok, err := r.EvalBool(rule.when, m.Record, m.Meta)
		if err != nil {
			return nil, fmt.Errorf("route: %w", err)
		}
		if !ok {
			continue
		}
		if !s.all {
			return rule.to, nil
		}
		out = append(out, rule.to[0])
	}
	if len(out) == 0 {
		return s.deflt, nil
	}
	return dedupe(out), nil
}

func dedupe(qs []string) []string {
	if len(qs) < 2 {
		return qs
	}
	seen := make(map[string]bool, len(qs))
	out := qs[:0]
	for _, q := range qs {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out
}
