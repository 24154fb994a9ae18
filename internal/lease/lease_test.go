package lease

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memStore is a Store whose entries never expire; tests take leases away
// by hand.
type memStore struct {
	mu      sync.Mutex
	rev     uint64
	keys    map[string]uint64
	failing bool // Update fails with a transient error
	deleted int
}

func (m *memStore) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[key]; ok {
		return 0, ErrHeld
	}
	m.rev++
	m.keys[key] = m.rev
	return m.rev, nil
}

func (m *memStore) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing {
		return 0, errors.New("connection lost")
	}
	if m.keys[key] != rev {
		return 0, ErrLost
	}
	m.rev++
	m.keys[key] = m.rev
	return m.rev, nil
}

func (m *memStore) Delete(ctx context.Context, key string, rev uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys[key] == rev {
		delete(m.keys, key)
		m.deleted++
	}
	return nil
}

func (m *memStore) set(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f()
}

func lost(l *Lease, within time.Duration) bool {
	select {
	case <-l.Lost():
		return true
	case <-time.After(within):
		return false
	}
}

func TestLease(t *testing.T) {
	const ttl = 150 * time.Millisecond
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		takeAway func(m *memStore)
	}{
		{"renewal refused", func(m *memStore) { m.keys["k"] = 999 }},
		{"renewals fail", func(m *memStore) { m.failing = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &memStore{keys: map[string]uint64{}}
			l, err := Acquire(ctx, m, "k", Options{TTL: ttl, Holder: "a"})
			if err != nil {
				t.Fatal(err)
			}
			if lost(l, 2*ttl) {
				t.Fatal("a renewed lease was lost")
			}
			wctx, cancel := context.WithTimeout(ctx, ttl)
			if _, err := Acquire(wctx, m, "k", Options{TTL: ttl}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("second holder: %v", err)
			}
			cancel()
			m.set(func() { tc.takeAway(m) })
			if !lost(l, ttl) {
				t.Fatal("the loss was not noticed within the TTL")
			}
			if err := l.Release(ctx); err != nil || m.deleted != 0 {
				t.Fatalf("release after a loss: %v, deleted %d", err, m.deleted)
			}
		})
	}
	t.Run("release", func(t *testing.T) {
		m := &memStore{keys: map[string]uint64{}}
		l, err := Acquire(ctx, m, "k", Options{TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil || m.deleted != 1 {
			t.Fatalf("second release: %v, deleted %d", err, m.deleted)
		}
		if lost(l, 10*time.Millisecond) {
			t.Fatal("a released lease reported lost")
		}
		if _, err := Acquire(ctx, m, "k", Options{TTL: ttl}); err != nil {
			t.Fatalf("acquire after release: %v", err)
		}
	})
}
