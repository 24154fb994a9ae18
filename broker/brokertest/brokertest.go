// Package brokertest is the conformance suite of Sluice's queue backends:
// every backend (memory, disk, NATS) runs it from its own tests, so they
// all keep the semantics the engine relies on.
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T, dir string) broker.Broker { ... })
//	}
//
// A durable backend also runs RunDurable, which closes and reopens the
// broker on the same dir and checks what survived.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// OpenFunc opens a broker on dir (a fresh temporary dir per test; a reopen
// passes the same dir again after the previous broker was closed).
type OpenFunc func(t *testing.T, dir string) broker.Broker

// fast are queue options with short delays, so that retries and timeouts
// happen within a test.
var fast = broker.Options{
	MaxAttempts:       3,
	Backoff:           broker.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2},
	VisibilityTimeout: 150 * time.Millisecond,
}

type env struct {
	t    *testing.T
	dir  string
	open OpenFunc
	b    broker.Broker
	ctx  context.Context
}

func newEnv(t *testing.T, open OpenFunc) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	e := &env{t: t, dir: t.TempDir(), open: open, ctx: ctx}
	e.b = open(t, e.dir)
	t.Cleanup(func() { _ = e.b.Close() })
	return e
}

func (e *env) reopen() {
	e.t.Helper()
	if err := e.b.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.b = e.open(e.t, e.dir)
}

func (e *env) queue(name string, o broker.Options) broker.Queue {
	e.t.Helper()
	q, err := e.b.Open(name, o)
	if err != nil {
		e.t.Fatalf("open %s: %v", name, err)
	}
	return q
}

func (e *env) consumer(q broker.Queue, group string) broker.Consumer {
	e.t.Helper()
	c, err := q.Consumer(group)
	if err != nil {
		e.t.Fatalf("consumer %s: %v", group, err)
	}
	return c
}

func msgs(from, n int) []adapters.Message {
	out := make([]adapters.Message, n)
	for i := range out {
		k := from + i
		out[i] = adapters.Message{ID: "m" + strconv.Itoa(k), Raw: []byte("body " + strconv.Itoa(k)),
			Meta: map[string]string{"k": strconv.Itoa(k)}, Record: adapters.Record{"k": int64(k)}}
	}
	return out
}

func (e *env) enqueue(q broker.Queue, ms []adapters.Message) {
	e.t.Helper()
	if err := q.Enqueue(e.ctx, ms); err != nil {
		e.t.Fatalf("enqueue into %s: %v", q.Name(), err)
	}
}

// receive gets exactly n deliveries, failing after a few seconds.
func (e *env) receive(c broker.Consumer, n int) []broker.Delivery {
	e.t.Helper()
	var out []broker.Delivery
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	for len(out) < n {
		ds, err := c.Receive(ctx, n-len(out))
		if err != nil {
			e.t.Fatalf("receive: got %d of %d: %v", len(out), n, err)
		}
		out = append(out, ds...)
	}
	return out
}

// none checks that nothing is deliverable within d.
func (e *env) none(c broker.Consumer, d time.Duration) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, d)
	defer cancel()
	ds, err := c.Receive(ctx, 10)
	if err == nil {
		e.t.Fatalf("unexpected deliveries: %v", ids(ds))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		e.t.Fatalf("receive: want deadline exceeded, got %v", err)
	}
}

func (e *env) ack(c broker.Consumer, ds []broker.Delivery) {
	e.t.Helper()
	if err := c.Ack(e.ctx, ds); err != nil {
		e.t.Fatalf("ack: %v", err)
	}
}

func ids(ds []broker.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Message.ID
	}
	return out
}

func wantIDs(t *testing.T, ds []broker.Delivery, want ...string) {
	t.Helper()
	got := ids(ds)
	if !slices.Equal(got, want) {
		t.Fatalf("want messages %v, got %v", want, got)
	}
}

func rangeIDs(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "m" + strconv.Itoa(from+i)
	}
	return out
}

