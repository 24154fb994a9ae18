package pipeline

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/transform"
)

// localReplies is the in-process adapters.Replies: a map of correlation id
// to the callbacks waiting for it. It serves the sources and sinks of one
// agent process; a broker shared by several agents needs an implementation
// that routes replies between them (see adapters.Replies).
type localReplies struct {
	mu      sync.Mutex
	waiters map[string]map[uint64]func(adapters.Reply)
	next    uint64
}

// NewLocalReplies returns an in-process reply registry. Options.Replies
// defaults to one per pipeline.
func NewLocalReplies() adapters.Replies {
	return &localReplies{waiters: map[string]map[uint64]func(adapters.Reply){}}
}

// NewID returns 16 random bytes in hex.
func (l *localReplies) NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (l *localReplies) Await(id string, f func(adapters.Reply)) func() {
	l.mu.Lock()
	l.next++
	n := l.next
	ws := l.waiters[id]
	if ws == nil {
		ws = map[uint64]func(adapters.Reply){}
		l.waiters[id] = ws
	}
	ws[n] = f
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			delete(l.waiters[id], n)
			if len(l.waiters[id]) == 0 {
				delete(l.waiters, id)
			}
		})
	}
}

// Deliver calls the waiters under the lock, so that none is called after
// its cancel returned; waiters must not block (the contract of Await).
func (l *localReplies) Deliver(id string, r adapters.Reply) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ws := l.waiters[id]
	for _, f := range ws {
		f(r)
	}
	return len(ws) > 0
}

// replyPlan counts, per correlation id, the replies a batch of outputs will
// produce: one per message and sink reading each queue it goes to, one per
// message rejected into the pipeline's dead-letter queue. ids lists the
// correlation ids of the batch's input messages, so that a request whose
// messages were all dropped is announced with 0.
func (r *Runtime) replyPlan(in []adapters.Message, outs []transform.Output) map[string]int {
	var plan map[string]int
	for i := range in {
		if id := in[i].Meta[adapters.MetaReplyTo]; id != "" {
			if plan == nil {
				plan = map[string]int{}
			}
			if _, ok := plan[id]; !ok {
				plan[id] = 0
			}
		}
	}
	if plan == nil {
		return nil
	}
	for _, o := range outs {
		id := o.Msg.Meta[adapters.MetaReplyTo]
		if id == "" {
			continue
		}
		if o.Err != nil {
			plan[id]++
			continue
		}
		for _, q := range o.Queues {
			plan[id] += r.readers[q]
		}
	}
	return plan
}

// announce sends each correlation id of plan its ReplyExpect.
func (r *Runtime) announce(plan map[string]int) {
	for id, n := range plan {
		r.replies.Deliver(id, adapters.Reply{Status: adapters.ReplyExpect, Expect: n})
	}
}

// rejectReplies returns the replies to send for outputs that failed in the
// stages, once they are durably in the pipeline's dead-letter queue.
func rejectReplies(outs []transform.Output) []pendingReply {
	var out []pendingReply
	for _, o := range outs {
		if o.Err == nil {
			continue
		}
		if id := o.Msg.Meta[adapters.MetaReplyTo]; id != "" {
			out = append(out, pendingReply{id, adapters.Reply{Status: adapters.ReplyRejected, ID: o.Msg.ID, Error: o.Err.Error()}})
		}
	}
	return out
}

// pendingReply is a reply held until its batch is durable.
type pendingReply struct {
	to    string
	reply adapters.Reply
}

// countReaders returns, per queue, how many sinks read it.
func countReaders(p *Pipeline) map[string]int {
	out := map[string]int{}
	for _, s := range p.Sinks {
		out[s.From]++
	}
	return out
}

// wantsReply reports whether a batch holds a message whose caller waits.
func wantsReply(msgs []adapters.Message) bool {
	for i := range msgs {
		if msgs[i].Meta[adapters.MetaReplyTo] != "" {
			return true
		}
	}
	return false
}

// fullCache answers Resources.Backpressure: whether a declared queue of the
// pipeline is full, refreshed at most every fullTTL (Stats may read disk).
type fullCache struct {
	queues []broker.Queue
	mu     sync.Mutex // guards the fields below
	at     time.Time
	full   bool
}

const fullTTL = 10 * time.Millisecond

func (c *fullCache) check() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < fullTTL {
		return c.full
	}
	full := false
	for _, q := range c.queues {
		if q.Stats().Full {
			full = true
			break
		}
	}
	c.full, c.at = full, time.Now()
	return full
}
