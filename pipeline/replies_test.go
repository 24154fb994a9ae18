package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// replySource emits the requests pushed into it, each request's records
// sharing a correlation id, and keeps the Replies the engine gave it.
type replySource struct {
	res  adapters.Resources
	in   chan []adapters.Message
	done chan struct{}
	once sync.Once
}

// replySink answers {"echo": n} for each record, or fails records whose
// field fail is set, permanently.
type replySink struct{}

var replySources sync.Map // pipeline/name -> *replySource

func init() {
	adapters.RegisterSource("reply_source", &adapters.Spec{Summary: "test request source"},
		func(conf *adapters.Config, res adapters.Resources) (adapters.Source, error) {
			s := &replySource{res: res, in: make(chan []adapters.Message, 16), done: make(chan struct{})}
			replySources.Store(res.Pipeline+"/"+res.Name, s)
			return s, nil
		})
	adapters.RegisterSink("reply_sink", &adapters.Spec{Summary: "test replier"},
		func(conf *adapters.Config, res adapters.Resources) (adapters.Sink, error) { return replySink{}, nil })
}

func (s *replySource) Connect(context.Context) error { return nil }

func (s *replySource) Read(ctx context.Context) (adapters.Batch, error) {
	select {
	case msgs := <-s.in:
		return adapters.Batch{Messages: msgs}, nil
	case <-ctx.Done():
		return adapters.Batch{}, ctx.Err()
	case <-s.done:
		return adapters.Batch{}, adapters.ErrClosed
	}
}

func (s *replySource) Close(context.Context) error {
	s.once.Do(func() { close(s.done) })
	return nil
}

func (replySink) Connect(context.Context) error { return nil }
func (replySink) Close(context.Context) error   { return nil }
func (s replySink) Write(ctx context.Context, msgs []adapters.Message) error {
	_, err := s.WriteReply(ctx, msgs)
	return err
}

func (replySink) WriteReply(_ context.Context, msgs []adapters.Message) ([]adapters.Record, error) {
	out := make([]adapters.Record, len(msgs))
	be := adapters.NewBatchError(0)
	for i, m := range msgs {
		if m.Record["fail"] == true {
			be.Fail(i, adapters.PermanentError(errors.New("refused")))
			continue
		}
		out[i] = adapters.Record{"echo": m.Record["n"]}
	}
	return out, be.Err()
}

// request sends records as one request and waits for its replies.
func request(t *testing.T, key string, recs ...adapters.Record) ([]adapters.Reply, int) {
	t.Helper()
	v, ok := replySources.Load(key)
	if !ok {
		t.Fatalf("no source %s", key)
	}
	src := v.(*replySource)
	id := fmt.Sprintf("req-%d", time.Now().UnixNano())
	set, cancel := adapters.AwaitReplies(src.res.Replies, id)
	defer cancel()
	msgs := make([]adapters.Message, len(recs))
	for i, r := range recs {
		msgs[i] = adapters.Message{ID: fmt.Sprint(id, "/", i), Record: r, Meta: map[string]string{adapters.MetaReplyTo: id}}
	}
	src.in <- msgs
	select {
	case <-set.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("replies incomplete: expected %d, got %v", set.Expected(), set.Replies())
	}
	reps := set.Replies()
	sort.Slice(reps, func(i, j int) bool { return reps[i].Sink+reps[i].ID < reps[j].Sink+reps[j].ID })
	return reps, set.Expected()
}