// Run runs the conformance tests that every backend passes.
func Run(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		f    func(t *testing.T, e *env)
	}{
		{"FIFO", testFIFO},
		{"MessageFields", testFields},
		{"FanOut", testFanOut},
		{"CompetingWorkers", testCompeting},
		{"NackTransientRetries", testNackTransient},
		{"NackMaxAttemptsDeadLetters", testMaxAttempts},
		{"NackPermanent", testPermanent},
		{"NackUnavailableChargesNoAttempt", testUnavailable},
		{"Release", testRelease},
		{"UnlimitedAttempts", testUnlimited},
		{"VisibilityTimeout", testVisibility},
		{"StaleTokenIgnored", testStaleToken},
		{"PeekAndPurge", testPeekPurge},
		{"Stats", testStats},
		{"BackPressure", testBackPressure},
		{"TooLarge", testTooLarge},
		{"DeadLetterQueues", testDLQ},
		{"ReplayForGroup", testReplay},
		{"PruneGroups", testPrune},
		{"Closed", testClosed},
		{"ConcurrentProducers", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newEnv(t, open))
		})
	}
}

// RunDurable runs the tests that a durable backend passes on top of Run:
// what a closed and reopened broker still holds.
func RunDurable(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		f    func(t *testing.T, e *env)
	}{
		{"ReopenKeepsUnacked", testReopen},
		{"ReopenKeepsGroupsAndDeadLetters", testReopenDLQ},
		{"ReopenKeepsRetryState", testReopenRetry},
		{"ReopenAfterPurge", testReopenPurge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newEnv(t, open))
		})
	}
}

func testFIFO(t *testing.T, e *env) {
	q := e.queue("p/orders", fast)
	c := e.consumer(q, "sink")
	e.enqueue(q, msgs(0, 3))
	e.enqueue(q, msgs(3, 2))
	ds := e.receive(c, 5)
	wantIDs(t, ds, rangeIDs(0, 5)...)
	e.ack(c, ds)
	e.none(c, 50*time.Millisecond)
	e.enqueue(q, msgs(5, 1))
	wantIDs(t, e.receive(c, 1), "m5")
}

func testFields(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	in := []adapters.Message{
		{ID: "x", Raw: []byte{0, 1, 2}, Meta: map[string]string{"a": "b"}, Time: at, Attempt: 7,
			Record: adapters.Record{"s": "v", "i": int64(-1), "l": []any{true, nil}}},
		{Raw: []byte("no id")},
	}
	e.enqueue(q, in)
	ds := e.receive(c, 2)
	m := ds[0].Message
	if m.ID != "x" || string(m.Raw) != "\x00\x01\x02" || m.Meta["a"] != "b" || !m.Time.Equal(at) {
		t.Fatalf("message changed: %+v", m)
	}
	if m.Attempt != 1 {
		t.Fatalf("first delivery: want attempt 1, got %d", m.Attempt)
	}
	if m.Record["s"] != "v" || m.Record["i"] != int64(-1) {
		t.Fatalf("record changed: %#v", m.Record)
	}
	if l, ok := m.Record["l"].([]any); !ok || len(l) != 2 || l[0] != true || l[1] != nil {
		t.Fatalf("record list changed: %#v", m.Record["l"])
	}
	if ds[1].Message.ID == "" || ds[1].Message.Time.IsZero() {
		t.Fatalf("missing id or time not filled in: %+v", ds[1].Message)
	}
}

func testFanOut(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	a, b := e.consumer(q, "a"), e.consumer(q, "b")
	e.enqueue(q, msgs(0, 4))
	da := e.receive(a, 4)
	db := e.receive(b, 4)
	wantIDs(t, da, rangeIDs(0, 4)...)
	wantIDs(t, db, rangeIDs(0, 4)...)
	e.ack(a, da)
	if s := q.Stats(); s.Messages != 4 {
		t.Fatalf("group b has not acked: want 4 retained, got %d", s.Messages)
	}
	e.ack(b, db)
	if s := q.Stats(); s.Messages != 0 {
		t.Fatalf("every group acked: want 0 retained, got %d", s.Messages)
	}
}

