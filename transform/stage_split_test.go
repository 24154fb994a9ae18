package transform

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// stageCtx is the build context of the stage tests.
func stageCtx(name string) *BuildContext {
	return &BuildContext{File: "p.yaml", Path: "pipelines.p.stages[1]." + name,
		Queues: map[string]bool{"out": true}}
}

func buildStage(t *testing.T, name string, raw any) Stage {
	t.Helper()
	s, err := NewStage(name, raw, stageCtx(name))
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return s
}

// checkConfigErrors builds a stage from raw and checks that it fails with
// every wanted message, each at its key path.
func checkConfigErrors(t *testing.T, name string, raw any, want ...string) {
	t.Helper()
	_, err := NewStage(name, raw, stageCtx(name))
	if err == nil {
		t.Fatalf("%v: no error, want %q", raw, want)
	}
	es := adapters.AsErrors(err, "", 0)
	if len(es) != len(want) {
		t.Errorf("%v: got %d errors, want %d:\n%v", raw, len(es), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v: errors lack %q:\n%v", raw, w, err)
		}
	}
}

func applyStage(t *testing.T, s Stage, m adapters.Message) ([]adapters.Message, error) {
	t.Helper()
	var r Runner
	return s.Apply(&r, m, nil)
}

func orderMessage() adapters.Message {
	return adapters.Message{ID: "p1", Time: time.Unix(100, 0), Meta: map[string]string{"source": "drop"},
		Record: adapters.Record{
			"order_id": int64(7), "customer": adapters.Record{"name": "ACME"}, "note": "n",
			"items": []any{adapters.Record{"sku": "A", "qty": int64(1)}, adapters.Record{"sku": "B", "qty": int64(2), "note": "fragile"}},
		}}
}

func TestSplitConfig(t *testing.T) {
	checkConfigErrors(t, "split", 42, "pipelines.p.stages[1].split: want {field")
	checkConfigErrors(t, "split", map[string]any{"as": 1, "keep": "some", "colour": "red"},
		`p.yaml: pipelines.p.stages[1].split.colour: unknown key "colour" (known: as, field, keep)`,
		"pipelines.p.stages[1].split.field: required field name is missing",
		"pipelines.p.stages[1].split.as: want a field name",
		`pipelines.p.stages[1].split.keep: invalid value "some" (allowed: all, none, or a list of fields)`)
	checkConfigErrors(t, "split", map[string]any{"field": "a..b", "keep": []any{"x", 3, ".y"}},
		`pipelines.p.stages[1].split.field: field path "a..b" has an empty part`,
		"pipelines.p.stages[1].split.keep[1]: want a field name",
		`pipelines.p.stages[1].split.keep[2]: field path ".y" has an empty part`)
	checkConfigErrors(t, "split", map[string]any{"field": "x", "keep": nil},
		"pipelines.p.stages[1].split.keep: want all, none or a list of fields")
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		raw  any
		want []adapters.Record
	}{
		{"merge, keep all (default)", "items", []adapters.Record{
			{"order_id": int64(7), "customer": adapters.Record{"name": "ACME"}, "note": "n", "sku": "A", "qty": int64(1)},
			{"order_id": int64(7), "customer": adapters.Record{"name": "ACME"}, "note": "fragile", "sku": "B", "qty": int64(2)},
		}},
		{"as, keep list", map[string]any{"field": "items", "as": "item", "keep": []any{"order_id", "customer.name", "missing"}}, []adapters.Record{
			{"order_id": int64(7), "customer": adapters.Record{"name": "ACME"}, "item": adapters.Record{"sku": "A", "qty": int64(1)}},
			{"order_id": int64(7), "customer": adapters.Record{"name": "ACME"}, "item": adapters.Record{"sku": "B", "qty": int64(2), "note": "fragile"}},
		}},
		{"keep none", map[string]any{"field": "items", "keep": "none"}, []adapters.Record{
			{"sku": "A", "qty": int64(1)},
			{"sku": "B", "qty": int64(2), "note": "fragile"},
		}},
		{"nested as", map[string]any{"field": "items", "as": "line.item", "keep": "none"}, []adapters.Record{
			{"line": adapters.Record{"item": adapters.Record{"sku": "A", "qty": int64(1)}}},
			{"line": adapters.Record{"item": adapters.Record{"sku": "B", "qty": int64(2), "note": "fragile"}}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := buildStage(t, "split", tc.raw)
			out, err := applyStage(t, s, orderMessage())
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(tc.want) {
				t.Fatalf("got %d messages, want %d", len(out), len(tc.want))
			}
			for i, m := range out {
				if !reflect.DeepEqual(m.Record, tc.want[i]) {
					t.Errorf("child %d: got %#v\nwant %#v", i, m.Record, tc.want[i])
				}
				if want := adapters.NewID("p1", strconv.Itoa(i)); m.ID != want {
					t.Errorf("child %d: ID %s, want %s", i, m.ID, want)
				}
				if m.Meta["source"] != "drop" || !m.Time.Equal(time.Unix(100, 0)) {
					t.Errorf("child %d: meta %v time %v not copied", i, m.Meta, m.Time)
				}
			}
			// Children share nothing: changing one leaves the others alone.
			if c, ok := out[0].Record["customer"].(adapters.Record); ok {
				c["name"] = "changed"
				if out[1].Record["customer"].(adapters.Record)["name"] != "ACME" {
					t.Error("children share the customer object")
				}
			}
			out[0].Meta["source"] = "changed"
			if out[1].Meta["source"] != "drop" {
				t.Error("children share their metadata")
			}
		})
	}
}

