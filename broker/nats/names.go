package natsbroker

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/broker"
)

// Naming. A queue "PIPELINE/QUEUE" is the stream PREFIX_PIPELINE_QUEUE with
// the one subject SUBJECTPREFIX.PIPELINE.QUEUE; its dead-letter queue
// "PIPELINE/QUEUE.dlq" is PREFIX_PIPELINE_QUEUE_dlq on
// SUBJECTPREFIX.PIPELINE.QUEUE.dlq, and the pipeline's own "PIPELINE/dlq" is
// PREFIX_PIPELINE_dlq on SUBJECTPREFIX.PIPELINE.dlq. Names hold letters,
// digits, - and _ (the pipeline config's rule); an _ inside a name is
// doubled in the stream name, so that a single _ always separates parts and
// every stream name maps back to one queue name.

var partRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// groupRE is the rule for consumer group names: sink names, and the
// reserved groups that start with _.
var groupRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`)

// queueParts splits a queue name into pipeline, queue and whether it is a
// queue's dead-letter queue.
func queueParts(name string) (pipe, queue string, dlq bool, err error) {
	pipe, queue, ok := strings.Cut(name, "/")
	if ok {
		queue, dlq = strings.CutSuffix(queue, broker.DLQSuffix)
	}
	if !ok || !partRE.MatchString(pipe) || !partRE.MatchString(queue) {
		return "", "", false, fmt.Errorf("queue name %q: the nats broker takes PIPELINE/QUEUE or PIPELINE/QUEUE.dlq, names of letters, digits, - and _", name)
	}
	return pipe, queue, dlq, nil
}

func escapePart(s string) string { return strings.ReplaceAll(s, "_", "__") }

// streamName returns the stream of queue name.
func streamName(prefix, name string) (string, error) {
	pipe, queue, dlq, err := queueParts(name)
	if err != nil {
		return "", err
	}
	s := prefix + "_" + escapePart(pipe) + "_" + escapePart(queue)
	if dlq {
		s += "_dlq"
	}
	return s, nil
}

// subjectName returns the subject of queue name.
func subjectName(subjectPrefix, name string) (string, error) {
	pipe, queue, dlq, err := queueParts(name)
	if err != nil {
		return "", err
	}
	s := subjectPrefix + "." + pipe + "." + queue
	if dlq {
		s += ".dlq"
	}
	return s, nil
}

// queueName maps a stream name back to its queue, or reports false for a
// stream that is not one of this prefix's queues.
func queueName(prefix, stream string) (string, bool) {
	rest, ok := strings.CutPrefix(stream, prefix+"_")
	if !ok {
		return "", false
	}
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] != '_' {
			cur.WriteByte(rest[i])
			continue
		}
		if i+1 < len(rest) && rest[i+1] == '_' {
			cur.WriteByte('_')
			i++
			continue
		}
		parts = append(parts, cur.String())
		cur.Reset()
	}
	parts = append(parts, cur.String())
	var name string
	switch {
	case len(parts) == 2:
		name = parts[0] + "/" + parts[1]
	case len(parts) == 3 && parts[2] == "dlq":
		name = parts[0] + "/" + parts[1] + broker.DLQSuffix
	default:
		return "", false
	}
	if s, err := streamName(prefix, name); err != nil || s != stream {
		return "", false
	}
	return name, true
}

// Bucket names of a prefix.
func stateBucket(prefix string) string    { return prefix + "_state" }
func leaseBucket(prefix string) string    { return prefix + "_leases" }
func releasedBucket(prefix string) string { return prefix + "_released" }

// kvSafe reports whether c may stand in a key/value key as it is.
func kvSafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/'
}

// escapeKey turns any string into one token of a key/value key: bytes
// other than letters, digits, - _ and / become =XX (hex), so the mapping
// keeps prefixes (a key's prefix escapes to the escaped key's prefix) and
// is reversible. The empty string is "=".
func escapeKey(s string) string {
	if s == "" {
		return "="
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if kvSafe(c) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	return b.String()
}

// unescapeKey reverses escapeKey.
func unescapeKey(s string) (string, bool) {
	if s == "=" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 > len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}