func testCompeting(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	const n = 200
	e.enqueue(q, msgs(0, n))
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		c := e.consumer(q, "g")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				done := len(seen) >= n
				mu.Unlock()
				if done {
					return
				}
				ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
				ds, err := c.Receive(ctx, 7)
				cancel()
				if err != nil {
					continue
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.Message.ID]++
				}
				mu.Unlock()
				if err := c.Ack(e.ctx, ds); err != nil {
					t.Errorf("ack: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("%s delivered %d times to one group", id, k)
		}
	}
	if len(seen) != n {
		t.Fatalf("want %d messages, got %d", n, len(seen))
	}
}

func testNackTransient(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 2))
	ds := e.receive(c, 2)
	if err := c.Nack(e.ctx, ds[:1], errors.New("timeout")); err != nil {
		t.Fatal(err)
	}
	e.ack(c, ds[1:])
	again := e.receive(c, 1)
	wantIDs(t, again, "m0")
	if again[0].Message.Attempt != 2 {
		t.Fatalf("want attempt 2, got %d", again[0].Message.Attempt)
	}
	e.ack(c, again)
	if s := q.Stats(); s.Messages != 0 || len(s.Groups) != 1 || s.Groups[0].Retried != 1 {
		t.Fatalf("stats after retry: %+v", s)
	}
}

func testMaxAttempts(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "erp")
	e.enqueue(q, msgs(0, 1))
	for i := 1; i <= fast.MaxAttempts; i++ {
		ds := e.receive(c, 1)
		if ds[0].Message.Attempt != i {
			t.Fatalf("want attempt %d, got %d", i, ds[0].Message.Attempt)
		}
		if err := c.Nack(e.ctx, ds, fmt.Errorf("deadlock %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	e.none(c, 60*time.Millisecond)
	dl := e.receive(e.consumer(q.DeadLetters(), "inspect"), 1)
	m := dl[0].Message
	if m.ID != "m0" || string(m.Raw) != "body 0" || m.Meta["k"] != "0" {
		t.Fatalf("dead letter lost the original: %+v", m)
	}
	want := map[string]string{adapters.MetaError: "deadlock 3", adapters.MetaAttempts: "3", adapters.MetaQueue: "p/q", adapters.MetaGroup: "erp"}
	for k, v := range want {
		if m.Meta[k] != v {
			t.Fatalf("dead letter meta %s: want %q, got %q", k, v, m.Meta[k])
		}
	}
	first, err1 := time.Parse(time.RFC3339Nano, m.Meta[adapters.MetaFirstErr])
	last, err2 := time.Parse(time.RFC3339Nano, m.Meta[adapters.MetaLastErr])
	if err1 != nil || err2 != nil || last.Before(first) {
		t.Fatalf("failure times: %q %q", m.Meta[adapters.MetaFirstErr], m.Meta[adapters.MetaLastErr])
	}
	if s := q.Stats(); s.DeadLettered != 1 || s.Messages != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func testPermanent(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 1))
	ds := e.receive(c, 1)
	if err := c.Nack(e.ctx, ds, adapters.PermanentError(errors.New("constraint violation"))); err != nil {
		t.Fatal(err)
	}
	e.none(c, 40*time.Millisecond)
	dl := e.receive(e.consumer(q.DeadLetters(), "x"), 1)
	if dl[0].Message.Meta[adapters.MetaAttempts] != "1" || dl[0].Message.Meta[adapters.MetaError] != "constraint violation" {
		t.Fatalf("dead letter meta: %v", dl[0].Message.Meta)
	}
}

func testUnavailable(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 1))
	for i := 0; i < fast.MaxAttempts+2; i++ {
		ds := e.receive(c, 1)
		if ds[0].Message.Attempt != 1 {
			t.Fatalf("round %d: an outage charged an attempt: attempt %d", i, ds[0].Message.Attempt)
		}
		if err := c.Nack(e.ctx, ds, adapters.UnavailableError(errors.New("connection refused"))); err != nil {
			t.Fatal(err)
		}
	}
	if s := q.DeadLetters().Stats(); s.Messages != 0 {
		t.Fatalf("an outage dead-lettered: %+v", s)
	}
}

