package admin

import (
	"encoding/base64"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/pipeline"
)

// queueInfo is a queue as the API shows it: its pipeline, its name within
// the pipeline ("orders", "orders.dlq", "dlq") and the broker's stats.
type queueInfo struct {
	Pipeline         string  `json:"pipeline"`
	Queue            string  `json:"queue"`
	DeadLetter       bool    `json:"dead_letter"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	broker.Stats
}

func info(p, name string, q broker.Queue) queueInfo {
	st := q.Stats()
	return queueInfo{Pipeline: p, Queue: name, DeadLetter: broker.IsDLQ(name), OldestAgeSeconds: st.OldestAge.Seconds(), Stats: st}
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) {
	out := []queueInfo{}
	for _, rt := range s.opts.Agent.Runtimes() {
		qs := rt.Queues()
		names := make([]string, 0, len(qs))
		for n := range qs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, info(rt.Name(), n, qs[n]))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// queue resolves {pipeline}/{queue}; with dlq it returns the queue's
// dead-letter queue instead. It answers the request itself when it fails.
func (s *Server) queue(w http.ResponseWriter, r *http.Request, dlq bool) (*pipeline.Runtime, string, broker.Queue) {
	rt := s.runtime(w, r)
	if rt == nil {
		return nil, "", nil
	}
	name := r.PathValue("queue")
	if dlq && !broker.IsDLQ(name) {
		name += broker.DLQSuffix
	}
	qs := rt.Queues()
	q, ok := qs[name]
	if !ok {
		names := make([]string, 0, len(qs))
		for n := range qs {
			names = append(names, n)
		}
		sort.Strings(names)
		writeError(w, http.StatusNotFound, "pipeline %s has no queue %q (queues: %s)", rt.Name(), name, orNone(names))
		return nil, "", nil
	}
	return rt, name, q
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) {
	dlq, ok := flag(w, r, "dlq")
	if !ok {
		return
	}
	if rt, name, q := s.queue(w, r, dlq); q != nil {
		writeJSON(w, http.StatusOK, info(rt.Name(), name, q))
	}
}

// message is a queued message as the API shows it. Raw bodies are text when
// they are valid UTF-8, base64 otherwise.
type message struct {
	ID        string            `json:"id"`
	Time      time.Time         `json:"time"`
	Attempt   int               `json:"attempt,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	Record    any               `json:"record,omitempty"`
	Raw       *string           `json:"raw,omitempty"`
	RawBase64 *string           `json:"raw_base64,omitempty"`
}

const maxBrowse = 1000

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	dlq, ok := flag(w, r, "dlq")
	if !ok {
		return
	}
	limit, ok := intParam(w, r, "limit", 10, 1, maxBrowse)
	if !ok {
		return
	}
	rt, name, q := s.queue(w, r, dlq)
	if q == nil {
		return
	}
	msgs, err := q.Peek(r.Context(), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "peek %s/%s: %v", rt.Name(), name, err)
		return
	}
	out := struct {
		Pipeline string    `json:"pipeline"`
		Queue    string    `json:"queue"`
		Messages []message `json:"messages"`
	}{rt.Name(), name, make([]message, 0, len(msgs))}
	for _, m := range msgs {
		out.Messages = append(out.Messages, toMessage(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func toMessage(m adapters.Message) message {
	out := message{ID: m.ID, Time: m.Time, Attempt: m.Attempt}
	if len(m.Meta) > 0 {
		out.Meta = make(map[string]string, len(m.Meta))
		for k, v := range m.Meta {
			out.Meta[k] = redact.String(v)
		}
	}
	if m.Record != nil {
		out.Record = jsonSafe(m.Record)
	}
	if m.Raw != nil {
		if utf8.Valid(m.Raw) {
			s := string(m.Raw)
			out.Raw = &s
		} else {
			s := base64.StdEncoding.EncodeToString(m.Raw)
			out.RawBase64 = &s
		}
	}
	return out
}

// jsonSafe replaces what encoding/json cannot encode (NaN and infinite
// floats) with strings, in nested records and lists.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonSafe(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonSafe(e)
		}
		return out
	}
	return v
}

// replay moves dead letters back: from QUEUE.dlq into QUEUE (the URL may
// name either), or from the pipeline's dlq into the queue given by ?to=.
func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	limit, ok := intParam(w, r, "limit", 0, 0, math.MaxInt32)
	if !ok {
		return
	}
	rt := s.runtime(w, r)
	if rt == nil {
		return
	}
	qs := rt.Queues()
	name := r.PathValue("queue")
	var from, to string
	switch {
	case name == broker.PipelineDLQ:
		from, to = name, r.URL.Query().Get("to")
		if to == "" {
			writeError(w, http.StatusBadRequest, "the pipeline's dlq holds messages that never reached a queue: say which queue they go to with ?to=QUEUE")
			return
		}
	case strings.HasSuffix(name, broker.DLQSuffix):
		from, to = name, strings.TrimSuffix(name, broker.DLQSuffix)
	default:
		from, to = name+broker.DLQSuffix, name
	}
	dq, target := qs[from], qs[to]
	switch {
	case dq == nil:
		writeError(w, http.StatusNotFound, "pipeline %s has no dead-letter queue %q", rt.Name(), from)
		return
	case target == nil || broker.IsDLQ(to):
		writeError(w, http.StatusNotFound, "pipeline %s has no queue %q to replay into", rt.Name(), to)
		return
	}
	n, err := broker.Replay(r.Context(), dq, target, limit)
	if n > 0 || err == nil {
		s.log.Info("dead letters replayed through the admin API", "pipeline", rt.Name(), "from", from, "to", to, "messages", n, "remote", r.RemoteAddr)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "replay %s/%s: %v (%d message(s) were replayed)", rt.Name(), from, err, n)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipeline": rt.Name(), "from": from, "to": to, "replayed": n})
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	dlq, ok := flag(w, r, "dlq")
	if !ok {
		return
	}
	rt, name, q := s.queue(w, r, dlq)
	if q == nil {
		return
	}
	n, err := q.Purge(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "purge %s/%s: %v", rt.Name(), name, err)
		return
	}
	s.log.Warn("queue purged through the admin API", "pipeline", rt.Name(), "queue", name, "messages", n, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"pipeline": rt.Name(), "queue": name, "purged": n})
}

// flag parses a boolean query parameter ("1", "true", ...; absent is false).
func flag(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, "query parameter %s: want true or false (or 1 or 0), got %q", name, v)
		return false, false
	}
	return b, true
}

// intParam parses an integer query parameter within [min, max].
func intParam(w http.ResponseWriter, r *http.Request, name string, def, min, max int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		writeError(w, http.StatusBadRequest, "query parameter %s: want a number from %d to %d, got %q", name, min, max, v)
		return 0, false
	}
	return n, true
}
