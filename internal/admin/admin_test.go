package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/testkit"
	"github.com/sluicehq/sluice/pipeline"
)

const token = "s3cr3t-admin-token"

type client struct {
	t   *testing.T
	url string
}

// do sends a request and decodes the JSON answer into out (when not nil).
func (c client) do(method, path, tok string, out any) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); path != "/metrics" && ct != "application/json" {
		c.t.Fatalf("%s %s: content type %q: %s", method, path, ct, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}
	return resp.StatusCode, string(body)
}

func serve(t *testing.T, agent Agent, tok string) client {
	srv := httptest.NewServer(New(Options{Agent: agent, Token: tok,
		Reload: func(ctx context.Context) (pipeline.Change, error) {
			return pipeline.Change{Unchanged: []string{"p"}}, nil
		}}).Handler())
	t.Cleanup(srv.Close)
	return client{t: t, url: srv.URL}
}

const dlqConfig = `
pipelines:
  p:
    sources:
      - {name: gen, type: kit_gen, count: 20, batch: 5, bad_every: 10, password: hunter2}
    queues:
      q: {}
    sinks:
      - {name: out, type: kit_sink, fail_mod: 5, dsn: "erp:pw@tcp(db)/erp"}
`

func queueLen(c client, path string) int64 {
	var q struct{ Messages int64 }
	if code, body := c.do("GET", path, "", &q); code != 200 {
		c.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return q.Messages
}

// TestDeadLetters browses, replays and purges dead letters, and checks that
// calls that change something are refused without the right token.
func TestDeadLetters(t *testing.T) {
	agent, _ := testkit.Agent(t, testkit.Load(t, dlqConfig), nil)
	c := serve(t, agent, token)
	// records 0..19: 0 and 10 are undecodable (pipeline dlq); 5 and 15 fail
	// in the sink (n % 5 == 0) and are dead-lettered into q.dlq.
	testkit.Eventually(t, "dead letters", func() bool {
		c := agent.Runtime("p").Counters()
		return c.Written == 16 && c.DeadLettered == 2 && c.Rejected == 2
	})

	var browse struct {
		Pipeline, Queue string
		Messages        []message
	}
	if code, body := c.do("GET", "/api/v1/queues/p/q/messages?dlq=1&limit=10", "", &browse); code != 200 {
		t.Fatalf("browse: %d %s", code, body)
	}
	if browse.Queue != "q.dlq" || len(browse.Messages) != 2 {
		t.Fatalf("browse = %+v", browse)
	}
	for _, m := range browse.Messages {
		if m.Meta[adapters.MetaGroup] != "out" || !strings.Contains(m.Meta[adapters.MetaError], "rejected") || m.Record == nil {
			t.Fatalf("dead letter lacks its failure: %+v", m)
		}
	}
	var one struct{ Messages []message }
	c.do("GET", "/api/v1/queues/p/q.dlq/messages?limit=1", "", &one)
	if len(one.Messages) != 1 || one.Messages[0].ID != browse.Messages[0].ID {
		t.Fatalf("browse by DLQ name with limit=1 = %+v", one)
	}

	// refused calls change nothing
	noToken := serve(t, agent, "")
	refused := []struct {
		c    client
		tok  string
		code int
	}{{c, "", 401}, {c, "wrong", 401}, {c, token + "x", 401}, {noToken, "", 403}, {noToken, token, 403}}
	for _, r := range refused {
		for _, path := range []string{"/api/v1/queues/p/q/replay", "/api/v1/queues/p/q/purge?dlq=1", "/api/v1/queues/p/dlq/purge", "/api/v1/pipelines/p/pause", "/api/v1/reload"} {
			var e struct{ Error string }
			code, body := r.c.do("POST", path, r.tok, &e)
			if code != r.code || e.Error == "" {
				t.Fatalf("POST %s with token %q: %d %s, want %d with an error", path, r.tok, code, body, r.code)
			}
			if r.code == 403 && !strings.Contains(e.Error, "SLUICE_ADMIN_TOKEN") {
				t.Fatalf("403 does not say how to configure a token: %s", e.Error)
			}
		}
	}
	if n := queueLen(c, "/api/v1/queues/p/q.dlq"); n != 2 {
		t.Fatalf("refused calls changed q.dlq: %d messages", n)
	}
	if n := queueLen(c, "/api/v1/queues/p/dlq"); n != 2 {
		t.Fatalf("refused calls changed the pipeline dlq: %d messages", n)
	}
	if agent.Runtime("p").Paused() {
		t.Fatal("a refused pause paused the pipeline")
	}

	// replay after the target is fixed: every record arrives
	testkit.Heal()
	var rep struct {
		From, To string
		Replayed int
	}
	if code, body := c.do("POST", "/api/v1/queues/p/q/replay", token, &rep); code != 200 || rep.Replayed != 2 || rep.From != "q.dlq" || rep.To != "q" {
		t.Fatalf("replay: %d %s", code, body)
	}
	testkit.Eventually(t, "replayed records delivered", func() bool { return testkit.Sink("p/out").Distinct() == 18 })
	if n := queueLen(c, "/api/v1/queues/p/q?dlq=1"); n != 0 {
		t.Fatalf("q.dlq after replay: %d messages", n)
	}

	// the pipeline's own dlq needs a target
	var e struct{ Error string }
	if code, _ := c.do("POST", "/api/v1/queues/p/dlq/replay", token, &e); code != 400 || !strings.Contains(e.Error, "?to=QUEUE") {
		t.Fatalf("replay of the pipeline dlq without to: %d %q", code, e.Error)
	}
	var purged struct{ Purged int64 }
	if code, body := c.do("POST", "/api/v1/queues/p/dlq/purge", token, &purged); code != 200 || purged.Purged != 2 {
		t.Fatalf("purge: %d %s", code, body)
	}
	if n := queueLen(c, "/api/v1/queues/p/dlq"); n != 0 {
		t.Fatalf("pipeline dlq after purge: %d messages", n)
	}

	// pause and resume
	var pr struct{ Paused bool }
	if code, _ := c.do("POST", "/api/v1/pipelines/p/pause", token, &pr); code != 200 || !pr.Paused || !agent.Runtime("p").Paused() {
		t.Fatalf("pause: %d %+v", code, pr)
	}
	if code, _ := c.do("POST", "/api/v1/pipelines/p/resume", token, &pr); code != 200 || pr.Paused || agent.Runtime("p").Paused() {
		t.Fatalf("resume: %d %+v", code, pr)
	}
	var ch change
	if code, _ := c.do("POST", "/api/v1/reload", token, &ch); code != 200 || len(ch.Unchanged) != 1 {
		t.Fatalf("reload: %d %+v", code, ch)
	}
}

func TestPipelinesAndQueuesRedacted(t *testing.T) {
	agent, _ := testkit.Agent(t, testkit.Load(t, dlqConfig), nil)
	c := serve(t, agent, token)
	testkit.Eventually(t, "delivery", func() bool { return agent.Runtime("p").Counters().Written == 16 })
	for _, path := range []string{"/api/v1/pipelines", "/api/v1/pipelines/p", "/api/v1/queues"} {
		code, body := c.do("GET", path, "", nil)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		for _, secret := range []string{"hunter2", "erp:pw@"} {
			if strings.Contains(body, secret) {
				t.Fatalf("GET %s shows the secret %q: %s", path, secret, body)
			}
		}
	}
	var ps []pipelineInfo
	c.do("GET", "/api/v1/pipelines", "", &ps)
	if len(ps) != 1 || ps[0].Sources[0].Config["password"] != "[redacted]" || ps[0].Sinks[0].Config["dsn"] != "[redacted]" ||
		ps[0].Counters.Read != 20 || !ps[0].Ready || strings.Join(ps[0].Queues, ",") != "dlq,q,q.dlq" || ps[0].Sources[0].Config["count"] != float64(20) {
		t.Fatalf("pipelines = %+v", ps)
	}
	var qs []queueInfo
	c.do("GET", "/api/v1/queues", "", &qs)
	if len(qs) != 3 || qs[2].Queue != "q.dlq" || !qs[2].DeadLetter || qs[2].Messages != 2 || qs[1].DeadLetter {
		t.Fatalf("queues = %+v", qs)
	}
}

func TestErrorsAreJSON(t *testing.T) {
	agent, _ := testkit.Agent(t, testkit.Load(t, dlqConfig), nil)
	c := serve(t, agent, token)
	cases := []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/api/v1/nothing", 404, "no endpoint GET /api/v1/nothing"},
		{"DELETE", "/api/v1/pipelines", 405, "method DELETE not allowed"},
		{"GET", "/api/v1/queues/p/q/replay", 405, "allowed: POST"},
		{"GET", "/api/v1/pipelines/nope", 404, `no running pipeline "nope" (running: p)`},
		{"GET", "/api/v1/queues/p/nope", 404, `pipeline p has no queue "nope" (queues: dlq, q, q.dlq)`},
		{"GET", "/api/v1/queues/p/q/messages?limit=0", 400, "limit: want a number from 1 to 1000"},
		{"GET", "/api/v1/queues/p/q/messages?dlq=maybe", 400, "dlq: want true or false"},
		{"POST", "/api/v1/queues/p/nope/replay", 404, `no dead-letter queue "nope.dlq"`},
	}
	for _, tc := range cases {
		var e struct{ Error string }
		if code, body := c.do(tc.method, tc.path, token, &e); code != tc.code || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, code, body, tc.code, tc.want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	cfg := testkit.Load(t, `
pipelines:
  up:
    sources: [{name: gen, type: kit_gen, count: 3}]
    queues: {q: {}}
    sinks: [{name: out, type: kit_sink}]
  down:
    sources: [{name: gen, type: kit_gen, count: 3}]
    queues: {q: {}}
    sinks: [{name: erp, type: kit_sink, fail: unavailable}]
`)
	agent, _ := testkit.Agent(t, cfg, nil)
	srv := New(Options{Agent: agent})
	h := httptest.NewServer(srv.Handler())
	defer h.Close()
	c := client{t: t, url: h.URL}
	var health map[string]string
	if code, _ := c.do("GET", "/healthz", "", &health); code != 200 || health["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, health)
	}
	var ready readiness
	testkit.Eventually(t, "the sink to be unavailable", func() bool {
		code, _ := c.do("GET", "/readyz", "", &ready)
		return code == 503 && strings.HasPrefix(ready.NotReady["down/sink/erp"], "unavailable: ")
	})
	if len(ready.NotReady) != 1 || ready.Ready || ready.Pipelines != 2 {
		t.Fatalf("readyz = %+v", ready)
	}
	// without the broken pipeline the agent is ready, until it drains
	if _, err := agent.Apply(context.Background(), &pipeline.Config{Pipelines: []*pipeline.Pipeline{cfg.Pipeline("up")}}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "ready", func() bool {
		code, _ := c.do("GET", "/readyz", "", &ready)
		return code == 200 && ready.Ready
	})
	srv.SetDraining()
	ready = readiness{}
	if code, _ := c.do("GET", "/readyz", "", &ready); code != 503 || ready.NotReady["agent"] != "shutting down" {
		t.Fatalf("readyz while draining: %d %+v", code, ready)
	}
}

func TestStartAndShutdown(t *testing.T) {
	agent, _ := testkit.Agent(t, nil, nil)
	srv := New(Options{Agent: agent})
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %s", resp.Status)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Agent: agent}).Start(addr.String() + "0"); err == nil || !strings.Contains(err.Error(), "admin.address") {
		t.Fatalf("bad address: %v", err)
	}
}

func TestToMessage(t *testing.T) {
	m := toMessage(adapters.Message{ID: "x", Raw: []byte{0xff, 0}, Record: adapters.Record{"f": math.NaN(), "l": []any{math.Inf(1)}},
		Meta: map[string]string{adapters.MetaError: "insert: dial erp:pw@tcp(db)/erp: " + errors.New("refused").Error()}})
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "erp:pw@") || !strings.Contains(s, `"raw_base64":"/wA="`) || !strings.Contains(s, `"f":"NaN"`) || !strings.Contains(s, `"+Inf"`) {
		t.Fatalf("message = %s", s)
	}
	text := toMessage(adapters.Message{Raw: []byte("héllo")})
	if text.Raw == nil || *text.Raw != "héllo" || text.RawBase64 != nil {
		t.Fatalf("text raw = %+v", text)
	}
}
