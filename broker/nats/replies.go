package natsbroker

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
)

// Replies is adapters.Replies for agents sharing a NATS broker: the
// answers of a request/reply pipeline reach the agent that holds the
// caller's connection, whichever agent's sink wrote the message.
//
// Every registry has an agent id of its own (a NUID, fresh per process), and
// the correlation ids it hands out are AGENT.SEQ. Await registers with the
// local registry. Deliver of an id of this agent calls the local waiters in
// process; of another agent's id, it publishes the reply (the broker's wire
// encoding, so decimals and times arrive as they were) to
// SUBJECTPREFIX._reply.AGENT, which that agent subscribes to and hands to its
// local waiters. The engine's ReplyExpect announcement is made by the agent
// that runs the source, which is the one holding the caller, so it is
// always local; only the replies of sinks travel.
//
// Replies travel on core NATS, at most once: a reply lost while the caller's
// agent reconnects leaves that caller to time out (the message itself is
// durable and delivered). A reply to an agent that no longer listens (it
// stopped or died) is dropped: the server answers "no responders" and the
// registry logs it at debug level, once per reply.
type Replies struct {
	nc     *nats.Conn
	local  adapters.Replies
	log    *slog.Logger
	agent  string
	prefix string // SUBJECTPREFIX._reply.
	inbox  string // reply subject prefix of publishes, for no-responder statuses
	seq    atomic.Uint64

	mu     sync.Mutex // guards the subscriptions
	subs   []*nats.Subscription
	closed bool
}

var _ adapters.Replies = (*Replies)(nil)

// ReplyOptions configure Broker.Replies.
type ReplyOptions struct {
	// Local holds this agent's waiters: pipeline.NewLocalReplies(). Required.
	Local adapters.Replies
	// Logger receives the registry's logs; nil uses the broker's.
	Logger *slog.Logger
}

// replyToken is the subject token between the subject prefix and the agent
// id. Queue subjects are SUBJECTPREFIX.PIPELINE.QUEUE with names that start
// with a letter or digit, so no queue's subject can be a reply subject.
const replyToken = "_reply"

// Replies returns a reply registry on the broker's connection with a fresh
// agent id, subscribed to its subject. Close it before the broker.
func (b *Broker) Replies(o ReplyOptions) (*Replies, error) {
	if o.Local == nil {
		return nil, errors.New("nats replies: ReplyOptions.Local is nil")
	}
	log := o.Logger
	if log == nil {
		log = b.o.Logger
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Replies{nc: b.nc, local: o.Local, log: log, agent: nuid.Next(),
		prefix: b.o.SubjectPrefix + "." + replyToken + ".", inbox: b.nc.NewInbox() + "."}
	for _, s := range []struct {
		subject string
		f       nats.MsgHandler
	}{{r.prefix + r.agent, r.receive}, {r.inbox + ">", r.undeliverable}} {
		sub, err := b.nc.Subscribe(s.subject, s.f)
		if err == nil {
			// a reply dropped as a slow consumer's would leave its caller
			// waiting; the handlers are short and never block
			err = sub.SetPendingLimits(-1, -1)
		}
		if err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("nats replies: subscribe to %s: %w", s.subject, err)
		}
		r.subs = append(r.subs, sub)
	}
	// the subscriptions are known to the server before an id is handed out
	if err := b.nc.Flush(); err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("nats replies: %w", err)
	}
	return r, nil
}

// Agent returns the registry's agent id, the first part of its ids.
func (r *Replies) Agent() string { return r.agent }

// NewID returns AGENT.SEQ.
func (r *Replies) NewID() string {
	return r.agent + "." + strconv.FormatUint(r.seq.Add(1), 10)
}

// Await registers f with the local registry.
func (r *Replies) Await(id string, f func(adapters.Reply)) func() { return r.local.Await(id, f) }

// Deliver hands rep to the local waiters of id when id is this agent's (or
// names no agent), else publishes it to id's agent and reports whether it
// was published; whether a caller still waits is known there. It never
// blocks: a publish is buffered by the connection.
func (r *Replies) Deliver(id string, rep adapters.Reply) bool {
	agent, ok := agentOf(id)
	if !ok || agent == r.agent {
		return r.local.Deliver(id, rep)
	}
	data, err := encodeReply(id, rep, r.nc.MaxPayload())
	if err != nil {
		r.log.Warn("reply not routed to its agent", "reply_to", id, "sink", rep.Sink, "id", rep.ID, "error", err)
		return false
	}
	// the reply subject asks the server for a "no responders" status when
	// the agent no longer listens; nothing else ever answers it
	if err := r.nc.PublishMsg(&nats.Msg{Subject: r.prefix + agent, Reply: r.inbox + id, Data: data}); err != nil {
		r.log.Debug("reply not published", "reply_to", id, "sink", rep.Sink, "id", rep.ID, "error", err)
		return false
	}
	return true
}

