package docgen

import (
	"encoding/json"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/transform"
)

// SchemaID is the $id of the pipeline file schema.
const SchemaID = "https://sluice.dev/schema/pipeline.json"

// Patterns of the scalar forms the config decoder accepts. ECMA-262 regular
// expressions, as JSON Schema requires.
const (
	// EnvPattern matches a ${VAR}, ${VAR:-default} or ${VAR:?message}
	// reference, allowed in any scalar: it is expanded before decoding.
	EnvPattern      = `\$\{[A-Za-z_][A-Za-z0-9_]*(:[-?][^}]*)?\}`
	durationPattern = `^\s*[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)\s*$`
	sizePattern     = `^\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*([bB]|[kKmMgGtT]([bB]|[iI][bB])?)?\s*$`
	intPattern      = `^\s*[-+]?[0-9]+\s*$`
	floatPattern    = `^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$`
	namePattern     = `^[A-Za-z0-9][A-Za-z0-9_-]*$`
)

type obj = map[string]any

func envRef() obj { return obj{"type": "string", "pattern": EnvPattern} }

// scalarString is what a string field accepts: the decoder turns numbers and
// booleans into their text.
func scalarString() obj { return obj{"type": []any{"string", "number", "boolean"}} }

func anyOf(alts ...any) obj { return obj{"anyOf": alts} }

