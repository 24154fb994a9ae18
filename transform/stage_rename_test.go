package transform

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/adapters"
)

func TestRenameConfig(t *testing.T) {
	checkConfigErrors(t, "rename", []any{"a"}, "pipelines.p.stages[1].rename: want a mapping of old field names to new ones")
	checkConfigErrors(t, "rename", map[string]any{}, "want a mapping")
	checkConfigErrors(t, "rename", map[string]any{"a": 1, "b..c": "d", "e": "e", "f": "x.", "g": "z", "h": "z"},
		"pipelines.p.stages[1].rename.a: want the new field name, got int",
		`pipelines.p.stages[1].rename.b..c: field path "b..c" has an empty part`,
		"pipelines.p.stages[1].rename.e: renames e to itself",
		`pipelines.p.stages[1].rename.f: field path "x." has an empty part`,
		"pipelines.p.stages[1].rename.h: g and h are both renamed to z")
	checkConfigErrors(t, "rename", map[string]any{"a": "x", "b": "x.y"},
		"pipelines.p.stages[1].rename.b: new name x.y overlaps x (the new name of a)")
}

func TestRename(t *testing.T) {
	tests := []struct {
		name string
		raw  map[string]any
		in   adapters.Record
		want adapters.Record
	}{
		{"simple", map[string]any{"CUST_NO": "customer_id"},
			adapters.Record{"CUST_NO": "42", "x": 1},
			adapters.Record{"customer_id": "42", "x": 1}},
		{"swap", map[string]any{"a": "b", "b": "a"},
			adapters.Record{"a": 1, "b": 2},
			adapters.Record{"a": 2, "b": 1}},
		{"into and out of objects", map[string]any{"ADDR.CITY": "city", "zip": "address.zip"},
			adapters.Record{"ADDR": adapters.Record{"CITY": "Lyon", "LINE": "x"}, "zip": "69000"},
			adapters.Record{"ADDR": adapters.Record{"LINE": "x"}, "city": "Lyon", "address": adapters.Record{"zip": "69000"}}},
		{"missing source skipped, target replaced", map[string]any{"nope": "x", "a": "b"},
			adapters.Record{"a": 1, "b": 2, "x": 3},
			adapters.Record{"b": 1, "x": 3}},
		{"null values move", map[string]any{"a": "b"},
			adapters.Record{"a": nil},
			adapters.Record{"b": nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := applyStage(t, buildStage(t, "rename", tc.raw), adapters.Message{Record: tc.in})
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || !reflect.DeepEqual(out[0].Record, tc.want) {
				t.Fatalf("got %#v, want %#v", out, tc.want)
			}
		})
	}
	// A new path through a non-object fails and leaves the record as it was.
	s := buildStage(t, "rename", map[string]any{"a": "s.x", "b": "c"})
	rec := adapters.Record{"a": 1, "b": 2, "s": "str"}
	_, err := applyStage(t, s, adapters.Message{Record: rec})
	if err == nil || !strings.Contains(err.Error(), `rename a to s.x: s is string "str", not an object`) {
		t.Fatalf("got %v", err)
	}
	if !reflect.DeepEqual(rec, adapters.Record{"a": 1, "b": 2, "s": "str"}) {
		t.Fatalf("failed rename modified the record: %#v", rec)
	}
	if out, err := applyStage(t, s, adapters.Message{}); err != nil || len(out) != 1 {
		t.Fatalf("nil record: %v, %v", out, err)
	}
}
