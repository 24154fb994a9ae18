package broker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// ReplayGroup is the consumer group that `sluice queues replay` and the admin
// API use to take messages out of a dead-letter queue. Every dead-letter
// queue has it, so dead letters stay until they are replayed or purged.
const ReplayGroup = "_replay"

// DeadLetter returns the message that goes to a dead-letter queue for m,
// which consumer group failed after attempts deliveries because of cause.
// first is when the message failed the first time (zero: now).
func DeadLetter(m adapters.Message, queue, group string, cause error, attempts int, first time.Time) adapters.Message {
	now := time.Now().UTC()
	if first.IsZero() {
		first = now
	}
	out := m
	out.Meta = m.CloneMeta()
	if cause != nil {
		out.Meta[adapters.MetaError] = cause.Error()
	}
	out.Meta[adapters.MetaAttempts] = strconv.Itoa(attempts)
	out.Meta[adapters.MetaQueue] = queue
	out.Meta[adapters.MetaGroup] = group
	if _, ok := out.Meta[adapters.MetaFirstErr]; !ok {
		out.Meta[adapters.MetaFirstErr] = first.Format(time.RFC3339Nano)
	}
	out.Meta[adapters.MetaLastErr] = now.Format(time.RFC3339Nano)
	out.Attempt = 0
	out.Err = nil
	return out
}

// Revive returns a dead-lettered message as it goes back to its queue: the
// failure metadata is removed, and the message is marked for the group that
// failed it, so other groups of the queue, which delivered it, skip it.
func Revive(m adapters.Message) adapters.Message {
	out := m
	out.Meta = m.CloneMeta()
	group := out.Meta[adapters.MetaGroup]
	for _, k := range []string{adapters.MetaError, adapters.MetaAttempts, adapters.MetaQueue, adapters.MetaGroup, adapters.MetaFirstErr, adapters.MetaLastErr} {
		delete(out.Meta, k)
	}
	if group != "" {
		out.Meta[OnlyGroupMeta] = group
	}
	out.Attempt = 0
	return out
}

// ForGroup reports whether a message is meant for group: true unless it was
// replayed for another group.
func ForGroup(m *adapters.Message, group string) bool {
	only, ok := m.Meta[OnlyGroupMeta]
	return !ok || only == group
}

// Replay moves up to limit messages (all when limit <= 0) from a dead-letter
// queue back to target and returns how many it moved. Each message is
// enqueued in target before it is acked in the dead-letter queue, so a crash
// in between duplicates it rather than losing it.
func Replay(ctx context.Context, dlq, target Queue, limit int) (int, error) {
	c, err := dlq.Consumer(ReplayGroup)
	if err != nil {
		return 0, err
	}
	moved := 0
	for limit <= 0 || moved < limit {
		if dlq.Stats().Messages == 0 {
			break
		}
		n := 256
		if limit > 0 && limit-moved < n {
			n = limit - moved
		}
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		ds, err := c.Receive(rctx, n)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return moved, ctx.Err()
			}
			break // nothing deliverable now
		}
		msgs := make([]adapters.Message, len(ds))
		for i, d := range ds {
			msgs[i] = Revive(d.Message)
		}
		if err := target.Enqueue(ctx, msgs); err != nil {
			_ = c.Release(ctx, ds)
			return moved, fmt.Errorf("replay into %s: %w", target.Name(), err)
		}
		if err := c.Ack(ctx, ds); err != nil {
			return moved, fmt.Errorf("replay: ack in %s: %w", dlq.Name(), err)
		}
		moved += len(ds)
	}
	return moved, nil
}
