package exec

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"github.com/sluicehq/sluice/adapters"
)

// ProtocolVersion is the version of the exec protocol this package speaks.
// A program answers the hello with the version it speaks; any other version
// is refused.
const ProtocolVersion = 1

// Frame types, in both directions.
const (
	typeHello   = "hello"
	typeMessage = "message"
	typeEnd     = "end"
	typeAck     = "ack"
	typeNack    = "nack"
	typeFlush   = "flush"
	typeLog     = "log"
)

// MetaExecID is the metadata key holding the id a source program gave a
// message; Message.ID is derived from it (and the source name).
const MetaExecID = "exec_id"

// frame is one line a program writes to its stdout.
type frame struct {
	Type     string            `json:"type"`
	Protocol int               `json:"protocol"`
	ID       string            `json:"id"`
	Record   any               `json:"record"` // decoded with json.Number
	Raw      []byte            `json:"raw"`
	Text     *string           `json:"text"`
	Meta     map[string]string `json:"meta"`
	Error    string            `json:"error"`
	Kind     string            `json:"kind"`
	Level    string            `json:"level"`
	Msg      string            `json:"msg"`
	Attrs    map[string]any    `json:"attrs"`
}

// helloOut opens the conversation.
type helloOut struct {
	Type     string `json:"type"`
	Protocol int    `json:"protocol"`
	Role     string `json:"role"`
	Pipeline string `json:"pipeline"`
	Name     string `json:"name"`
	Once     bool   `json:"once"`
	Config   any    `json:"config"`
}

// answerOut acknowledges (Error empty) or rejects a message to a source
// program.
type answerOut struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Error string `json:"error,omitempty"`
}

// messageOut is a message handed to a sink program.
type messageOut struct {
	Type    string            `json:"type"`
	ID      string            `json:"id"`
	Attempt int               `json:"attempt,omitempty"`
	Time    string            `json:"time,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
	Record  any               `json:"record,omitempty"`
	Raw     []byte            `json:"raw,omitempty"`
}

// line marshals v as one protocol line.
func line(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// parseFrame decodes one line, keeping numbers as json.Number so that
// records get Sluice's value types (see toRecord).
func parseFrame(b []byte, f *frame) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(f)
}

// toRecord turns a decoded JSON object into a Record with Sluice's value
// types: integers become int64 (uint64 above its range), other numbers
// float64.
func toRecord(v any) (adapters.Record, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("record must be a JSON object")
	}
	normalize(m)
	return m, nil
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	case json.Number:
		s := string(x)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return n
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return s
		}
		return f
	}
	return v
}
