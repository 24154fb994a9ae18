package exec_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The test binary doubles as the child program: with SLUICE_EXEC_HELPER=1
// it speaks the exec protocol, as a user's program would, in the mode its
// hello's config names.

type helloIn struct {
	Type     string `json:"type"`
	Protocol int    `json:"protocol"`
	Role     string `json:"role"`
	Once     bool   `json:"once"`
	Config   struct {
		Mode    string `json:"mode"`
		Dir     string `json:"dir"`
		Out     string `json:"out"`
		Count   int    `json:"count"`
		PIDFile string `json:"pidfile"`
	} `json:"config"`
}

type inFrame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Error   string          `json:"error"`
	Record  json.RawMessage `json:"record"`
	Attempt int             `json:"attempt"`
}

func helperMain() int {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := bufio.NewWriter(os.Stdout)
	emit := func(v any) {
		b, _ := json.Marshal(v)
		out.Write(append(b, '\n'))
		out.Flush()
	}
	if !in.Scan() {
		return 2
	}
	var h helloIn
	if err := json.Unmarshal(in.Bytes(), &h); err != nil || h.Type != "hello" {
		fmt.Fprintln(os.Stderr, "bad hello:", in.Text())
		return 2
	}
	c := h.Config
	if c.PIDFile != "" {
		os.WriteFile(c.PIDFile, []byte(fmt.Sprint(os.Getpid())), 0o644)
	}
	switch c.Mode {
	case "no_hello":
		for in.Scan() {
		}
		return 0
	case "bad_protocol":
		emit(map[string]any{"type": "hello", "protocol": 99})
		for in.Scan() {
		}
		return 0
	case "crash_before_hello":
		fmt.Fprintln(os.Stderr, "cannot open the queue: permission denied")
		return 4
	}
	fmt.Fprintln(os.Stderr, "helper starting in mode", c.Mode)
	emit(map[string]any{"type": "log", "level": "debug", "msg": "hello from the helper", "attrs": map[string]any{"mode": c.Mode}})
	emit(map[string]any{"type": "hello", "protocol": 1})

	frames := make(chan inFrame, 1024)
	go func() {
		defer close(frames)
		for in.Scan() {
			var f inFrame
			if json.Unmarshal(in.Bytes(), &f) == nil {
				frames <- f
			}
		}
	}()
	logAnswers := func(f inFrame) {
		if c.Out == "" {
			return
		}
		af, _ := os.OpenFile(c.Out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		fmt.Fprintf(af, "%s %s %s\n", f.Type, f.ID, f.Error)
		af.Close()
	}

	switch c.Mode {
	case "spool": // source: every *.json file of dir is a message, deleted once acked
		inflight := map[string]bool{}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case f, ok := <-frames:
				if !ok {
					return 0
				}
				switch f.Type {
				case "ack":
					os.Remove(filepath.Join(c.Dir, f.ID))
					delete(inflight, f.ID)
				case "nack":
					delete(inflight, f.ID) // emitted again at the next poll
				}
			case <-tick.C:
				names, _ := filepath.Glob(filepath.Join(c.Dir, "*.json"))
				sort.Strings(names)
				for _, n := range names {
					id := filepath.Base(n)
					if inflight[id] {
						continue
					}
					b, err := os.ReadFile(n)
					if err != nil {
						continue
					}
					inflight[id] = true
					emit(map[string]any{"type": "message", "id": id, "record": json.RawMessage(b), "meta": map[string]string{"file": id}})
				}
			}
		}
	case "end", "exit0": // source: three messages, then end (or exit 0)
		for i := 1; i <= 3; i++ {
			emit(map[string]any{"type": "message", "id": fmt.Sprint("m", i), "record": map[string]any{"n": i, "big": uint64(1) << 63, "f": 1.5, "nested": map[string]any{"l": []any{1, "x"}}}})
		}
		if c.Mode == "exit0" {
			if h.Once {
				// wait for the acks, as a source that deletes acked items must
				for n := 0; n < 3; n++ {
					f, ok := <-frames
					if !ok {
						break
					}
					logAnswers(f)
				}
			}
			return 0
		}
		emit(map[string]any{"type": "end"})
		for f := range frames {
			logAnswers(f)
		}
		return 0
	case "kinds": // source: the shapes a message can take
		fmt.Println("this line is not JSON")
		emit(map[string]any{"type": "message", "record": map[string]any{"no": "id"}})
		emit(map[string]any{"type": "message", "id": "raw", "raw": []byte{0, 1, 2}})
		emit(map[string]any{"type": "message", "id": "text", "text": "plain text"})
		emit(map[string]any{"type": "message", "id": "bad", "text": "ORD;x", "error": "amount is not a number"})
		emit(map[string]any{"type": "message", "id": "array", "record": []int{1}})
		emit(map[string]any{"type": "message", "id": "empty"})
		emit(map[string]any{"type": "future_frame", "id": "x"})
		emit(map[string]any{"type": "end"})
		for range frames {
		}
		return 0
	case "flood": // source: count messages as fast as it can, then end
		go func() { // read the acks meanwhile, as a source program should
			for range frames {
			}
		}()
		rec := []byte(`{"type":"message","id":"`)
		for i := 0; i < c.Count; i++ {
			line := append(rec[:len(rec):len(rec)], fmt.Sprintf(`%d","record":{"order_id":%d,"customer":"C0042","amount":"12.50","status":"new"}}`+"\n", i, i)...)
			out.Write(line)
		}
		out.Flush()
		emit(map[string]any{"type": "end"})
		for range frames {
		}
		return 0
	case "deaf": // source: count messages, then stops reading its stdin
		for i := 0; i < c.Count; i++ {
			fmt.Fprintf(out, `{"type":"message","id":"%d","record":{"n":%d}}`+"\n", i, i)
		}
		out.Flush()
		emit(map[string]any{"type": "end"})
		select {}
	case "ackall": // sink: acks every message at once
		for f := range frames {
			if f.Type == "message" {
				out.WriteString(`{"type":"ack","id":"` + f.ID + "\"}\n")
			} else if f.Type == "flush" {
				out.Flush()
			}
		}
		return 0
	case "crash": // source: one message, then a crash
		emit(map[string]any{"type": "message", "id": "only", "record": map[string]any{"n": 1}})
		fmt.Fprintln(os.Stderr, "panic: boom")
		return 3
	case "file": // sink: appends records on flush, then acks; rejects bad ones
		var batch []inFrame
		for f := range frames {
			switch f.Type {
			case "message":
				var rec map[string]any
				json.Unmarshal(f.Record, &rec)
				switch {
				case rec["bad"] == true:
					emit(map[string]any{"type": "nack", "id": f.ID, "error": "record marked bad", "kind": "permanent"})
				case rec["down"] == true:
					emit(map[string]any{"type": "nack", "id": f.ID, "error": "target down", "kind": "unavailable"})
				case rec["odd"] == true:
					emit(map[string]any{"type": "nack", "id": f.ID, "error": "odd", "kind": "sideways"})
				default:
					batch = append(batch, f)
				}
			case "flush":
				af, err := os.OpenFile(c.Out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
				if err != nil {
					for _, m := range batch {
						emit(map[string]any{"type": "nack", "id": m.ID, "error": err.Error()})
					}
					batch = nil
					continue
				}
				var b strings.Builder
				for _, m := range batch {
					b.Write(m.Record)
					b.WriteByte('\n')
				}
				af.WriteString(b.String())
				af.Sync()
				af.Close()
				for _, m := range batch {
					emit(map[string]any{"type": "ack", "id": m.ID})
				}
				batch = nil
			}
		}
		return 0
	case "silent": // sink: reads but never answers
		for range frames {
		}
		return 0
	case "die_after_first": // sink: acks the first message, then dies
		for f := range frames {
			if f.Type == "message" {
				emit(map[string]any{"type": "ack", "id": f.ID})
				fmt.Fprintln(os.Stderr, "segmentation fault")
				return 1
			}
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown mode", c.Mode)
	return 2
}