func testRelease(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 2))
	ds := e.receive(c, 2)
	if err := c.Release(e.ctx, ds); err != nil {
		t.Fatal(err)
	}
	again := e.receive(c, 2)
	for _, d := range again {
		if d.Message.Attempt != 1 {
			t.Fatalf("release charged an attempt: %d", d.Message.Attempt)
		}
	}
	e.ack(c, again)
}

func testUnlimited(t *testing.T, e *env) {
	o := fast
	o.MaxAttempts = -1
	q := e.queue("p/q", o)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 1))
	for i := 1; i <= 6; i++ {
		ds := e.receive(c, 1)
		if ds[0].Message.Attempt != i {
			t.Fatalf("want attempt %d, got %d", i, ds[0].Message.Attempt)
		}
		if err := c.Nack(e.ctx, ds, errors.New("again")); err != nil {
			t.Fatal(err)
		}
	}
	if s := q.DeadLetters().Stats(); s.Messages != 0 {
		t.Fatalf("unlimited attempts dead-lettered: %+v", s)
	}
}

func testVisibility(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 1))
	start := time.Now()
	e.receive(c, 1) // never settled: the worker died
	again := e.receive(c, 1)
	if d := time.Since(start); d < fast.VisibilityTimeout*9/10 {
		t.Fatalf("redelivered after %v, before the visibility timeout %v", d, fast.VisibilityTimeout)
	}
	wantIDs(t, again, "m0")
	if again[0].Message.Attempt != 2 {
		t.Fatalf("want attempt 2, got %d", again[0].Message.Attempt)
	}
	e.ack(c, again)
	e.none(c, fast.VisibilityTimeout+50*time.Millisecond)
}

func testStaleToken(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 1))
	old := e.receive(c, 1)
	cur := e.receive(c, 1) // after the visibility timeout
	e.ack(c, old)          // too late: ignored
	if s := q.Stats(); s.Messages != 1 || s.Groups[0].InFlight != 1 {
		t.Fatalf("a stale ack settled the redelivery: %+v", s)
	}
	e.ack(c, cur)
	if s := q.Stats(); s.Messages != 0 {
		t.Fatalf("ack of the current delivery: %+v", s)
	}
}

func testPeekPurge(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 5))
	p, err := q.Peek(e.ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 3 || p[0].ID != "m0" || p[2].ID != "m2" {
		t.Fatalf("peek: %+v", p)
	}
	ds := e.receive(c, 2)
	wantIDs(t, ds, "m0", "m1") // peek consumed nothing
	e.ack(c, ds)
	if p, _ := q.Peek(e.ctx, 10); len(p) != 3 || p[0].ID != "m2" {
		t.Fatalf("peek after ack: %v", p)
	}
	n, err := q.Purge(e.ctx)
	if err != nil || n != 3 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if s := q.Stats(); s.Messages != 0 {
		t.Fatalf("after purge: %+v", s)
	}
	e.none(c, 40*time.Millisecond)
	e.enqueue(q, msgs(10, 1))
	wantIDs(t, e.receive(c, 1), "m10")
	if p, _ := q.Peek(e.ctx, 10); len(p) != 1 {
		t.Fatalf("peek after purge: %v", p)
	}
}

func testStats(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 4))
	ds := e.receive(c, 3)
	e.ack(c, ds[:1])
	s := q.Stats()
	if s.Name != "p/q" || s.Messages != 3 || s.Enqueued != 4 || s.Bytes <= 0 || s.Full {
		t.Fatalf("stats: %+v", s)
	}
	if len(s.Groups) != 1 || s.Groups[0].Name != "g" || s.Groups[0].Pending != 3 || s.Groups[0].InFlight != 2 || s.Groups[0].Acked != 1 {
		t.Fatalf("group stats: %+v", s.Groups)
	}
	if s.OldestAge <= 0 {
		t.Fatalf("oldest age: %v", s.OldestAge)
	}
}

