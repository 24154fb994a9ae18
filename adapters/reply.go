package adapters

import "sync"

// MetaReplyTo is the metadata key of a request/reply message: the
// correlation id of the caller waiting for an answer. A source that serves
// callers (the http source in mode request_reply) sets it, registers with
// Resources.Replies, and the engine answers once the message was written or
// failed. Stages keep metadata, so every message derived from a request (a
// split, a route to several queues) carries the same id.
const MetaReplyTo = "reply_to"

// Reply statuses.
const (
	// ReplyExpect is the engine's announcement, sent once per batch a
	// source read and before anything is enqueued: Expect more replies
	// follow for this id (one per message and sink that reads its queue,
	// one per message rejected by the stages; 0 when filters dropped
	// everything). A batch whose enqueue failed sends none of them: the
	// source's Ack carries the error instead.
	ReplyExpect = "expect"
	// ReplyDelivered: a sink wrote the message. Record is the sink's
	// answer when the sink is a Replier, else nil (an acknowledgement).
	ReplyDelivered = "delivered"
	// ReplyFailed: a sink failed the message for good (permanent error or
	// attempts exhausted); it is in the queue's dead-letter queue. Error
	// says why.
	ReplyFailed = "failed"
	// ReplyRejected: the stages failed the message (decode error,
	// expression error, no route); it is in the pipeline's dead-letter
	// queue. Error says why.
	ReplyRejected = "rejected"
)

// Reply is one answer to a request/reply message.
type Reply struct {
	Status string `json:"status"`
	// ID is the message's ID (a split child's own ID).
	ID string `json:"id,omitempty"`
	// Sink is the sink that wrote or failed the message.
	Sink string `json:"sink,omitempty"`
	// Record is the reply of a Replier sink.
	Record Record `json:"reply,omitempty"`
	// Error says why the message failed.
	Error string `json:"error,omitempty"`
	// Expect is set on ReplyExpect only.
	Expect int `json:"-"`
}

// Replies routes the replies of request/reply pipelines to the callers
// waiting for them. The engine implements it in-process; a broker shared by
// several agents (NATS) implements it over the broker, so that a reply
// produced by a sink on one agent reaches the agent holding the caller's
// connection: the correlation ids NewID hands out then name the agent (a
// prefix), Deliver publishes to that agent's reply subject, and each agent
// subscribes to its own subject and dispatches to its local waiters.
// Implementations are safe for concurrent use.
type Replies interface {
	// NewID returns a fresh correlation id, unique among the ids in use,
	// that Deliver — on any agent sharing the broker — can route back to
	// this one. Sources take the ids they put in MetaReplyTo from it.
	NewID() string
	// Await registers f to receive every reply delivered to id until cancel
	// is called; Deliver calls f after Await returned. f may be called
	// concurrently from engine goroutines and must not block. cancel is
	// idempotent; after it returns, f is not called again.
	Await(id string, f func(Reply)) (cancel func())
	// Deliver hands r to whoever awaits id. It never blocks. It reports
	// whether a waiter took it (false: the caller gave up, or the id is
	// unknown here).
	Deliver(id string, r Reply) bool
}

// ReplySet gathers the replies to one correlation id: its Add is the
// callback given to Replies.Await. It counts each (message ID, sink) pair
// once, so a message delivered twice (redelivery after a crash) is not
// counted twice, and it is complete once the engine's ReplyExpect count of
// replies arrived.
type ReplySet struct {
	mu      sync.Mutex
	replies []Reply
	seen    map[[2]string]bool
	expect  int // -1 until the announcement
	done    chan struct{}
}

// NewReplySet returns an empty set.
func NewReplySet() *ReplySet {
	return &ReplySet{seen: map[[2]string]bool{}, expect: -1, done: make(chan struct{})}
}

// AwaitReplies registers a new ReplySet for id with reg and returns it with
// the cancel function of the registration.
func AwaitReplies(reg Replies, id string) (*ReplySet, func()) {
	s := NewReplySet()
	return s, reg.Await(id, s.Add)
}

// Add records r. It never blocks.
func (s *ReplySet) Add(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Status == ReplyExpect {
		if s.expect < 0 {
			s.expect = 0
		}
		s.expect += r.Expect
	} else {
		k := [2]string{r.ID, r.Sink}
		if s.seen[k] {
			return
		}
		s.seen[k] = true
		s.replies = append(s.replies, r)
	}
	if s.expect >= 0 && len(s.replies) >= s.expect {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
}

// Done is closed once every expected reply arrived.
func (s *ReplySet) Done() <-chan struct{} { return s.done }

// Replies returns a copy of the replies received so far, in arrival order.
func (s *ReplySet) Replies() []Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reply(nil), s.replies...)
}

// Expected returns the number of replies announced, or -1 before the
// announcement.
func (s *ReplySet) Expected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expect
}
