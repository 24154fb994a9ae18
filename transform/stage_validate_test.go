package transform

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

func TestValidateConfig(t *testing.T) {
	checkConfigErrors(t, "validate", "record.a > 0", "pipelines.p.stages[1].validate: want a list of {check, message} rules")
	checkConfigErrors(t, "validate", []any{
		"x",
		map[string]any{"message": "m"},
		map[string]any{"check": "record.a >", "message": "m"},
		map[string]any{"check": "true", "message": 3, "level": "warn"},
		map[string]any{"check": "true", "message": "{{ record.a "},
	},
		"pipelines.p.stages[1].validate[0]: want a mapping with check and message",
		"pipelines.p.stages[1].validate[1].check: required expression is missing",
		`pipelines.p.stages[1].validate[2].check: expression "record.a >"`,
		`pipelines.p.stages[1].validate[3].level: unknown key "level" (known: check, message)`,
		"pipelines.p.stages[1].validate[3].message: want a string",
		`pipelines.p.stages[1].validate[4].message: template "{{ record.a ": "{{" without "}}"`)
}

func TestValidate(t *testing.T) {
	s := buildStage(t, "validate", []any{
		map[string]any{"check": "record.amount > 0", "message": "amount must be positive, got {{ record.amount }}"},
		map[string]any{"check": `regex_match(record.country, "^[A-Z]{2}$")`, "message": "country must be a two-letter code"},
		map[string]any{"check": "record.qty < 100"},
	})
	good := adapters.Record{"amount": decimal.RequireFromString("12.10"), "country": "FR", "qty": int64(1)}
	out, err := applyStage(t, s, adapters.Message{Record: good})
	if err != nil || len(out) != 1 {
		t.Fatalf("valid record: %v, %v", out, err)
	}
	tests := []struct {
		rec  adapters.Record
		want []string
	}{
		{adapters.Record{"amount": decimal.RequireFromString("-1.50"), "country": "France", "qty": int64(1)},
			[]string{"amount must be positive, got -1.50", "country must be a two-letter code"}},
		{adapters.Record{"amount": int64(5), "country": "FR", "qty": int64(500)},
			[]string{"check failed: record.qty < 100"}},
	}
	for _, tc := range tests {
		_, err := applyStage(t, s, adapters.Message{Record: tc.rec})
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%v: got %T %v, want a ValidationError", tc.rec, err, err)
		}
		if !reflect.DeepEqual(ve.Failures, tc.want) {
			t.Errorf("got %q, want %q", ve.Failures, tc.want)
		}
	}
	// A check that cannot run counts as failed, with the reason.
	_, err = applyStage(t, s, adapters.Message{Record: adapters.Record{"amount": int64(5), "country": "FR"}})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Failures) != 1 ||
		!strings.HasPrefix(ve.Failures[0], "check failed: record.qty < 100 (check could not be evaluated: ") ||
		!strings.Contains(ve.Failures[0], "invalid operation") {
		t.Errorf("got %v", err)
	}
	one := &ValidationError{Failures: []string{"a"}}
	two := &ValidationError{Failures: []string{"a", "b"}}
	if one.Error() != "validate: a" || two.Error() != "validate: 2 checks failed: a; b" {
		t.Errorf("messages: %q, %q", one, two)
	}
}
