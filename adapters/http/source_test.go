package httpadapter_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/pipeline"
	_ "github.com/sluicehq/sluice/transform/codec"
)

func TestSourceAnswers(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("partner:pw"))
	cases := []struct {
		name    string
		conf    map[string]any
		method  string
		path    string
		body    string
		headers map[string]string
		status  int
		errPart string
		msgs    int
	}{
		{name: "one object", body: `{"a": 1}`, status: 202, msgs: 1},
		{name: "array of objects", body: `[{"a": 1}, {"a": 2}, {"a": 3}]`, status: 202, msgs: 3},
		{name: "PUT", method: http.MethodPut, body: `{"a": 1}`, status: 202, msgs: 1},
		{name: "malformed JSON", body: `{"a": 1`, status: 400, errPart: "malformed body"},
		{name: "array of non-objects", body: `[1, 2]`, status: 400, errPart: "malformed body"},
		{name: "empty body", body: ``, status: 400, errPart: "no record"},
		{name: "too large", conf: map[string]any{"max_body_bytes": 16}, body: `{"a": "0123456789abcdef"}`, status: 413, errPart: "max_body_bytes"},
		{name: "wrong path", path: "/other", body: `{}`, status: 404},
		{name: "GET", method: http.MethodGet, status: 405},
		{name: "csv codec", conf: map[string]any{"codec": map[string]any{"type": "csv", "header": true}}, body: "id,name\n1,a\n2,b\n", status: 202, msgs: 2},
		{name: "raw body", conf: map[string]any{"codec": "none"}, body: "anything at all", status: 202, msgs: 1},
		{name: "bearer missing", conf: map[string]any{"bearer_token": "s3cret"}, body: `{}`, status: 401},
		{name: "bearer wrong", conf: map[string]any{"bearer_token": "s3cret"}, body: `{}`, headers: map[string]string{"Authorization": "Bearer nope"}, status: 401},
		{name: "bearer right", conf: map[string]any{"bearer_token": "s3cret"}, body: `{}`, headers: map[string]string{"Authorization": "Bearer s3cret"}, status: 202, msgs: 1},
		{name: "bearer from file", conf: map[string]any{"bearer_token_file": tokenFile}, body: `{}`, headers: map[string]string{"Authorization": "Bearer s3cret-file"}, status: 202, msgs: 1},
		{name: "basic right", conf: map[string]any{"basic_auth": map[string]any{"user": "partner", "password": "pw"}}, body: `{}`, headers: map[string]string{"Authorization": basic}, status: 202, msgs: 1},
		{name: "basic wrong", conf: map[string]any{"basic_auth": map[string]any{"user": "partner", "password": "other"}}, body: `{}`, headers: map[string]string{"Authorization": basic}, status: 401},
		{name: "queues full", conf: map[string]any{"retry_after": "2s"}, body: `{}`, status: 503, errPart: "queues full"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := map[string]any{"path": "/in"}
			for k, v := range c.conf {
				conf[k] = v
			}
			res := adapters.Resources{}
			if c.name == "queues full" {
				res.Backpressure = func() bool { return true }
			}
			src := startSource(t, conf, res)
			e := runEngine(t, src, nil)
			method, path := c.method, c.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/in"
			}
			a := do(t, nil, method, baseURL(src, "http")+path, c.body, c.headers)
			if a.Status != c.status {
				t.Fatalf("status %d, want %d (%v)", a.Status, c.status, a.Body)
			}
			if c.errPart != "" && !strings.Contains(fmt.Sprint(a.Body["error"]), c.errPart) {
				t.Errorf("error %q does not mention %q", a.Body["error"], c.errPart)
			}
			if c.status == 503 && a.RetryAfter != "2" {
				t.Errorf("Retry-After %q, want 2", a.RetryAfter)
			}
			if c.status == 202 {
				ids, _ := a.Body["ids"].([]any)
				if len(ids) != c.msgs {
					t.Fatalf("ids %v, want %d", a.Body["ids"], c.msgs)
				}
				got := e.messages() // acked before the answer: already there
				if len(got) != c.msgs {
					t.Fatalf("engine got %d messages, want %d", len(got), c.msgs)
				}
				for i, m := range got {
					if m.ID != ids[i] {
						t.Errorf("message %d has ID %s, answer says %v", i, m.ID, ids[i])
					}
					if m.Meta[adapters.MetaSource] != "api" || m.Meta["http.remote"] != "127.0.0.1" {
						t.Errorf("meta %v", m.Meta)
					}
				}
			}
		})
	}
}

