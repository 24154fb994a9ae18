package redact

import (
	"strings"

	"github.com/sluicehq/sluice/adapters"
)

// Config returns the decoded configuration conf of spec as a plain map for
// a config dump: every field the spec declares, with its effective value
// (given or defaulted); Secret fields are Mask and other string values go
// through String. Durations and sizes keep their Go types' text forms.
// Codec fields show the codec's type name only. A nil conf gives nil.
func Config(spec *adapters.Spec, conf *adapters.Config) map[string]any {
	if spec == nil || conf == nil {
		return nil
	}
	return fields(spec.Fields, conf)
}

func fields(fs []adapters.Field, conf *adapters.Config) map[string]any {
	out := make(map[string]any, len(fs))
	for _, f := range fs {
		if !conf.Has(f.Name) {
			continue
		}
		if f.Secret {
			out[f.Name] = Mask
			continue
		}
		out[f.Name] = value(f, conf)
	}
	return out
}

func value(f adapters.Field, conf *adapters.Config) any {
	switch f.Type {
	case adapters.TypeString:
		return String(conf.String(f.Name))
	case adapters.TypeInt:
		return conf.Int64(f.Name)
	case adapters.TypeFloat:
		return conf.Float(f.Name)
	case adapters.TypeBool:
		return conf.Bool(f.Name)
	case adapters.TypeDuration:
		return conf.Duration(f.Name).String()
	case adapters.TypeSize:
		return conf.Size(f.Name)
	case adapters.TypeStrings:
		l := conf.Strings(f.Name)
		out := make([]string, len(l))
		for i, s := range l {
			out[i] = String(s)
		}
		return out
	case adapters.TypeStringMap:
		m := conf.StringMap(f.Name)
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = String(v)
		}
		return Map(out)
	case adapters.TypeObject:
		return fields(f.Fields, conf.Object(f.Name))
	case adapters.TypeObjects:
		var out []map[string]any
		for _, c := range conf.Objects(f.Name) {
			out = append(out, fields(f.Fields, c))
		}
		return out
	case adapters.TypeCodec:
		return conf.CodecName(f.Name)
	case adapters.TypeAny:
		return anyValue(conf.Any(f.Name))
	}
	return nil
}

// anyValue redacts strings inside a raw YAML value, and the values of keys
// that name a secret.
func anyValue(v any) any {
	switch x := v.(type) {
	case string:
		return String(x)
	case map[string]any:
		return mapValues(x, any(Mask), anyValue)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = anyValue(e)
		}
		return out
	}
	return v
}

// Map returns a copy of m in which the values of keys that name a secret
// (password, token, dsn, ...) are Mask and other values go through String:
// for headers, environment maps and connection parameters.
func Map(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return mapValues(m, Mask, String)
}

// mapValues copies m, with mask for the values of secret keys and the
// others passed through f.
func mapValues[V any](m map[string]V, mask V, f func(V) V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		if secretKey(k) {
			out[k] = mask
			continue
		}
		out[k] = f(v)
	}
	return out
}

// secretKey reports whether a key's name says its value is a secret: one of
// its words (split at _ - . and spaces) is a secret word, or it ends in
// api/access/private/secret + key.
func secretKey(k string) bool {
	words := strings.FieldsFunc(strings.ToLower(k), func(r rune) bool { return r == '_' || r == '-' || r == '.' || r == ' ' })
	for i, w := range words {
		switch w {
		case "password", "passwd", "passphrase", "pwd", "secret", "token", "dsn", "authorization", "credential", "credentials", "apikey":
			return true
		case "key":
			if i > 0 {
				switch words[i-1] {
				case "api", "access", "private", "secret", "signing":
					return true
				}
			}
		}
	}
	return false
}