func TestRequestReply(t *testing.T) {
	cfg := mustLoad(t, `
pipelines:
  rr:
    sources:
      - {name: api, type: reply_source}
    stages:
      - filter: record.n != 99
      - split: parts
      - map:
          n: record.n * 10
      - route:
          mode: all
          routes:
            - when: record.n >= 1000
              to: big
          default: small
    queues:
      small: {max_attempts: 1}
      big: {}
    sinks:
      - {name: lookup, type: reply_sink, from: small}
      - {name: audit, type: test_sink, from: small}
      - {name: bigsink, type: reply_sink, from: big}
`)
	startAgent(t, cfg, false)
	eventually(t, "source", func() bool { _, ok := replySources.Load("rr/api"); return ok })

	t.Run("one record, two sinks: a Replier's record and an ack", func(t *testing.T) {
		reps, want := request(t, "rr/api", adapters.Record{"parts": []any{map[string]any{"n": int64(1)}}})
		if want != 2 || len(reps) != 2 {
			t.Fatalf("expected 2 replies, announced %d, got %+v", want, reps)
		}
		if reps[0].Sink != "audit" || reps[0].Status != adapters.ReplyDelivered || reps[0].Record != nil {
			t.Errorf("audit reply: %+v", reps[0])
		}
		if reps[1].Sink != "lookup" || reps[1].Status != adapters.ReplyDelivered || reps[1].Record["echo"] != int64(10) {
			t.Errorf("lookup reply: %+v", reps[1])
		}
	})
	t.Run("split and route to two queues", func(t *testing.T) {
		reps, want := request(t, "rr/api", adapters.Record{"parts": []any{
			map[string]any{"n": int64(2)}, map[string]any{"n": int64(200)},
		}})
		// n=20 goes to small (2 sinks); n=2000 to big (1 sink)
		if want != 3 || len(reps) != 3 {
			t.Fatalf("announced %d, got %+v", want, reps)
		}
		if reps[0].Sink != "audit" || reps[1].Sink != "bigsink" || reps[1].Record["echo"] != int64(2000) || reps[2].Sink != "lookup" {
			t.Errorf("replies: %+v", reps)
		}
	})
	t.Run("dropped by the filter: nothing to wait for", func(t *testing.T) {
		reps, want := request(t, "rr/api", adapters.Record{"n": int64(99)})
		if want != 0 || len(reps) != 0 {
			t.Fatalf("announced %d, got %+v", want, reps)
		}
	})
	t.Run("stage error: rejected", func(t *testing.T) {
		reps, want := request(t, "rr/api", adapters.Record{"parts": []any{map[string]any{"n": "x"}}})
		if want != 1 || len(reps) != 1 || reps[0].Status != adapters.ReplyRejected || reps[0].Error == "" {
			t.Fatalf("announced %d, got %+v", want, reps)
		}
	})
	t.Run("sink failure: failed, the other sink delivered", func(t *testing.T) {
		reps, want := request(t, "rr/api", adapters.Record{"parts": []any{map[string]any{"n": int64(3), "fail": true}}})
		if want != 2 || len(reps) != 2 {
			t.Fatalf("announced %d, got %+v", want, reps)
		}
		if reps[0].Sink != "audit" || reps[0].Status != adapters.ReplyDelivered {
			t.Errorf("audit: %+v", reps[0])
		}
		if reps[1].Sink != "lookup" || reps[1].Status != adapters.ReplyFailed || reps[1].Error != "refused" {
			t.Errorf("lookup: %+v", reps[1])
		}
	})
}

func TestLocalRepliesCancel(t *testing.T) {
	reg := NewLocalReplies()
	var got []adapters.Reply
	cancel := reg.Await("a", func(r adapters.Reply) { got = append(got, r) })
	if !reg.Deliver("a", adapters.Reply{Status: adapters.ReplyDelivered, ID: "1"}) {
		t.Fatal("Deliver found no waiter")
	}
	cancel()
	cancel()
	if reg.Deliver("a", adapters.Reply{Status: adapters.ReplyDelivered, ID: "2"}) {
		t.Fatal("Deliver found a waiter after cancel")
	}
	if len(got) != 1 || got[0].ID != "1" {
		t.Fatalf("got %+v", got)
	}
}

func TestReplySetCountsEachMessageAndSinkOnce(t *testing.T) {
	s := adapters.NewReplySet()
	s.Add(adapters.Reply{Status: adapters.ReplyDelivered, ID: "m", Sink: "a"})
	s.Add(adapters.Reply{Status: adapters.ReplyDelivered, ID: "m", Sink: "a"}) // redelivered
	select {
	case <-s.Done():
		t.Fatal("done before the announcement")
	default:
	}
	s.Add(adapters.Reply{Status: adapters.ReplyExpect, Expect: 2})
	select {
	case <-s.Done():
		t.Fatal("a duplicate counted")
	default:
	}
	s.Add(adapters.Reply{Status: adapters.ReplyDelivered, ID: "m", Sink: "b"})
	select {
	case <-s.Done():
	default:
		t.Fatal("not done after 2 distinct replies")
	}
	if len(s.Replies()) != 2 {
		t.Fatalf("replies: %+v", s.Replies())
	}
}