func testBackPressure(t *testing.T, e *env) {
	o := fast
	o.MaxMessages = 2
	q := e.queue("p/q", o)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 2))
	ctx, cancel := context.WithTimeout(e.ctx, 50*time.Millisecond)
	err := q.Enqueue(ctx, msgs(2, 1))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("enqueue into a full queue: want deadline exceeded, got %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Enqueue(e.ctx, msgs(2, 1)) }()
	deadline := time.Now().Add(5 * time.Second)
	for !q.Stats().Full {
		if time.Now().After(deadline) {
			t.Fatal("stats never said full")
		}
		time.Sleep(2 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("enqueue did not block: %v", err)
	case <-time.After(30 * time.Millisecond):
	}
	e.ack(c, e.receive(c, 1))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("enqueue still blocked after an ack made room")
	}
	if q.Stats().Full {
		t.Fatal("still full")
	}
	ds := e.receive(c, 2)
	wantIDs(t, ds, "m1", "m2") // nothing dropped
}

func testTooLarge(t *testing.T, e *env) {
	o := fast
	o.MaxBytes = 64
	q := e.queue("p/q", o)
	big := []adapters.Message{{ID: "big", Raw: make([]byte, 1024)}}
	if err := q.Enqueue(e.ctx, big); !errors.Is(err, broker.ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
}

func testDLQ(t *testing.T, e *env) {
	q := e.queue("p/orders", fast)
	d := q.DeadLetters()
	if d == nil || d.Name() != "p/orders"+broker.DLQSuffix {
		t.Fatalf("dead-letter queue: %v", d)
	}
	if d.DeadLetters() != nil {
		t.Fatal("a dead-letter queue has a dead-letter queue")
	}
	names, err := e.b.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, "p/orders") || !slices.Contains(names, "p/orders.dlq") || !slices.IsSorted(names) {
		t.Fatalf("list: %v", names)
	}
	if s := d.Stats(); len(s.Groups) != 1 || s.Groups[0].Name != broker.ReplayGroup {
		t.Fatalf("dead-letter queue groups: %+v", s.Groups)
	}
	// dead letters stay until replayed, even with no other group
	if err := d.Enqueue(e.ctx, msgs(0, 1)); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.Messages != 1 {
		t.Fatalf("dead-letter stats: %+v", s)
	}
}

func testReplay(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	a, b := e.consumer(q, "a"), e.consumer(q, "b")
	e.enqueue(q, msgs(0, 2))
	da := e.receive(a, 2)
	e.ack(a, da[1:])
	if err := a.Nack(e.ctx, da[:1], adapters.PermanentError(errors.New("bad row"))); err != nil {
		t.Fatal(err)
	}
	e.ack(b, e.receive(b, 2))
	n, err := broker.Replay(e.ctx, q.DeadLetters(), q, 0)
	if err != nil || n != 1 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	got := e.receive(a, 1)
	wantIDs(t, got, "m0")
	if _, ok := got[0].Message.Meta[adapters.MetaError]; ok {
		t.Fatalf("replayed message keeps failure meta: %v", got[0].Message.Meta)
	}
	e.ack(a, got)
	e.none(b, 60*time.Millisecond) // b had delivered it already
	if s := q.DeadLetters().Stats(); s.Messages != 0 {
		t.Fatalf("dead letters after replay: %+v", s)
	}
	if s := q.Stats(); s.Messages != 0 {
		t.Fatalf("queue after replay: %+v", s)
	}
}

func testPrune(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	e.consumer(q, "old")
	e.consumer(q, "keep")
	e.enqueue(q, msgs(0, 1))
	o := fast
	o.Groups = []string{"keep"}
	q = e.queue("p/q", o)
	s := q.Stats()
	if len(s.Groups) != 1 || s.Groups[0].Name != "keep" {
		t.Fatalf("groups after prune: %+v", s.Groups)
	}
	d := q.DeadLetters()
	d2 := e.queue(d.Name(), broker.Options{Groups: []string{}})
	if s := d2.Stats(); len(s.Groups) != 1 || s.Groups[0].Name != broker.ReplayGroup {
		t.Fatalf("the replay group was pruned: %+v", s.Groups)
	}
}

