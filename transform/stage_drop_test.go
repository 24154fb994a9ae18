package transform

import (
	"reflect"
	"testing"

	"github.com/sluicehq/sluice/adapters"
)

func TestDropConfig(t *testing.T) {
	checkConfigErrors(t, "drop", map[string]any{"a": 1}, "pipelines.p.stages[1].drop: want a list of field names")
	checkConfigErrors(t, "drop", []any{}, "want a list of field names")
	checkConfigErrors(t, "drop", []any{"a", 3, "b.", "a"},
		"pipelines.p.stages[1].drop[1]: want a field name, got int",
		`pipelines.p.stages[1].drop[2]: field path "b." has an empty part`,
		"pipelines.p.stages[1].drop[3]: a is listed twice")
	checkConfigErrors(t, "drop", ".x", `pipelines.p.stages[1].drop: field path ".x" has an empty part`)
}

func TestDrop(t *testing.T) {
	tests := []struct {
		raw  any
		in   adapters.Record
		want adapters.Record
	}{
		{"FILLER", adapters.Record{"FILLER": "  ", "a": 1}, adapters.Record{"a": 1}},
		{[]any{"a", "b.c", "missing", "x.y.z"},
			adapters.Record{"a": 1, "b": adapters.Record{"c": 2, "d": 3}, "x": "str"},
			adapters.Record{"b": adapters.Record{"d": 3}, "x": "str"}},
	}
	for _, tc := range tests {
		out, err := applyStage(t, buildStage(t, "drop", tc.raw), adapters.Message{Record: tc.in})
		if err != nil || len(out) != 1 || !reflect.DeepEqual(out[0].Record, tc.want) {
			t.Errorf("drop %v: got %#v, %v; want %#v", tc.raw, out, err, tc.want)
		}
	}
	if out, err := applyStage(t, buildStage(t, "drop", "a"), adapters.Message{}); err != nil || len(out) != 1 {
		t.Errorf("nil record: %v, %v", out, err)
	}
}
