package docgen

import (
	"bytes"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/adapters"
)

// Redacted replaces a secret value in printed examples.
const Redacted = "[redacted]"

// redactExample hides the literal values of secret fields in a YAML example.
// A ${VAR} reference is kept: it is not the secret itself. An example that
// does not parse is returned as it is.
func redactExample(example string, fields []adapters.Field) string {
	if example == "" || !hasSecret(fields) {
		return example
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(example), &doc); err != nil || len(doc.Content) == 0 {
		return example
	}
	if !redactNode(doc.Content[0], fields) {
		return example
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return example
	}
	return b.String()
}

func hasSecret(fields []adapters.Field) bool {
	for _, f := range fields {
		if f.Secret || hasSecret(f.Fields) {
			return true
		}
	}
	return false
}

// redactNode redacts secret values in a mapping node; it reports a change.
func redactNode(n *yaml.Node, fields []adapters.Field) bool {
	changed := false
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			changed = redactNode(c, fields) || changed
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			for _, f := range fields {
				if f.Name != k.Value {
					continue
				}
				if f.Secret {
					changed = redactValue(v) || changed
				} else if len(f.Fields) > 0 {
					changed = redactNode(v, f.Fields) || changed
				}
			}
		}
	}
	return changed
}

// redactValue replaces every scalar under v that is not a ${VAR} reference.
func redactValue(v *yaml.Node) bool {
	if v.Kind == yaml.ScalarNode {
		if strings.HasPrefix(strings.TrimSpace(v.Value), "${") || v.Value == "" {
			return false
		}
		v.Value, v.Tag, v.Style = Redacted, "!!str", 0
		return true
	}
	changed := false
	for i, c := range v.Content {
		if v.Kind == yaml.MappingNode && i%2 == 0 {
			continue // keys stay
		}
		changed = redactValue(c) || changed
	}
	return changed
}
