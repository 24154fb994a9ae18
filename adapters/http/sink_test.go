package httpadapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	"github.com/sluicehq/sluice/internal/testkit"
)

// script is a server that fails requests for record n in scripted ways
// (per attempt), and logs every request's n in arrival order.
type script struct {
	mu       sync.Mutex
	arrivals []int64       // n of every request received
	ok       map[int64]int // n -> times answered 2xx
	attempts map[int64]int // n -> requests received
	plan     map[int64][]string
	at       map[int64][]time.Time
}

func newScript(plan map[int64][]string) *script {
	return &script{ok: map[int64]int{}, attempts: map[int64]int{}, plan: plan, at: map[int64][]time.Time{}}
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rec struct{ N int64 }
	if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.arrivals = append(s.arrivals, rec.N)
	a := s.attempts[rec.N]
	s.attempts[rec.N]++
	s.at[rec.N] = append(s.at[rec.N], time.Now())
	action := "ok"
	if steps := s.plan[rec.N]; a < len(steps) {
		action = steps[a]
	} else if len(steps) > 0 && steps[len(steps)-1] == "400" {
		action = "400"
	}
	if action == "ok" {
		s.ok[rec.N]++
	}
	s.mu.Unlock()
	switch action {
	case "500":
		http.Error(w, "boom", http.StatusInternalServerError)
	case "429":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case "400":
		http.Error(w, `{"error": "field amount is required"}`, http.StatusBadRequest)
	case "slow":
		time.Sleep(400 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	case "reset":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"stored": %d}`, rec.N)
	}
}

func (s *script) snapshot() (arrivals []int64, ok map[int64]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.arrivals), func() map[int64]int {
		m := map[int64]int{}
		for k, v := range s.ok {
			m[k] = v
		}
		return m
	}()
}

// Through the engine: transient failures (500, 429 with Retry-After, a
// slow answer, a reset connection) are retried until delivered, a 400 goes
// to the dead-letter queue with its status and body, and with workers: 1
// the messages arrive in queue order until the first failure.
func TestSinkScriptedFailures(t *testing.T) {
	sc := newScript(map[int64][]string{
		3: {"500"}, 5: {"429"}, 7: {"400"}, 9: {"slow"}, 11: {"reset"},
	})
	srv := httptest.NewServer(sc)
	defer srv.Close()
	cfg := testkit.Load(t, `
pipelines:
  p:
    sources:
      - {name: gen, type: kit_gen, count: 20, batch: 20}
    queues:
      q: {max_attempts: 5, backoff: {initial: 10ms, max: 50ms}}
    sinks:
      - name: api
        type: http
        url: `+srv.URL+`/orders/{{ record.n }}
        timeout: 200ms
        batch_size: 5
`)
	a, _ := testkit.Agent(t, cfg, nil)
	testkit.Eventually(t, "every record but 7 delivered", func() bool {
		_, ok := sc.snapshot()
		for n := int64(0); n < 20; n++ {
			if n != 7 && ok[n] == 0 {
				return false
			}
		}
		return true
	})
	arrivals, ok := sc.snapshot()
	if ok[7] != 0 {
		t.Fatal("record 7 was answered 2xx")
	}
	// In queue order up to the first failure (record 3, in the first batch).
	if got := arrivals[:4]; !slices.Equal(got, []int64{0, 1, 2, 3}) {
		t.Fatalf("first arrivals %v, want 0 1 2 3", got)
	}
	// The 429 said Retry-After: 1; the sink held its next request back.
	sc.mu.Lock()
	times := sc.at[5]
	sc.mu.Unlock()
	if len(times) < 2 || times[1].Sub(times[0]) < 900*time.Millisecond {
		t.Fatalf("record 5 retried %v after its 429 with Retry-After: 1", times[1].Sub(times[0]))
	}
	rt := a.Runtime("p")
	testkit.Eventually(t, "record 7 dead-lettered", func() bool { return rt.Queues()["q.dlq"].Stats().Messages == 1 })
	dl, err := rt.Queues()["q.dlq"].Peek(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	msg := dl[0].Meta[adapters.MetaError]
	if dl[0].Record["n"] != int64(7) || !strings.Contains(msg, "400 Bad Request") || !strings.Contains(msg, "field amount is required") || !strings.Contains(msg, "/orders/7") {
		t.Fatalf("dead letter %v: %s", dl[0].Record, msg)
	}
	if n := sc.attempts[7]; n != 1 {
		t.Fatalf("the permanent failure was tried %d times", n)
	}
}

// With workers: 1 and no failure, every message arrives once, in order.
func TestSinkOrder(t *testing.T) {
	sc := newScript(nil)
	srv := httptest.NewServer(sc)
	defer srv.Close()
	cfg := testkit.Load(t, `
pipelines:
  p:
    sources:
      - {name: gen, type: kit_gen, count: 300, batch: 7}
    queues:
      q: {}
    sinks:
      - {name: api, type: http, url: "`+srv.URL+`", batch_size: 16}
`)
	testkit.Agent(t, cfg, nil)
	testkit.Eventually(t, "300 deliveries", func() bool { a, _ := sc.snapshot(); return len(a) >= 300 })
	arrivals, _ := sc.snapshot()
	for i, n := range arrivals {
		if n != int64(i) {
			t.Fatalf("arrival %d is record %d: out of order", i, n)
		}
	}
}

func newTestSink(t *testing.T, raw map[string]any) *adaptertestSink {
	t.Helper()
	s := adaptertest.NewSink(t, "http", raw)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &adaptertestSink{s}
}

type adaptertestSink struct{ adapters.Sink }

func (s *adaptertestSink) reply(t *testing.T, msgs ...adapters.Message) ([]adapters.Record, error) {
	t.Helper()
	return s.Sink.(adapters.Replier).WriteReply(context.Background(), msgs)
}

func msg(n int64) adapters.Message {
	return adapters.Message{ID: fmt.Sprint("m", n), Record: adapters.Record{"n": n}}
}

func TestSinkErrorKinds(t *testing.T) {
	t.Run("connection refused is unavailable", func(t *testing.T) {
		s := newTestSink(t, map[string]any{"url": "http://" + freeAddr(t) + "/"})
		err := s.Write(context.Background(), []adapters.Message{msg(1), msg(2)})
		var be *adapters.BatchError
		if !errors.As(err, &be) || len(be.Failed) != 2 || adapters.KindOf(be.Failed[0]) != adapters.Unavailable {
			t.Fatalf("%v", err)
		}
	})
	t.Run("unknown host is unavailable", func(t *testing.T) {
		s := newTestSink(t, map[string]any{"url": "http://no-such-host.invalid/"})
		err := s.Write(context.Background(), []adapters.Message{msg(1)})
		if adapters.KindOf(err) != adapters.Unavailable {
			var be *adapters.BatchError
			if !errors.As(err, &be) || adapters.KindOf(be.Failed[0]) != adapters.Unavailable {
				t.Fatalf("%v", err)
			}
		}
	})
	t.Run("a redirect is permanent, the URL's query is not printed", func(t *testing.T) {
		srv := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
		defer srv.Close()
		s := newTestSink(t, map[string]any{"url": srv.URL + "/x?token=s3cret"})
		err := s.Write(context.Background(), []adapters.Message{msg(1)})
		var be *adapters.BatchError
		if !errors.As(err, &be) || adapters.KindOf(be.Failed[0]) != adapters.Permanent || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("a bad URL template result is permanent", func(t *testing.T) {
		s := newTestSink(t, map[string]any{"url": "{{ record.url }}"})
		err := s.Write(context.Background(), []adapters.Message{{ID: "x", Record: adapters.Record{"url": "ftp://host/"}}})
		var be *adapters.BatchError
		if !errors.As(err, &be) || adapters.KindOf(be.Failed[0]) != adapters.Permanent {
			t.Fatalf("%v", err)
		}
	})
}

func TestSinkRepliesHeadersAndBatch(t *testing.T) {
	type seen struct {
		auth, key, ctype, idem string
		body                   string
	}
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.Header.Get("Content-Type"), r.Header.Get("Idempotency-Key"), string(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(string(b), "[") {
			fmt.Fprint(w, `[{"ok": 1}, {"ok": 2}]`)
			return
		}
		fmt.Fprint(w, `{"ok": true, "price": 12.5}`)
	}))
	defer srv.Close()
	keyFile := t.TempDir() + "/key"
	if err := writeFile(keyFile, "k-123\n"); err != nil {
		t.Fatal(err)
	}
	s := newTestSink(t, map[string]any{"url": srv.URL, "headers": map[string]any{"Authorization": "Bearer tok"}, "header_files": map[string]any{"X-Api-Key": keyFile}})
	recs, err := s.reply(t, msg(1))
	if err != nil {
		t.Fatal(err)
	}
	if recs[0]["status"] != int64(200) || recs[0]["body"].(adapters.Record)["price"] != 12.5 {
		t.Fatalf("reply %#v", recs[0])
	}
	if g := got[0]; g.auth != "Bearer tok" || g.key != "k-123" || g.ctype != "application/json" || g.idem != "m1" || strings.TrimSpace(g.body) != `{"n":1}` {
		t.Fatalf("request %+v", g)
	}
	b := newTestSink(t, map[string]any{"url": srv.URL, "batch": true})
	recs, err = b.reply(t, msg(1), msg(2))
	if err != nil {
		t.Fatal(err)
	}
	if recs[0]["body"].(adapters.Record)["ok"] != int64(1) || recs[1]["body"].(adapters.Record)["ok"] != int64(2) {
		t.Fatalf("batch replies %#v", recs)
	}
	if g := got[1]; !strings.HasPrefix(g.body, "[") || !strings.Contains(g.body, `"n":2`) {
		t.Fatalf("batch body %q", g.body)
	}
}

func TestSinkTLS(t *testing.T) {
	p := newPKI(t)
	src := startSource(t, map[string]any{"tls_cert_file": p.certFile, "tls_key_file": p.keyFile, "tls_client_ca_file": p.caFile}, adapters.Resources{})
	e := runEngine(t, src, nil)
	s := newTestSink(t, map[string]any{"url": baseURL(src, "https") + "/", "ca_file": p.caFile, "cert_file": p.clientCert, "key_file": p.clientKey})
	if err := s.Write(context.Background(), []adapters.Message{msg(5)}); err != nil {
		t.Fatal(err)
	}
	if m := e.messages(); len(m) != 1 || m[0].Record["n"] != int64(5) {
		t.Fatalf("%v", m)
	}
	// Without the CA the server's certificate is not trusted: unavailable.
	u := newTestSink(t, map[string]any{"url": baseURL(src, "https") + "/", "cert_file": p.clientCert, "key_file": p.clientKey})
	err := u.Write(context.Background(), []adapters.Message{msg(6)})
	var be *adapters.BatchError
	if !errors.As(err, &be) || adapters.KindOf(be.Failed[0]) != adapters.Unavailable {
		t.Fatalf("%v", err)
	}
}
