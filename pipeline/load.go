package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/adapters"
)

// document is one parsed pipeline file: its generic value tree (maps, lists,
// scalars with ${VAR} expanded) and the line of every key path.
type document struct {
	file  string
	root  map[string]any
	lines map[string]int
	// envFailed holds the paths whose ${VAR} expansion failed: further
	// errors at those paths would only repeat the problem.
	envFailed map[string]bool
}

func (d *document) line(path string) int { return d.lines[path] }

func (d *document) errorf(path, format string, args ...any) *adapters.FieldError {
	return &adapters.FieldError{File: d.file, Path: path, Line: d.nearestLine(path), Msg: fmt.Sprintf(format, args...)}
}

// nearestLine returns the line of path, or of its closest ancestor that has
// one (a missing key is reported at its parent).
func (d *document) nearestLine(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

// configFiles returns the pipeline files at path: the file itself, or every
// *.yaml and *.yml file in the directory (not recursive), sorted.
func configFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") {
			if strings.HasSuffix(n, ".test.yaml") || strings.HasSuffix(n, ".test.yml") {
				continue // pipeline unit tests for `sluice test`
			}
			files = append(files, filepath.Join(path, n))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("config %s: no *.yaml files in the directory", path)
	}
	sort.Strings(files)
	return files, nil
}

// parseDocument reads a YAML file into a generic tree, expanding ${VAR}
// references in scalar values. It returns every problem it finds.
func parseDocument(file string, data []byte, env func(string) (string, bool)) (*document, adapters.Errors) {
	d := &document{file: file, lines: map[string]int{}, envFailed: map[string]bool{}}
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		return nil, adapters.Errors{yamlError(file, err)}
	}
	if len(node.Content) == 0 {
		return nil, adapters.Errors{{File: file, Msg: "the file is empty; want a mapping with a pipelines key"}}
	}
	var errs adapters.Errors
	v := d.convert(node.Content[0], "", env, &errs)
	root, ok := v.(map[string]any)
	if !ok {
		errs = append(errs, &adapters.FieldError{File: file, Line: node.Content[0].Line, Msg: "want a mapping with a pipelines key at the top"})
		return nil, errs
	}
	d.root = root
	return d, errs
}

func yamlError(file string, err error) *adapters.FieldError {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	// yaml.v3 errors read "line N: ..." or "yaml: unmarshal errors:\n  line N: ...".
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i+5:]
		j := strings.IndexByte(rest, ':')
		if j > 0 {
			if n, err := strconv.Atoi(rest[:j]); err == nil {
				line = n
				msg = strings.TrimSpace(msg[:i] + rest[j+1:])
			}
		}
	}
	return &adapters.FieldError{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

func childPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

func (d *document) convert(n *yaml.Node, path string, env func(string) (string, bool), errs *adapters.Errors) any {
	if path != "" {
		if _, seen := d.lines[path]; !seen {
			d.lines[path] = n.Line
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return d.convert(n.Content[0], path, env, errs)
	case yaml.AliasNode:
		return d.convert(n.Alias, path, env, errs)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				if merged, ok := d.convert(v, path, env, errs).(map[string]any); ok {
					for mk, mv := range merged {
						if _, exists := m[mk]; !exists {
							m[mk] = mv
						}
					}
				}
				continue
			}
			if k.Kind != yaml.ScalarNode {
				*errs = append(*errs, &adapters.FieldError{File: d.file, Path: path, Line: k.Line, Msg: "mapping keys must be plain strings"})
				continue
			}
			kp := childPath(path, k.Value)
			if _, dup := m[k.Value]; dup {
				*errs = append(*errs, &adapters.FieldError{File: d.file, Path: kp, Line: k.Line, Msg: fmt.Sprintf("duplicate key %q", k.Value)})
				continue
			}
			d.lines[kp] = k.Line
			m[k.Value] = d.convert(v, kp, env, errs)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = d.convert(c, fmt.Sprintf("%s[%d]", path, i), env, errs)
		}
		return l
	case yaml.ScalarNode:
		return d.scalar(n, path, env, errs)
	}
	return nil
}

func (d *document) scalar(n *yaml.Node, path string, env func(string) (string, bool), errs *adapters.Errors) any {
	if n.Tag == "!!str" || n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		s, err := Expand(n.Value, env)
		if err != nil {
			d.envFailed[path] = true
			*errs = append(*errs, &adapters.FieldError{File: d.file, Path: path, Line: n.Line, Msg: err.Error()})
		}
		return s
	}
	var v any
	if err := n.Decode(&v); err != nil {
		*errs = append(*errs, &adapters.FieldError{File: d.file, Path: path, Line: n.Line, Msg: "invalid value: " + err.Error()})
		return nil
	}
	switch x := v.(type) {
	case int:
		return int64(x)
	case uint64, int64, float64, bool, nil:
		return x
	case string:
		s, err := Expand(x, env)
		if err != nil {
			d.envFailed[path] = true
			*errs = append(*errs, &adapters.FieldError{File: d.file, Path: path, Line: n.Line, Msg: err.Error()})
		}
		return s
	default:
		// timestamps and binary: keep the text, adapters parse what they need
		return n.Value
	}
}

// Expand replaces ${VAR}, ${VAR:-default} and ${VAR:?message} in s with
// values from env. "$${" is a literal "${". An unset variable without a
// default is an error, as is ${VAR:?message} with VAR unset or empty.
func Expand(s string, env func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var errs []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+j]
		s = s[i+j+1:]
		name, op, arg := expr, "", ""
		if k := strings.Index(expr, ":-"); k >= 0 {
			name, op, arg = expr[:k], ":-", expr[k+2:]
		} else if k := strings.Index(expr, ":?"); k >= 0 {
			name, op, arg = expr[:k], ":?", expr[k+2:]
		}
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid variable name %q in ${%s}", name, expr)
		}
		val, ok := env(name)
		switch op {
		case ":-":
			if !ok || val == "" {
				val = arg
			}
		case ":?":
			if !ok || val == "" {
				msg := arg
				if msg == "" {
					msg = "must be set"
				}
				errs = append(errs, fmt.Sprintf("environment variable %s: %s", name, msg))
			}
		default:
			if !ok {
				errs = append(errs, fmt.Sprintf("environment variable %s is not set (use ${%s:-default} for a default)", name, name))
			}
		}
		b.WriteString(val)
	}
	if len(errs) > 0 {
		return b.String(), errors.New(strings.Join(errs, "; "))
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}
