package natsbroker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
	_ "github.com/sluicehq/sluice/adapters/http"
	natsbroker "github.com/sluicehq/sluice/broker/nats"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testkit"
	"github.com/sluicehq/sluice/pipeline"
)

// logBuffer is a debug-level logger's output, read by tests while it is
// written.
type logBuffer struct{ testkit.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// count returns how many lines hold every one of subs.
func (l *logBuffer) count(subs ...string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// wait waits until a line holds every one of subs.
func (l *logBuffer) wait(t *testing.T, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.count(subs...) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q after 10s:\n%s", subs, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// registry opens a reply registry on b that logs to l, closed when the
// test ends.
func registry(t *testing.T, b *natsbroker.Broker, l *logBuffer) *natsbroker.Replies {
	t.Helper()
	r, err := b.Replies(natsbroker.ReplyOptions{Local: pipeline.NewLocalReplies(), Logger: l.logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// awaitSet waits until set is complete.
func awaitSet(t *testing.T, set *adapters.ReplySet) []adapters.Reply {
	t.Helper()
	select {
	case <-set.Done():
		return set.Replies()
	case <-time.After(10 * time.Second):
		t.Fatalf("replies incomplete after 10s: %d of %d: %+v", len(set.Replies()), set.Expected(), set.Replies())
		return nil
	}
}

func TestRepliesRouting(t *testing.T) {
	o := testOptions(t, testenv.NATS(t), testenv.NATSPrefix(t))
	ba, bb := connect(t, o), connect(t, o)
	defer ba.Close()
	defer bb.Close()
	var la, lb logBuffer
	ra, rb := registry(t, ba, &la), registry(t, bb, &lb)

	id := ra.NewID()
	if !strings.HasPrefix(id, ra.Agent()+".") || ra.Agent() == rb.Agent() || ra.NewID() == id {
		t.Fatalf("ids: %q, %q; agents %q, %q", id, ra.NewID(), ra.Agent(), rb.Agent())
	}
	set, cancel := adapters.AwaitReplies(ra, id)
	defer cancel()
	at := time.Date(2024, 3, 1, 10, 0, 0, 123456789, time.FixedZone("", 2*3600))
	amount := decimal.RequireFromString("123456789012345678901234567890.50")
	record := adapters.Record{"amount": amount, "at": at, "n": int64(-7), "ok": true, "raw": []byte{0, 1, 2},
		"rows": []any{map[string]any{"a": "x"}, nil, 1.5}}
	// the announcement is local, the replies come from the other agent
	if !ra.Deliver(id, adapters.Reply{Status: adapters.ReplyExpect, Expect: 3}) {
		t.Fatal("local announcement not taken")
	}
	sent := []adapters.Reply{
		{Status: adapters.ReplyDelivered, ID: "m1", Sink: "erp", Record: record},
		{Status: adapters.ReplyDelivered, ID: "m1", Sink: "erp"}, // a redelivery: counted once
		{Status: adapters.ReplyFailed, ID: "m2", Sink: "erp", Error: "constraint violated"},
		{Status: adapters.ReplyDelivered, ID: "m3", Sink: "big", Record: adapters.Record{"blob": strings.Repeat("x", int(bb.Conn().MaxPayload()))}},
	}
	for _, r := range sent {
		if !rb.Deliver(id, r) {
			t.Fatalf("reply %+v not published", r)
		}
	}
	got := awaitSet(t, set)
	if len(got) != 3 {
		t.Fatalf("got %d replies, want 3: %+v", len(got), got)
	}
	r0 := got[0]
	if r0.Status != adapters.ReplyDelivered || r0.ID != "m1" || r0.Sink != "erp" || r0.Error != "" {
		t.Fatalf("first reply: %+v", r0)
	}
	if d, ok := r0.Record["amount"].(decimal.Decimal); !ok || !d.Equal(amount) || d.Exponent() != amount.Exponent() {
		t.Fatalf("amount: %#v", r0.Record["amount"])
	}
	if tm, ok := r0.Record["at"].(time.Time); !ok || !tm.Equal(at) || tm.Format(time.RFC3339Nano) != at.Format(time.RFC3339Nano) {
		t.Fatalf("at: %#v", r0.Record["at"])
	}
	if r0.Record["n"] != int64(-7) || r0.Record["ok"] != true || !bytes.Equal(r0.Record["raw"].([]byte), []byte{0, 1, 2}) {
		t.Fatalf("record: %#v", r0.Record)
	}
	if rows := r0.Record["rows"].([]any); len(rows) != 3 || rows[0].(map[string]any)["a"] != "x" || rows[1] != nil || rows[2] != 1.5 {
		t.Fatalf("rows: %#v", r0.Record["rows"])
	}
	if r1 := got[1]; r1.Status != adapters.ReplyFailed || r1.Error != "constraint violated" || r1.Record != nil {
		t.Fatalf("second reply: %+v", r1)
	}
	// a reply too large for one NATS message arrives without its record
	if r2 := got[2]; r2.Status != adapters.ReplyDelivered || r2.Sink != "big" || r2.Record != nil || !strings.Contains(r2.Error, "max_payload") {
		t.Fatalf("large reply: %+v", r2)
	}

	// after the caller gave up, a late reply is dropped at its agent
	cancel()
	if !rb.Deliver(id, adapters.Reply{Status: adapters.ReplyDelivered, ID: "m4", Sink: "erp"}) {
		t.Fatal("late reply not published")
	}
	la.wait(t, "caller gave up", "reply_to="+id, "id=m4")

	// a reply to an agent that stopped is dropped with a debug log, once
	bc := connect(t, o)
	rc := registry(t, bc, &logBuffer{})
	gone := rc.NewID()
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	_ = bc.Close()
	if !rb.Deliver(gone, adapters.Reply{Status: adapters.ReplyDelivered, ID: "m5", Sink: "erp"}) {
		t.Fatal("reply to a stopped agent not published")
	}
	lb.wait(t, "no longer listens", "reply_to="+gone, "agent="+rc.Agent())
	if err := bb.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if n := lb.count("reply_to=" + gone); n != 1 {
		t.Fatalf("%d log lines for the reply to the stopped agent, want 1", n)
	}
	if n := lb.count("level=ERROR") + lb.count("level=WARN"); n != 0 {
		t.Fatalf("warnings or errors logged:\n%s", lb.String())
	}
}

func TestRepliesDeliverLocal(t *testing.T) {
	o := testOptions(t, testenv.NATS(t), testenv.NATSPrefix(t))
	b := connect(t, o)
	defer b.Close()
	var l logBuffer
	r := registry(t, b, &l)
	own := r.NewID()
	for _, tc := range []struct {
		name, id string
		await    bool
		want     bool
	}{
		{"own id awaited", own, true, true},
		{"own id not awaited", r.NewID(), false, false},
		{"an in-process registry's id", "0123abcd", true, true},
		{"no sequence", r.Agent() + ".", true, true},
		{"a wildcard", "a*.1", true, true},
		{"empty", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []adapters.Reply
			var mu sync.Mutex
			if tc.await {
				cancel := r.Await(tc.id, func(rep adapters.Reply) { mu.Lock(); got = append(got, rep); mu.Unlock() })
				defer cancel()
			}
			if ok := r.Deliver(tc.id, adapters.Reply{Status: adapters.ReplyDelivered, ID: "m"}); ok != tc.want {
				t.Fatalf("Deliver(%q) = %v, want %v", tc.id, ok, tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.await && len(got) != 1 {
				t.Fatalf("waiter got %d replies, want 1 (in process)", len(got))
			}
		})
	}
	// a reply whose record cannot be encoded still reaches its caller
	var lo logBuffer
	bo := connect(t, o)
	defer bo.Close()
	other := registry(t, bo, &lo)
	set, cancel := adapters.AwaitReplies(r, own)
	defer cancel()
	r.Deliver(own, adapters.Reply{Status: adapters.ReplyExpect, Expect: 1})
	other.Deliver(own, adapters.Reply{Status: adapters.ReplyDelivered, ID: "m", Sink: "s", Record: adapters.Record{"c": make(chan int)}})
	if got := awaitSet(t, set); got[0].Record != nil || !strings.Contains(got[0].Error, "not sent to the agent holding the caller") {
		t.Fatalf("unencodable record: %+v", got[0])
	}
}

// replySink answers with the agent it runs in (its `agent` option), a
// decimal and a time. Its Connect blocks in the agents listed in
// replyDown, so that only the others' sinks read the queue; hold makes
// Write wait.
type replySink struct{ agent string }

var replyCtl = struct {
	sync.Mutex
	down    map[string]bool
	hold    chan struct{} // Write waits for it to close when not nil
	entered chan string   // Write sends the message ID when it waits
}{down: map[string]bool{}, entered: make(chan string, 16)}

func holdReplies() {
	replyCtl.Lock()
	defer replyCtl.Unlock()
	replyCtl.hold = make(chan struct{})
}

func releaseReplies() {
	replyCtl.Lock()
	defer replyCtl.Unlock()
	if replyCtl.hold != nil {
		close(replyCtl.hold)
		replyCtl.hold = nil
	}
}

var replyAt = time.Date(2024, 3, 1, 10, 0, 0, 5000, time.FixedZone("", 2*3600))

func (s *replySink) Connect(ctx context.Context) error {
	replyCtl.Lock()
	down := replyCtl.down[s.agent]
	replyCtl.Unlock()
	if down {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (s *replySink) Close(context.Context) error { return nil }

func (s *replySink) Write(ctx context.Context, msgs []adapters.Message) error {
	_, err := s.WriteReply(ctx, msgs)
	return err
}

func (s *replySink) WriteReply(ctx context.Context, msgs []adapters.Message) ([]adapters.Record, error) {
	replyCtl.Lock()
	hold := replyCtl.hold
	replyCtl.Unlock()
	if hold != nil {
		for _, m := range msgs {
			replyCtl.entered <- m.ID
		}
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, adapters.UnavailableError(ctx.Err())
		}
	}
	out := make([]adapters.Record, len(msgs))
	for i, m := range msgs {
		out[i] = adapters.Record{"agent": s.agent, "amount": decimal.RequireFromString("5000.50"), "at": replyAt, "order": m.Record["order"]}
	}
	return out, nil
}

func init() {
	adapters.RegisterSink("nats_test_reply", &adapters.Spec{Summary: "answers request/reply messages for the nats tests",
		Fields: []adapters.Field{{Name: "agent", Type: adapters.TypeString, Description: "agent name in the replies"}}},
		func(c *adapters.Config, _ adapters.Resources) (adapters.Sink, error) {
			return &replySink{agent: c.String("agent")}, nil
		})
}

// replyPipeline is an http source in request_reply mode on addr into one
// queue read by a nats_test_reply sink named after agent.
func replyPipeline(addr, agent string) string {
	return fmt.Sprintf(`pipelines:
  rr:
    sources:
      - {name: api, type: http, address: %q, mode: request_reply, timeout: 3s}
    queues:
      q: {visibility_timeout: 20s}
    sinks:
      - {name: answer, from: q, type: nats_test_reply, agent: %s}
`, addr, agent)
}

// replyAnswer is the http source's request/reply answer.
type replyAnswer struct {
	code    int
	ID      string `json:"id"`
	Replies []struct {
		Status string         `json:"status"`
		ID     string         `json:"id"`
		Sink   string         `json:"sink"`
		Reply  map[string]any `json:"reply"`
		Error  string         `json:"error"`
	} `json:"replies"`
	Error string `json:"error"`
}

func postReply(t *testing.T, url, body string) replyAnswer {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := replyAnswer{code: resp.StatusCode}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer %d %s: %v", resp.StatusCode, b, err)
	}
	return a
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitStatus waits until component of pipeline rr on a is in state.
func waitStatus(t *testing.T, a *pipeline.Agent, component, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for a.Runtime("rr").Status()[component] != state {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %q, want %q", component, a.Runtime("rr").Status()[component], state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRequestReplyAcrossAgents: the http source runs in agent A (it holds
// the lease), the sink that answers only in agent B; A's caller gets B's
// reply, a caller that timed out gets 504 and the late reply is dropped at
// A, and a reply to A after A stopped is dropped at B with one debug line.
func TestRequestReplyAcrossAgents(t *testing.T) {
	o := testOptions(t, testenv.NATS(t), testenv.NATSPrefix(t))
	addr := freeAddr(t)
	url := "http://" + addr + "/"
	replyCtl.Lock()
	replyCtl.down["A"] = true
	replyCtl.Unlock()
	t.Cleanup(func() {
		releaseReplies()
		replyCtl.Lock()
		delete(replyCtl.down, "A")
		replyCtl.Unlock()
	})
	var la, lb logBuffer
	var ra, rb *natsbroker.Replies
	withReplies := func(l *logBuffer, r **natsbroker.Replies) func(*natsbroker.Broker, *pipeline.Options) {
		return func(b *natsbroker.Broker, opts *pipeline.Options) {
			*r = registry(t, b, l)
			opts.Replies = *r
		}
	}
	a, ba := inProcessAgentWith(t, o, loadConfig(t, replyPipeline(addr, "A")), withReplies(&la, &ra))
	waitStatus(t, a, "source/api", "running")
	b, _ := inProcessAgentWith(t, o, loadConfig(t, replyPipeline(addr, "B")), withReplies(&lb, &rb))
	waitStatus(t, b, "sink/answer", "running")
	waitStatus(t, b, "source/api", "standby")

	t.Run("reply from the other agent", func(t *testing.T) {
		ans := postReply(t, url, `{"order": 7}`)
		if ans.code != http.StatusOK || !strings.HasPrefix(ans.ID, ra.Agent()+".") || len(ans.Replies) != 1 {
			t.Fatalf("answer: %+v", ans)
		}
		r := ans.Replies[0]
		if r.Status != adapters.ReplyDelivered || r.Sink != "answer" || r.Reply["agent"] != "B" || r.Reply["amount"] != decimal.RequireFromString("5000.50").String() ||
			r.Reply["at"] != replyAt.Format(time.RFC3339Nano) || r.Reply["order"] != float64(7) {
			t.Fatalf("reply: %+v", r)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		holdReplies()
		ans := postReply(t, url, `{"order": 8}`)
		if ans.code != http.StatusGatewayTimeout || len(ans.Replies) != 0 || !strings.Contains(ans.Error, "no complete reply within 3s") {
			t.Fatalf("answer: %+v", ans)
		}
		<-replyCtl.entered
		releaseReplies()
		// B's reply reaches A, whose caller is gone
		la.wait(t, "caller gave up", "reply_to="+ans.ID)
	})

	t.Run("agent stopped", func(t *testing.T) {
		holdReplies()
		answered := make(chan replyAnswer, 1)
		go func() {
			resp, err := http.Post(url, "application/json", strings.NewReader(`{"order": 9}`))
			if err == nil {
				_ = resp.Body.Close()
				answered <- replyAnswer{code: resp.StatusCode}
				return
			}
			answered <- replyAnswer{code: -1, Error: err.Error()}
		}()
		id := <-replyCtl.entered // B holds the message
		if err := a.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		_ = ra.Close()
		_ = ba.Close()
		releaseReplies()
		lb.wait(t, "no longer listens", "agent="+ra.Agent())
		// B acked the message; the reply was dropped once, not retried
		deadline := time.Now().Add(10 * time.Second)
		for b.Runtime("rr").Counters().Written < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("B wrote %d messages, want 3", b.Runtime("rr").Counters().Written)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if n := lb.count("no longer listens"); n != 1 {
			t.Fatalf("%d log lines for the dropped reply of %s, want 1", n, id)
		}
		if n := lb.count("level=ERROR") + lb.count("level=WARN"); n != 0 {
			t.Fatalf("B logged warnings or errors:\n%s", lb.String())
		}
		if ans := <-answered; ans.code == http.StatusOK {
			t.Fatalf("the caller of a stopped agent was answered 200")
		}
	})
}

// BenchmarkReplyAcrossAgents: one request answered by another agent's
// sink, as the engine does it: await, local announcement, remote reply.
func BenchmarkReplyAcrossAgents(b *testing.B) {
	o := natsbroker.Options{URL: testenv.NATS(b), Prefix: testenv.NATSPrefix(b)}
	o.SubjectPrefix = strings.ToLower(o.Prefix)
	open := func() *natsbroker.Replies {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		nb, err := natsbroker.Connect(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = nb.Close() })
		r, err := nb.Replies(natsbroker.ReplyOptions{Local: pipeline.NewLocalReplies()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		return r
	}
	ra, rb := open(), open()
	rec := adapters.Record{"amount": decimal.RequireFromString("5000.50"), "at": replyAt, "name": "order 42"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := ra.NewID()
		set, cancel := adapters.AwaitReplies(ra, id)
		ra.Deliver(id, adapters.Reply{Status: adapters.ReplyExpect, Expect: 1})
		rb.Deliver(id, adapters.Reply{Status: adapters.ReplyDelivered, ID: "m", Sink: "s", Record: rec})
		<-set.Done()
		cancel()
	}
}