func TestSplitScalarsAndNested(t *testing.T) {
	s := buildStage(t, "split", map[string]any{"field": "batch.codes", "keep": "all"})
	m := adapters.Message{ID: "p", Record: adapters.Record{"id": "x", "batch": adapters.Record{"codes": []any{"a", int64(2)}, "n": int64(2)}}}
	out, err := applyStage(t, s, m)
	if err != nil {
		t.Fatal(err)
	}
	want := []adapters.Record{
		{"id": "x", "batch": adapters.Record{"n": int64(2)}, "value": "a"},
		{"id": "x", "batch": adapters.Record{"n": int64(2)}, "value": int64(2)},
	}
	for i := range want {
		if !reflect.DeepEqual(out[i].Record, want[i]) {
			t.Errorf("child %d: got %#v, want %#v", i, out[i].Record, want[i])
		}
	}
	// The parent's record is untouched, in case it is dead-lettered.
	if len(m.Record["batch"].(adapters.Record)["codes"].([]any)) != 2 {
		t.Error("split modified the parent's record")
	}
	// The same parent splits into the same IDs every time.
	again, _ := applyStage(t, s, m)
	if again[1].ID != out[1].ID || out[0].ID == out[1].ID {
		t.Errorf("IDs not deterministic and distinct: %s %s %s", out[0].ID, out[1].ID, again[1].ID)
	}
}

func TestSplitRuntime(t *testing.T) {
	s := buildStage(t, "split", "items")
	tests := []struct {
		rec  adapters.Record
		err  string
		outs int
	}{
		{adapters.Record{"items": []any{}}, "", 0},
		{adapters.Record{"x": 1}, "split: field items is missing", 0},
		{adapters.Record{"items": nil}, "split: field items is nil, not an array", 0},
		{adapters.Record{"items": "abc"}, `split: field items is string "abc", not an array`, 0},
		{nil, "split: field items is missing", 0},
	}
	for _, tc := range tests {
		out, err := applyStage(t, s, adapters.Message{ID: "p", Record: tc.rec})
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%v: error %v, want %q", tc.rec, err, tc.err)
			}
			continue
		}
		if err != nil || len(out) != tc.outs {
			t.Errorf("%v: %d messages, %v", tc.rec, len(out), err)
		}
	}
	as := buildStage(t, "split", map[string]any{"field": "items", "as": "note.item"})
	m := orderMessage()
	if _, err := applyStage(t, as, m); err == nil || !strings.Contains(err.Error(), `split: as note.item: note is string "n", not an object`) {
		t.Errorf("got %v", err)
	}
	if len(m.Record["items"].([]any)) != 2 || m.Record["note"] != "n" {
		t.Error("a failed split modified the parent's record")
	}
}

// TestSplitInChain checks the drop count and dead-lettering through Chain.
func TestSplitInChain(t *testing.T) {
	ch := NewChain([]Stage{buildStage(t, "split", "items")}, nil, "out")
	var r Runner
	out, dropped := ch.Process(&r, adapters.Message{ID: "e", Record: adapters.Record{"items": []any{}}}, nil)
	if len(out) != 0 || dropped != 1 {
		t.Errorf("empty array: %d outputs, %d dropped", len(out), dropped)
	}
	out, _ = ch.Process(&r, adapters.Message{ID: "bad", Record: adapters.Record{"items": 3}}, nil)
	if len(out) != 1 || out[0].Err == nil || out[0].Msg.ID != "bad" {
		t.Errorf("non-array: %+v", out)
	}
	out, _ = ch.Process(&r, orderMessage(), nil)
	if len(out) != 2 || out[0].Queues[0] != "out" || out[1].Msg.Record["sku"] != "B" {
		t.Errorf("split: %+v", out)
	}
}