// FieldSchema returns the JSON Schema of one spec field.
func FieldSchema(f adapters.Field) map[string]any {
	var s obj
	switch f.Type {
	case adapters.TypeString:
		if len(f.Enum) > 0 {
			s = anyOf(obj{"enum": stringsToAny(f.Enum)}, envRef())
		} else {
			s = scalarString()
		}
	case adapters.TypeInt:
		s = anyOf(obj{"type": "integer"}, obj{"type": "string", "pattern": intPattern}, envRef())
	case adapters.TypeFloat:
		s = anyOf(obj{"type": "number"}, obj{"type": "string", "pattern": floatPattern}, envRef())
	case adapters.TypeBool:
		s = anyOf(obj{"type": "boolean"}, obj{"enum": []any{"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}}, envRef())
	case adapters.TypeDuration:
		s = anyOf(obj{"type": "string", "pattern": durationPattern}, obj{"const": 0}, envRef())
	case adapters.TypeSize:
		s = anyOf(obj{"type": "integer", "minimum": 0}, obj{"type": "string", "pattern": sizePattern}, envRef())
	case adapters.TypeStrings:
		item := scalarString()
		if len(f.Enum) > 0 {
			item = anyOf(obj{"enum": stringsToAny(f.Enum)}, envRef())
		}
		s = anyOf(item, obj{"type": "array", "items": item})
	case adapters.TypeStringMap:
		s = obj{"type": "object", "additionalProperties": scalarString()}
	case adapters.TypeObject:
		s = objectSchema(f.Fields, nil, nil)
	case adapters.TypeObjects:
		s = obj{"type": "array", "items": objectSchema(f.Fields, nil, nil)}
	case adapters.TypeCodec:
		s = obj{"$ref": "#/$defs/codec"}
	default: // TypeAny and types this package does not know
		s = obj{}
	}
	if f.Description != "" {
		s["description"] = f.Description
	}
	if f.Secret {
		s["writeOnly"] = true
	} else {
		if f.Default != nil {
			s["default"] = jsonValue(f.Default)
		}
		if f.Example != nil {
			s["examples"] = []any{jsonValue(f.Example)}
		}
	}
	return s
}

// objectSchema is a closed object of fields, with extra properties (the
// engine's keys) first and extraRequired required besides the spec's.
func objectSchema(fields []adapters.Field, extra []adapters.Field, extraRequired []string) obj {
	props := obj{}
	required := []any{}
	for _, r := range extraRequired {
		required = append(required, r)
	}
	for _, f := range append(append([]adapters.Field(nil), extra...), fields...) {
		props[f.Name] = FieldSchema(f)
		if f.Required() && !contains(extraRequired, f.Name) {
			required = append(required, f.Name)
		}
	}
	s := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// Schema returns the JSON Schema (draft 2020-12) of pipeline files, built
// from the registered sources, sinks, codecs and stages and the queue spec.
// Every scalar also accepts a ${VAR} reference.
func Schema() map[string]any {
	defs := obj{}

	sinkEngine := EngineFields(Sink)
	adapterDefs(defs, Source, adapters.Sources(), adapters.SourceSpec, nil)
	adapterDefs(defs, Sink, adapters.Sinks(), adapters.SinkSpec, obj{
		"from":       obj{"type": "string", "description": sinkEngine[2].Description},
		"workers":    obj{"type": "integer", "minimum": 1, "maximum": 1024, "default": 1, "description": sinkEngine[3].Description},
		"batch_size": obj{"type": "integer", "minimum": 1, "maximum": 100000, "default": 256, "description": sinkEngine[4].Description},
	})

	codecNames := []any{adapters.NoCodec}
	codecAlts := []any{
		obj{"type": "object", "properties": obj{"type": obj{"const": adapters.NoCodec}}, "required": []any{"type"}, "additionalProperties": false},
	}
	for _, n := range adapters.Codecs() {
		spec, _ := adapters.CodecSpec(n)
		s := objectSchema(spec.Fields, nil, []string{"type"})
		s["properties"].(obj)["type"] = obj{"const": n}
		s["title"] = "codec " + n
		if spec.Summary != "" {
			s["description"] = spec.Summary
		}
		defs["codec."+n] = s
		codecAlts = append(codecAlts, obj{"$ref": "#/$defs/codec." + n})
		codecNames = append(codecNames, n)
	}
	codecAlts = append([]any{obj{"enum": codecNames}, envRef()}, codecAlts...)
	defs["codec"] = obj{"description": "A codec: its name, or a mapping with its type and options.", "oneOf": codecAlts}

	var stageAlts []any
	for _, n := range transform.Stages() {
		d, _ := transform.StageDocOf(n)
		var body any = obj{}
		if d.Schema != nil {
			body = jsonValue(d.Schema)
		}
		stageAlts = append(stageAlts, obj{"type": "object", "title": "stage " + n, "description": d.Summary,
			"required": []any{n}, "properties": obj{n: body}, "additionalProperties": false})
	}
	defs["stage"] = obj{"type": "object", "minProperties": 1, "maxProperties": 1, "oneOf": stageAlts}
	if len(stageAlts) == 0 {
		defs["stage"] = obj{"not": obj{}, "description": "No stage type is registered."}
	}

	defs["queue"] = objectSchema(pipeline.QueueSpec().Fields, nil, nil)
	defs["pipeline"] = obj{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"sources", "queues", "sinks"},
		"properties": obj{
			"broker": obj{"type": "object", "additionalProperties": false, "required": []any{"type"},
				"properties":  obj{"type": obj{"enum": []any{"disk", "memory"}}},
				"description": "Queue backend of this pipeline; the agent's by default."},
			"lookups": obj{"description": "Lookup tables for the function library."},
			"sources": obj{"type": "array", "minItems": 1, "items": obj{"$ref": "#/$defs/source"}},
			"stages":  obj{"type": "array", "items": obj{"$ref": "#/$defs/stage"}},
			"queues": obj{"type": "object", "minProperties": 1,
				"propertyNames":        obj{"pattern": namePattern, "not": obj{"const": "dlq"}},
				"additionalProperties": anyOf(obj{"type": "null"}, obj{"$ref": "#/$defs/queue"})},
			"sinks": obj{"type": "array", "minItems": 1, "items": obj{"$ref": "#/$defs/sink"}},
		},
	}
	return obj{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  SchemaID,
		"title":                "Sluice pipeline file",
		"description":          "Pipelines of sources, stages, durable queues and sinks. Generated from the adapter specs by `sluice schema`.",
		"type":                 "object",
		"required":             []any{"pipelines"},
		"additionalProperties": false,
		"properties": obj{
			"pipelines": obj{"type": "object", "minProperties": 1,
				"propertyNames":        obj{"pattern": namePattern},
				"additionalProperties": obj{"$ref": "#/$defs/pipeline"}},
		},
		"$defs": defs,
	}
}

// adapterDefs adds to defs one closed object per source or sink type, with
// the engine's keys (name, type, and engine), and a KIND definition that is
// one of them, chosen by type.
func adapterDefs(defs obj, k Kind, names []string, spec func(string) (*adapters.Spec, error), engine obj) {
	var refs, types []any
	for _, n := range names {
		sp, _ := spec(n)
		s := objectSchema(sp.Fields, nil, []string{"name", "type"})
		props := s["properties"].(obj)
		props["name"] = obj{"type": "string", "pattern": namePattern}
		props["type"] = obj{"const": n}
		for key, v := range engine {
			props[key] = v
		}
		s["title"] = string(k) + " " + n
		if sp.Summary != "" {
			s["description"] = sp.Summary
		}
		ref := string(k) + "." + n
		defs[ref] = s
		refs = append(refs, obj{"$ref": "#/$defs/" + ref})
		types = append(types, n)
	}
	if len(refs) == 0 { // oneOf must not be empty
		defs[string(k)] = obj{"not": obj{}, "description": "No " + string(k) + " type is registered."}
		return
	}
	defs[string(k)] = obj{"type": "object", "required": []any{"name", "type"},
		"properties": obj{"type": obj{"enum": types}}, "oneOf": refs}
}

// jsonValue converts a Go value (a default, an example, a stage schema)
// into plain JSON types.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil
	}
	return out
}

func stringsToAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}