func TestSourceCodecValues(t *testing.T) {
	src := startSource(t, map[string]any{}, adapters.Resources{})
	e := runEngine(t, src, nil)
	a := post(t, baseURL(src, "http")+"/", `{"n": 7, "x": 1.5, "s": "t", "o": {"k": [true, null]}}`, map[string]string{"X-Tenant": "acme"})
	if a.Status != 202 {
		t.Fatalf("status %d: %v", a.Status, a.Body)
	}
	rec := e.messages()[0].Record
	if rec["n"] != int64(7) || rec["x"] != 1.5 || rec["s"] != "t" {
		t.Fatalf("record %#v", rec)
	}
	if o, _ := rec["o"].(adapters.Record); o == nil || len(o["k"].([]any)) != 2 {
		t.Fatalf("nested %#v", rec["o"])
	}
}

func TestSourceMetaHeadersAndIdempotencyKey(t *testing.T) {
	src := startSource(t, map[string]any{"meta_headers": []any{"X-Tenant"}}, adapters.Resources{})
	e := runEngine(t, src, nil)
	h := map[string]string{"X-Tenant": "acme", "Idempotency-Key": "order-42"}
	a1 := post(t, baseURL(src, "http")+"/", `[{"n": 1}, {"n": 2}]`, h)
	a2 := post(t, baseURL(src, "http")+"/", `[{"n": 1}, {"n": 2}]`, h)
	a3 := post(t, baseURL(src, "http")+"/", `[{"n": 1}, {"n": 2}]`, nil)
	if fmt.Sprint(a1.Body["ids"]) != fmt.Sprint(a2.Body["ids"]) {
		t.Fatalf("same Idempotency-Key, different IDs: %v and %v", a1.Body["ids"], a2.Body["ids"])
	}
	if fmt.Sprint(a1.Body["ids"]) == fmt.Sprint(a3.Body["ids"]) {
		t.Fatal("no Idempotency-Key, yet the IDs repeat")
	}
	ids := a1.Body["ids"].([]any)
	if ids[0] == ids[1] {
		t.Fatal("two records of a request share an ID")
	}
	m := e.messages()[0]
	if m.Meta["http.x-tenant"] != "acme" || m.Meta["http.idempotency_key"] != "order-42" {
		t.Fatalf("meta %v", m.Meta)
	}
}

// Requests that wait together are handed to the engine as one batch.
func TestSourceBatchesConcurrentRequests(t *testing.T) {
	src := startSource(t, map[string]any{"linger": "200ms", "batch_size": 5}, adapters.Resources{})
	e := runEngine(t, src, nil)
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if post(t, baseURL(src, "http")+"/", fmt.Sprintf(`{"n": %d}`, i), nil).Status == 202 {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 10 || len(e.messages()) != 10 {
		t.Fatalf("accepted %d, engine got %d", accepted.Load(), len(e.messages()))
	}
	e.mu.Lock()
	batches := e.batches
	e.mu.Unlock()
	if batches > 4 { // 10 requests, at most 5 messages a batch, 200ms linger
		t.Fatalf("%d batches for 10 concurrent requests: not batched", batches)
	}
}

// A request is answered 503 when its batch is nacked, and when nobody takes
// it within enqueue_timeout (then it is withdrawn: never emitted).
func TestSourceUnavailable(t *testing.T) {
	t.Run("nacked", func(t *testing.T) {
		src := startSource(t, map[string]any{}, adapters.Resources{})
		runEngine(t, src, func(adapters.Batch) error { return errNack })
		a := post(t, baseURL(src, "http")+"/", `{}`, nil)
		if a.Status != 503 || !strings.Contains(fmt.Sprint(a.Body["error"]), "queue closed") || a.RetryAfter != "1" {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("not taken in time", func(t *testing.T) {
		src := startSource(t, map[string]any{"enqueue_timeout": "100ms"}, adapters.Resources{})
		a := post(t, baseURL(src, "http")+"/", `{}`, nil)
		if a.Status != 503 || !strings.Contains(fmt.Sprint(a.Body["error"]), "not accepted") {
			t.Fatalf("%+v", a)
		}
		e := runEngine(t, src, nil)
		b := post(t, baseURL(src, "http")+"/", `{"second": true}`, nil)
		if b.Status != 202 {
			t.Fatalf("%+v", b)
		}
		if got := e.messages(); len(got) != 1 || got[0].Record["second"] != true {
			t.Fatalf("the withdrawn request was emitted: %v", got)
		}
	})
	t.Run("taken, not confirmed in time", func(t *testing.T) {
		src := startSource(t, map[string]any{"enqueue_timeout": "100ms"}, adapters.Resources{})
		release := make(chan struct{})
		runEngine(t, src, func(adapters.Batch) error { <-release; return nil })
		a := post(t, baseURL(src, "http")+"/", `{}`, nil)
		close(release)
		if a.Status != 503 || !strings.Contains(fmt.Sprint(a.Body["error"]), "may still be enqueued") {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("max_pending", func(t *testing.T) {
		src := startSource(t, map[string]any{"max_pending": 1, "enqueue_timeout": "1s"}, adapters.Resources{})
		first := make(chan answer, 1)
		go func() { first <- post(t, baseURL(src, "http")+"/", `{}`, nil) }()
		deadline := time.Now().Add(5 * time.Second)
		for {
			a := post(t, baseURL(src, "http")+"/", `{}`, nil)
			if a.Status == 503 && strings.Contains(fmt.Sprint(a.Body["error"]), "max_pending") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("never refused for max_pending: %+v", a)
			}
		}
		<-first
	})
	t.Run("closed", func(t *testing.T) {
		src := startSource(t, map[string]any{}, adapters.Resources{})
		url := baseURL(src, "http")
		_ = src.Close(context.Background())
		if _, err := http.Post(url+"/", "application/json", strings.NewReader("{}")); err == nil {
			t.Fatal("still listening after Close")
		}
		if err := src.Health(context.Background()); err == nil {
			t.Fatal("healthy after Close")
		}
	})
}

func TestSourceRateLimit(t *testing.T) {
	src := startSource(t, map[string]any{"rate_limit": 1.0, "rate_burst": 2}, adapters.Resources{})
	runEngine(t, src, nil)
	var statuses []int
	for range 4 {
		statuses = append(statuses, post(t, baseURL(src, "http")+"/", `{}`, nil).Status)
	}
	if fmt.Sprint(statuses) != "[202 202 429 429]" {
		t.Fatalf("statuses %v, want two accepted then 429", statuses)
	}
}

func TestSourceTLS(t *testing.T) {
	p := newPKI(t)
	src := startSource(t, map[string]any{"tls_cert_file": p.certFile, "tls_key_file": p.keyFile, "tls_client_ca_file": p.caFile}, adapters.Resources{})
	runEngine(t, src, nil)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.clientPair}}}}
	if a := do(t, client, http.MethodPost, baseURL(src, "https")+"/", `{}`, nil); a.Status != 202 {
		t.Fatalf("%+v", a)
	}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}}
	if resp, err := noCert.Post(baseURL(src, "https")+"/", "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate was answered %d", resp.StatusCode)
	}
	if err := src.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// replyEngine plays the engine of a request/reply pipeline: it announces