// Close unsubscribes: replies to this agent's ids are no longer received.
// Deliver still serves local ids. Close is idempotent.
func (r *Replies) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for _, s := range r.subs {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// receive hands a reply published by another agent to the local waiters.
func (r *Replies) receive(m *nats.Msg) {
	id, rep, err := decodeReply(m.Data)
	if err != nil {
		r.log.Warn("malformed reply dropped", "subject", m.Subject, "error", err)
		return
	}
	if !r.local.Deliver(id, rep) {
		r.log.Debug("reply not delivered: the caller gave up", "reply_to", id, "sink", rep.Sink, "id", rep.ID)
	}
}

// undeliverable logs the server's "no responders" status for a reply
// published to an agent that no longer listens.
func (r *Replies) undeliverable(m *nats.Msg) {
	if len(m.Data) != 0 || m.Header.Get("Status") != "503" {
		return
	}
	id := m.Subject[len(r.inbox):]
	agent, _ := agentOf(id)
	r.log.Debug("reply dropped: its agent no longer listens (stopped or died); the caller's connection is gone with it",
		"reply_to", id, "agent", agent)
}

// agentOf returns the agent of an id AGENT.SEQ: AGENT of letters and
// digits, SEQ of digits. Other ids name no agent.
func agentOf(id string) (string, bool) {
	dot := -1
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c == '.' && dot < 0 && i > 0:
			dot = i
		case c >= '0' && c <= '9':
		case dot < 0 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'):
		default:
			return "", false
		}
	}
	if dot < 0 || dot == len(id)-1 {
		return "", false
	}
	return id[:dot], true
}

// Metadata keys of a reply in the wire encoding: the reply is a message
// whose ID and Record are the reply's, and whose metadata holds the rest.
const (
	replyMetaTo     = "to"
	replyMetaStatus = "status"
	replyMetaSink   = "sink"
	replyMetaError  = "error"
	replyMetaExpect = "expect"
)

// encodeReply encodes rep for id with broker.AppendMessage. A reply whose
// record cannot be encoded, or whose encoding exceeds max bytes (the
// server's max_payload), is sent without its record and with an error that
// says why, so that the caller still gets its answer.
func encodeReply(id string, rep adapters.Reply, max int64) ([]byte, error) {
	meta := map[string]string{replyMetaTo: id, replyMetaStatus: rep.Status}
	if rep.Sink != "" {
		meta[replyMetaSink] = rep.Sink
	}
	if rep.Error != "" {
		meta[replyMetaError] = rep.Error
	}
	if rep.Expect != 0 {
		meta[replyMetaExpect] = strconv.Itoa(rep.Expect)
	}
	m := adapters.Message{ID: rep.ID, Record: rep.Record, Meta: meta}
	data, err := broker.AppendMessage(nil, &m)
	switch {
	case err != nil:
		err = fmt.Errorf("reply record not sent to the agent holding the caller: %w", err)
	case max > 0 && int64(len(data)) > max:
		err = fmt.Errorf("reply record of %d bytes not sent to the agent holding the caller: larger than the NATS max_payload (%d bytes)", len(data), max)
	default:
		return data, nil
	}
	meta[replyMetaError] = joinError(rep.Error, err.Error())
	m.Record = nil
	return broker.AppendMessage(nil, &m)
}

func joinError(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// decodeReply reverses encodeReply.
func decodeReply(b []byte) (string, adapters.Reply, error) {
	m, err := broker.DecodeMessage(b)
	if err != nil {
		return "", adapters.Reply{}, err
	}
	id, status := m.Meta[replyMetaTo], m.Meta[replyMetaStatus]
	if id == "" || status == "" {
		return "", adapters.Reply{}, fmt.Errorf("%w: reply without correlation id or status", broker.ErrCorrupt)
	}
	rep := adapters.Reply{Status: status, ID: m.ID, Sink: m.Meta[replyMetaSink], Record: m.Record, Error: m.Meta[replyMetaError]}
	if s := m.Meta[replyMetaExpect]; s != "" {
		if rep.Expect, err = strconv.Atoi(s); err != nil {
			return "", adapters.Reply{}, fmt.Errorf("%w: reply expect %q", broker.ErrCorrupt, s)
		}
	}
	return id, rep, nil
}
