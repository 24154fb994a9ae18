// Package docgen builds Sluice's self-documentation from the registered
// specs: the listing and field tables of `sluice adapters`, the JSON Schema
// of pipeline files printed by `sluice schema`, and the Markdown reference
// under docs/reference. The specs are the single source of truth; nothing
// here is written by hand per adapter.
package docgen

//go:generate go run ./cmd/gendocs -out ../../docs/reference

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/transform"
)

// Kind is what a documented entry is.
type Kind string

// The kinds, in listing order.
const (
	Source Kind = "source"
	Sink   Kind = "sink"
	Codec  Kind = "codec"
	Stage  Kind = "stage"
	Queue  Kind = "queue"
)

// Kinds lists the kinds `sluice adapters` groups by.
var Kinds = []Kind{Source, Sink, Codec, Stage}

func (k Kind) plural() string {
	return string(k) + "s"
}

// Title is the heading of a group in listings.
func (k Kind) Title() string {
	s := k.plural()
	return strings.ToUpper(s[:1]) + s[1:]
}

// Entry is one documented source, sink, codec, stage or the queue options.
type Entry struct {
	Kind        Kind
	Name        string
	Summary     string
	Description string
	Example     string
	// Fields of a source, sink, codec or queue; nil for stages.
	Fields []adapters.Field
	// Schema of a stage's value; nil for the others.
	Schema map[string]any
}

// EngineFields are the keys the engine reads beside an adapter's own, for
// documentation: every source and sink has a name and a type; sinks also
// say which queue they read and how.
func EngineFields(k Kind) []adapters.Field {
	name := adapters.Field{Name: "name", Type: adapters.TypeString, Description: "Name of the " + string(k) + ", unique in the pipeline: letters, digits, - and _."}
	typ := adapters.Field{Name: "type", Type: adapters.TypeString, Description: "The " + string(k) + " type."}
	switch k {
	case Source:
		return []adapters.Field{name, typ}
	case Sink:
		return []adapters.Field{name, typ,
			{Name: "from", Type: adapters.TypeString, Optional: true, Description: "Queue the sink reads: a declared queue, QUEUE.dlq or dlq. Required when the pipeline declares more than one queue."},
			{Name: "workers", Type: adapters.TypeInt, Default: 1, Description: "Concurrent writes, 1 to 1024."},
			{Name: "batch_size", Type: adapters.TypeInt, Default: 256, Description: "Most messages per write, 1 to 100000."},
		}
	}
	return nil
}

func specEntry(k Kind, name string, s *adapters.Spec) Entry {
	return Entry{Kind: k, Name: name, Summary: s.Summary, Description: s.Description, Example: s.Example, Fields: s.Fields}
}

// Entries returns every registered source, sink, codec and stage, grouped
// by kind in the order of Kinds and sorted by name.
func Entries() []Entry {
	var out []Entry
	for _, n := range adapters.Sources() {
		s, _ := adapters.SourceSpec(n)
		out = append(out, specEntry(Source, n, s))
	}
	for _, n := range adapters.Sinks() {
		s, _ := adapters.SinkSpec(n)
		out = append(out, specEntry(Sink, n, s))
	}
	for _, n := range adapters.Codecs() {
		s, _ := adapters.CodecSpec(n)
		out = append(out, specEntry(Codec, n, s))
	}
	for _, n := range transform.Stages() {
		d, _ := transform.StageDocOf(n)
		out = append(out, Entry{Kind: Stage, Name: n, Summary: d.Summary, Description: d.Description, Example: d.Example, Schema: d.Schema})
	}
	return out
}

// QueueEntry documents the options of a queue.
func QueueEntry() Entry {
	return specEntry(Queue, "queue", pipeline.QueueSpec())
}

// Find returns the entries called name, of kind k when k is not empty.
// The queue options answer to "queue".
func Find(k Kind, name string) []Entry {
	var out []Entry
	if name == "queue" && (k == "" || k == Queue) {
		out = append(out, QueueEntry())
	}
	for _, e := range Entries() {
		if e.Name == name && (k == "" || e.Kind == k) {
			out = append(out, e)
		}
	}
	return out
}

// ParseKind accepts a kind in singular or plural.
func ParseKind(s string) (Kind, bool) {
	s = strings.TrimSuffix(strings.ToLower(s), "s")
	for _, k := range append(Kinds, Queue) {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

// KnownNames lists every documented name, for "did you mean" messages.
func KnownNames() []string {
	seen := map[string]bool{"queue": true}
	for _, e := range Entries() {
		seen[e.Name] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// formatValue renders a default or example value the way it would be
// written in YAML, on one line.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		if x == "" || strings.ContainsAny(x, ":#{}[],&*!|>'\"%@`") || strings.TrimSpace(x) != x {
			return fmt.Sprintf("%q", x)
		}
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []string:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + formatValue(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return formatValue(m)
	default:
		return fmt.Sprint(x)
	}
}

// flatFields lists fields depth first with dotted names for nested objects.
func flatFields(prefix string, fields []adapters.Field, visit func(path string, f adapters.Field, depth int)) {
	for _, f := range fields {
		p := f.Name
		if prefix != "" {
			p = prefix + "." + f.Name
		}
		visit(p, f, strings.Count(p, "."))
		if f.Type == adapters.TypeObject || f.Type == adapters.TypeObjects {
			sub := p
			if f.Type == adapters.TypeObjects {
				sub = p + "[]"
			}
			flatFields(sub, f.Fields, visit)
		}
	}
}

// typeLabel describes a field's type for people.
func typeLabel(f adapters.Field) string {
	switch f.Type {
	case adapters.TypeDuration:
		return "duration"
	case adapters.TypeSize:
		return "size"
	}
	return string(f.Type)
}

// fieldFacts returns the short facts about a field: required or its
// default, secret. Secret fields never show a default.
func fieldFacts(f adapters.Field) []string {
	var facts []string
	switch {
	case f.Required():
		facts = append(facts, "required")
	case f.Default != nil && !f.Secret:
		facts = append(facts, "default "+formatValue(f.Default))
	default:
		facts = append(facts, "optional")
	}
	if f.Secret {
		facts = append(facts, "secret")
	}
	return facts
}