// one reply per message and answers with reply(m).
func replyEngine(t *testing.T, src adapters.Source, reg adapters.Replies, reply func(m adapters.Message) *adapters.Reply) {
	runEngine(t, src, func(b adapters.Batch) error {
		counts := map[string]int{}
		for _, m := range b.Messages {
			counts[m.Meta[adapters.MetaReplyTo]]++
		}
		for id, n := range counts {
			reg.Deliver(id, adapters.Reply{Status: adapters.ReplyExpect, Expect: n})
		}
		go func() {
			for _, m := range b.Messages {
				if r := reply(m); r != nil {
					reg.Deliver(m.Meta[adapters.MetaReplyTo], *r)
				}
			}
		}()
		return nil
	})
}

func TestSourceRequestReply(t *testing.T) {
	reg := pipeline.NewLocalReplies()
	src := startSource(t, map[string]any{"mode": "request_reply", "timeout": "300ms"}, adapters.Resources{Replies: reg})
	replyEngine(t, src, reg, func(m adapters.Message) *adapters.Reply {
		switch m.Record["do"] {
		case "answer":
			return &adapters.Reply{Status: adapters.ReplyDelivered, ID: m.ID, Sink: "lookup", Record: adapters.Record{"rows": []any{adapters.Record{"x": int64(1)}}}}
		case "fail":
			return &adapters.Reply{Status: adapters.ReplyFailed, ID: m.ID, Sink: "lookup", Error: "no such table"}
		case "reject":
			return &adapters.Reply{Status: adapters.ReplyRejected, ID: m.ID, Error: "bad expression"}
		}
		return nil // never answered
	})
	url := baseURL(src, "http") + "/"
	a := post(t, url, `{"do": "answer"}`, nil)
	reps, _ := a.Body["replies"].([]any)
	if a.Status != 200 || len(reps) != 1 {
		t.Fatalf("%+v", a)
	}
	if rows := reps[0].(map[string]any)["reply"].(map[string]any)["rows"].([]any); len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	if a := post(t, url, `[{"do": "answer"}, {"do": "fail"}]`, nil); a.Status != 502 {
		t.Fatalf("a failed message: %+v", a)
	}
	if a := post(t, url, `{"do": "reject"}`, nil); a.Status != 422 {
		t.Fatalf("a rejected message: %+v", a)
	}
	start := time.Now()
	a = post(t, url, `[{"do": "answer"}, {"do": "nothing"}]`, nil)
	if a.Status != 504 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("timeout: %+v after %s", a, time.Since(start))
	}
	if reps, _ := a.Body["replies"].([]any); len(reps) != 1 {
		t.Fatalf("the partial replies are not in the 504: %+v", a)
	}
}
