package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// mux collects the replies to many requests sent at once: publishes (their
// PubAcks) and acknowledgements (the server's confirmation). One wildcard
// subscription serves every call; a call is a batch of requests whose reply
// subjects are INBOX.CALL.INDEX. Sending a whole batch before waiting is
// what makes acks and publishes cost one round trip per batch, not per
// message.
type mux struct {
	nc     *nats.Conn
	prefix string // "_INBOX.xxx."
	sub    *nats.Subscription

	mu    sync.Mutex
	next  uint64
	calls map[uint64]chan reply
}

type reply struct {
	i   int
	msg *nats.Msg
}

func newMux(nc *nats.Conn) (*mux, error) {
	m := &mux{nc: nc, prefix: nc.NewInbox() + ".", calls: map[uint64]chan reply{}}
	sub, err := nc.Subscribe(m.prefix+">", m.handle)
	if err != nil {
		return nil, fmt.Errorf("nats: reply subscription: %w", err)
	}
	// replies must never be dropped as a slow consumer's
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	m.sub = sub
	return m, nil
}

func (m *mux) handle(msg *nats.Msg) {
	rest := strings.TrimPrefix(msg.Subject, m.prefix)
	callID, idx, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	id, err1 := strconv.ParseUint(callID, 10, 64)
	i, err2 := strconv.Atoi(idx)
	if err1 != nil || err2 != nil {
		return
	}
	m.mu.Lock()
	ch := m.calls[id]
	m.mu.Unlock()
	if ch == nil {
		return // a late reply to a call that gave up
	}
	select {
	case ch <- reply{i: i, msg: msg}:
	default: // more replies than requests: a duplicate, ignore
	}
}

// call is one batch of requests.
type call struct {
	m  *mux
	id uint64
	n  int
	ch chan reply
}

func (m *mux) newCall(n int) *call {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	c := &call{m: m, id: m.next, n: n, ch: make(chan reply, n)}
	m.calls[c.id] = c.ch
	return c
}

// replyTo returns the reply subject of request i.
func (c *call) replyTo(i int) string {
	return c.m.prefix + strconv.FormatUint(c.id, 10) + "." + strconv.Itoa(i)
}

func (c *call) close() {
	c.m.mu.Lock()
	delete(c.m.calls, c.id)
	c.m.mu.Unlock()
}

// errNoReply is returned for requests the server did not answer in time.
var errNoReply = errors.New("no reply from the nats server in time")

// wait collects the replies into out (nil entries: no reply) until all n
// arrived, ctx is done or timeout passed. It reports ctx's error only.
func (c *call) wait(ctx context.Context, timeout time.Duration, out []*nats.Msg) error {
	defer c.close()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for got := 0; got < c.n; {
		select {
		case r := <-c.ch:
			if r.i >= 0 && r.i < len(out) && out[r.i] == nil {
				out[r.i] = r.msg
				got++
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	return nil
}

// settle sends payload(i) to each of subjects (ack reply subjects of
// delivered messages) asking for a confirmation, and waits for all of them.
func (m *mux) settle(ctx context.Context, subjects []string, payload func(i int) []byte) error {
	if len(subjects) == 0 {
		return nil
	}
	c := m.newCall(len(subjects))
	for i, s := range subjects {
		if err := m.nc.PublishMsg(&nats.Msg{Subject: s, Reply: c.replyTo(i), Data: payload(i)}); err != nil {
			c.close()
			return fmt.Errorf("nats: settle: %w", err)
		}
	}
	out := make([]*nats.Msg, len(subjects))
	if err := c.wait(ctx, settleTimeout, out); err != nil {
		return err
	}
	missing := 0
	for _, r := range out {
		if r == nil {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("nats: %d of %d acknowledgements not confirmed: %w", missing, len(subjects), errNoReply)
	}
	return nil
}

// settleTimeout bounds the wait for acknowledgement confirmations; a
// replicated consumer confirms after its followers stored the ack.
const settleTimeout = 5 * time.Second
