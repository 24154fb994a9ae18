// Package redact removes secrets from text and configuration before it is
// logged or served: the password of DSNs and URLs (user:password@host), the
// value of password=..., token=... pairs, and every field a spec marks
// Secret.
//
// Redaction is a safety net, not a licence to print secrets: code that knows
// a value is secret should not format it at all.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces every secret value.
const Mask = "[redacted]"

var (
	// userinfo: "user:password@" at the start of a token, after "//" (URLs)
	// or after a quote, "=" or "(" — MySQL DSNs (user:pw@tcp(host)/db) and
	// URLs (amqp://user:pw@host). The password runs to the last "@" of the
	// token, as go-sql-driver/mysql parses it.
	userinfoRE = regexp.MustCompile(`(^|[\s/"'=(,])([^\s:@/"'=(,]+):([^\s"']*)@`)
	// key=value and "key": "value" pairs whose key names a secret.
	pairRE = regexp.MustCompile(`(?i)\b((?:[a-z0-9]+[_.-])*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?))(\s*=\s*|"\s*:\s*)("[^"]*"|'[^']*'|[^\s;&,"')]+)`)
)

// String returns s with credentials replaced by Mask. It is meant for error
// messages and values that may embed a DSN or URL:
//
//	"dial user:s3cret@tcp(db:3306)/erp"  → "dial user:[redacted]@tcp(db:3306)/erp"
//	"host=db password=s3cret sslmode=disable" → "host=db password=[redacted] sslmode=disable"
func String(s string) string {
	if !strings.ContainsAny(s, "@=:") {
		return s
	}
	if strings.Contains(s, "@") {
		s = userinfoRE.ReplaceAllStringFunc(s, func(m string) string {
			sub := userinfoRE.FindStringSubmatch(m)
			switch {
			case strings.HasPrefix(sub[3], "//"):
				// "scheme://user:pw@": sub[2] was the scheme
				return sub[1] + sub[2] + ":" + String(sub[3]+"@")
			case sub[3] == Mask || sub[3] == "":
				return m
			}
			return sub[1] + sub[2] + ":" + Mask + "@"
		})
	}
	if strings.ContainsAny(s, "=:") {
		s = pairRE.ReplaceAllStringFunc(s, func(m string) string {
			sub := pairRE.FindStringSubmatch(m)
			v := sub[3]
			switch {
			case v == Mask, v == `"`+Mask+`"`:
				return m
			case strings.HasPrefix(v, `"`):
				v = `"` + Mask + `"`
			case strings.HasPrefix(v, `'`):
				v = `'` + Mask + `'`
			default:
				v = Mask
			}
			return sub[1] + sub[2] + v
		})
	}
	return s
}

// Error returns the text of err with credentials replaced by Mask, or "" for
// a nil error.
func Error(err error) string {
	if err == nil {
		return ""
	}
	return String(err.Error())
}