func testClosed(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(e.ctx, msgs(0, 1)); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("enqueue after close: %v", err)
	}
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Open("p/q", fast); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("open after broker close: %v", err)
	}
}

func testConcurrent(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	const producers, each = 4, 100
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := q.Enqueue(e.ctx, msgs(p*each+i, 1)); err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
			}
		}()
	}
	got := map[string]bool{}
	last := map[int]int{}
	for len(got) < producers*each {
		ds, err := c.Receive(e.ctx, 64)
		if err != nil {
			t.Fatalf("receive after %d: %v", len(got), err)
		}
		for _, d := range ds {
			got[d.Message.ID] = true
			k, _ := strconv.Atoi(d.Message.ID[1:])
			if prev, ok := last[k/each]; ok && prev > k {
				t.Fatalf("producer %d: %d after %d", k/each, k, prev)
			}
			last[k/each] = k
		}
		e.ack(c, ds)
	}
	wg.Wait()
}

func testReopen(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 10))
	ds := e.receive(c, 6)
	e.ack(c, ds[:2])
	e.ack(c, ds[4:5]) // out of order
	e.reopen()
	q = e.queue("p/q", fast)
	c = e.consumer(q, "g")
	got := e.receive(c, 7)
	wantIDs(t, got, "m2", "m3", "m5", "m6", "m7", "m8", "m9")
	e.ack(c, got)
	e.reopen()
	q = e.queue("p/q", fast)
	e.none(e.consumer(q, "g"), 50*time.Millisecond)
	if s := q.Stats(); s.Messages != 0 {
		t.Fatalf("stats after reopen: %+v", s)
	}
}

func testReopenDLQ(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	a, b := e.consumer(q, "a"), e.consumer(q, "b")
	e.enqueue(q, msgs(0, 2))
	da := e.receive(a, 2)
	if err := a.Nack(e.ctx, da[:1], adapters.PermanentError(errors.New("bad"))); err != nil {
		t.Fatal(err)
	}
	e.ack(a, da[1:])
	_ = b
	e.reopen()
	q = e.queue("p/q", fast)
	b = e.consumer(q, "b")
	wantIDs(t, e.receive(b, 2), "m0", "m1") // b's cursor survived at the start
	a = e.consumer(q, "a")
	e.none(a, 50*time.Millisecond)
	dl := e.receive(e.consumer(q.DeadLetters(), broker.ReplayGroup), 1)
	if dl[0].Message.ID != "m0" || dl[0].Message.Meta[adapters.MetaError] != "bad" {
		t.Fatalf("dead letter after reopen: %+v", dl[0].Message)
	}
}

func testReopenRetry(t *testing.T, e *env) {
	o := fast
	o.Backoff = broker.Backoff{Initial: 200 * time.Millisecond, Max: time.Second, Multiplier: 2}
	q := e.queue("p/q", o)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 1))
	ds := e.receive(c, 1)
	start := time.Now()
	if err := c.Nack(e.ctx, ds, errors.New("transient")); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	q = e.queue("p/q", o)
	c = e.consumer(q, "g")
	got := e.receive(c, 1)
	if time.Since(start) < 150*time.Millisecond {
		t.Fatalf("the backoff did not survive the reopen: redelivered after %v", time.Since(start))
	}
	if got[0].Message.Attempt != 2 {
		t.Fatalf("the attempt count did not survive the reopen: attempt %d", got[0].Message.Attempt)
	}
}

func testReopenPurge(t *testing.T, e *env) {
	q := e.queue("p/q", fast)
	c := e.consumer(q, "g")
	e.enqueue(q, msgs(0, 5))
	e.receive(c, 2)
	if _, err := q.Purge(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.enqueue(q, msgs(5, 1))
	e.reopen()
	q = e.queue("p/q", fast)
	c = e.consumer(q, "g")
	wantIDs(t, e.receive(c, 1), "m5")
	e.none(c, 50*time.Millisecond)
}
