package transform

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/adapters"
)

func init() {
	RegisterStage("validate", StageDoc{
		Summary: "Check records; send those that fail to the dead-letter queue with every reason.",
		Description: "The value is a list of `{check, message}` rules. `check` is an expression that must be true " +
			"for a valid record; `message` (a template: `{{ record.id }}` holes are filled in) says what is " +
			"wrong and defaults to the check itself. Every check runs, so the dead-letter error lists all that " +
			"failed, not only the first. A check that cannot be evaluated (a null compared with a number, say) " +
			"counts as failed, with the evaluation error.",
		Example: "validate:\n  - check: record.amount > 0\n    message: amount must be positive, got {{ record.amount }}\n" +
			"  - check: regex_match(record.country, \"^[A-Z]{2}$\")\n    message: country must be a two-letter code\n",
		Schema: map[string]any{"type": "array", "minItems": 1, "items": map[string]any{
			"type": "object", "additionalProperties": false, "required": []string{"check"},
			"properties": map[string]any{
				"check":   map[string]any{"type": "string"},
				"message": map[string]any{"type": "string"},
			}}},
	}, newValidate)
}

// ValidationError is the error of a record that failed validate checks.
type ValidationError struct {
	// Failures holds the message of every failed check, in order.
	Failures []string
}

func (e *ValidationError) Error() string {
	if len(e.Failures) == 1 {
		return "validate: " + e.Failures[0]
	}
	return fmt.Sprintf("validate: %d checks failed: %s", len(e.Failures), strings.Join(e.Failures, "; "))
}

type validateRule struct {
	check   *Program
	message *Template
}

type validateStage struct{ rules []validateRule }

func newValidate(raw any, ctx *BuildContext) (Stage, error) {
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, ctx.Errorf("", "want a list of {check, message} rules")
	}
	var errs adapters.Errors
	s := &validateStage{}
	for i, e := range list {
		p := fmt.Sprintf("%s[%d]", ctx.Path, i)
		m, ok := e.(map[string]any)
		if !ok {
			errs = append(errs, ctx.Errorf(p, "want a mapping with check and message"))
			continue
		}
		for _, k := range sortedKeys(m) {
			if k != "check" && k != "message" {
				errs = append(errs, ctx.Errorf(p+"."+k, "unknown key %q (known: check, message)", k))
			}
		}
		src, ok := m["check"].(string)
		if !ok {
			errs = append(errs, ctx.Errorf(p+".check", "required expression is missing"))
			continue
		}
		var rule validateRule
		prog, err := CompileBool(src)
		if err != nil {
			errs = append(errs, ctx.Errorf(p+".check", "%v", err))
		}
		rule.check = prog
		v, has := m["message"]
		if !has {
			msg := "check failed: " + src
			rule.message = &Template{src: msg, lits: []string{msg}}
			s.rules = append(s.rules, rule)
			continue
		}
		msg, ok := v.(string)
		if !ok {
			errs = append(errs, ctx.Errorf(p+".message", "want a string"))
			continue
		}
		t, err := CompileTemplate(msg)
		if err != nil {
			errs = append(errs, ctx.Errorf(p+".message", "%v", err))
			continue
		}
		rule.message = t
		s.rules = append(s.rules, rule)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

func (s *validateStage) Apply(r *Runner, m adapters.Message, out []adapters.Message) ([]adapters.Message, error) {
	var failed []string
	for _, rule := range s.rules {
		ok, err := r.EvalBool(rule.check, m.Record, m.Meta)
		if ok && err == nil {
			continue
		}
		msg, merr := r.Render(rule.message, m.Record, m.Meta)
		if merr != nil {
			msg = rule.message.String()
		}
		if err != nil {
			msg += " (check could not be evaluated: " + err.Error() + ")"
		}
		failed = append(failed, msg)
	}
	if len(failed) > 0 {
		return out, &ValidationError{Failures: failed}
	}
	return append(out, m), nil
}
