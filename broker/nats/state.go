package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/lease"
)

// State returns the checkpoint store of one adapter instance: the keys of
// namespace (such as "orders/source/in/") in the key/value bucket
// PREFIX_state, shared by every agent of the broker, so that the agent that
// takes a source over resumes from the checkpoint its last holder
// committed. Keys are stored as NAMESPACE.KEY, each part escaped (bytes
// other than letters, digits, - _ and / as =XX).
func (b *Broker) State(namespace string) adapters.State {
	return &kvState{b: b, ns: escapeKey(namespace)}
}

type kvState struct {
	b  *Broker
	ns string
}

var _ adapters.State = (*kvState)(nil)

func (s *kvState) kv(ctx context.Context) (jetstream.KeyValue, error) {
	return s.b.bucket(ctx, stateBucket(s.b.o.Prefix), 0)
}

func (s *kvState) key(k string) string { return s.ns + "." + escapeKey(k) }

func (s *kvState) Get(ctx context.Context, key string) ([]byte, bool, error) {
	kv, err := s.kv(ctx)
	if err != nil {
		return nil, false, err
	}
	var e jetstream.KeyValueEntry
	err = retryKV(ctx, func(ctx context.Context) (err error) {
		e, err = kv.Get(ctx, s.key(key))
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("nats state: get %q: %w", key, err)
	}
	return e.Value(), true, nil
}

// Put returns once the bucket's stream stored (and replicated) the value.
func (s *kvState) Put(ctx context.Context, key string, value []byte) error {
	kv, err := s.kv(ctx)
	if err != nil {
		return err
	}
	if err := retryKV(ctx, func(ctx context.Context) error {
		_, err := kv.Put(ctx, s.key(key), value)
		return err
	}); err != nil {
		return fmt.Errorf("nats state: put %q: %w", key, err)
	}
	return nil
}

func (s *kvState) Delete(ctx context.Context, key string) error {
	kv, err := s.kv(ctx)
	if err != nil {
		return err
	}
	if err := retryKV(ctx, func(ctx context.Context) error { return kv.Purge(ctx, s.key(key)) }); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("nats state: delete %q: %w", key, err)
	}
	return nil
}

func (s *kvState) List(ctx context.Context, prefix string) (map[string][]byte, error) {
	kv, err := s.kv(ctx)
	if err != nil {
		return nil, err
	}
	w, err := kv.Watch(ctx, s.ns+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("nats state: list: %w", err)
	}
	defer w.Stop()
	out := map[string][]byte{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("nats state: list: watcher stopped")
			}
			if e == nil { // the initial values are all in
				return out, nil
			}
			k, ok := unescapeKey(strings.TrimPrefix(e.Key(), s.ns+"."))
			if ok && strings.HasPrefix(k, prefix) {
				out[k] = e.Value()
			}
		}
	}
}

// kvAttempt bounds one attempt of a bucket operation. A request that
// reached a server just before it died gets no reply; without a bound per
// attempt, the caller (a source committing its checkpoint) would wait as
// long as its own context allows.
const kvAttempt = 2 * time.Second

// retryKV runs f until it succeeds, fails for a reason other than a lost
// request or a leader election, or ctx is done. Puts and deletes of a key
// are idempotent, so repeating them is safe.
func retryKV(ctx context.Context, f func(ctx context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, kvAttempt)
		err := f(actx)
		cancel()
		retry := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
		if err == nil || !retry || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Lease acquires the lease of one source of a pipeline: an entry of the
// bucket PREFIX_leases (keys PIPELINE.SOURCE, values naming the holder)
// whose entries expire Options.LeaseTTL after their last write. It blocks
// until the lease is held or ctx is done.
func (b *Broker) Lease(ctx context.Context, pipeline, source string) (*lease.Lease, error) {
	kv, err := b.leaseKV(ctx)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return lease.Acquire(ctx, kvLeases{kv}, escapeKey(pipeline)+"."+escapeKey(source),
		lease.Options{TTL: b.o.LeaseTTL, Holder: fmt.Sprintf("%s pid %d (%s)", host, os.Getpid(), b.nc.ConnectedServerName()), Logger: b.o.Logger})
}

// leaseKV returns the lease bucket, with its TTL set to Options.LeaseTTL.
func (b *Broker) leaseKV(ctx context.Context) (jetstream.KeyValue, error) {
	name := leaseBucket(b.o.Prefix)
	kv, err := b.bucket(ctx, name, b.o.LeaseTTL)
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("nats: bucket %s: %w", name, err)
	}
	if st.TTL() != b.o.LeaseTTL {
		cfg := jetstream.KeyValueConfig{Bucket: name, TTL: b.o.LeaseTTL, Replicas: b.o.Replicas, Description: "Sluice leases"}
		if b.o.Storage == "memory" {
			cfg.Storage = jetstream.MemoryStorage
		}
		if kv, err = b.js.UpdateKeyValue(ctx, cfg); err != nil {
			return nil, fmt.Errorf("nats: bucket %s: set lease_ttl: %w", name, err)
		}
		b.mu.Lock()
		b.buckets[name] = kv
		b.mu.Unlock()
	}
	return kv, nil
}

// kvLeases is a lease.Store on a key/value bucket with a TTL.
type kvLeases struct{ kv jetstream.KeyValue }

func (s kvLeases) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := s.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%w: %w", lease.ErrHeld, err)
	}
	return rev, err
}

func (s kvLeases) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	next, err := s.kv.Update(ctx, key, value, rev)
	var api *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)) {
		return 0, fmt.Errorf("%w: %w", lease.ErrLost, err)
	}
	return next, err
}

func (s kvLeases) Delete(ctx context.Context, key string, rev uint64) error {
	return s.kv.Delete(ctx, key, jetstream.LastRevision(rev))
}
