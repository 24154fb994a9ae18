// Package lease implements leases over a key/value store whose entries
// expire a fixed time (the TTL) after their last write: exactly one holder
// at a time, renewed periodically, taken over by a waiting candidate within
// the TTL when the holder dies.
//
// A candidate creates the key (which fails while another holds it) and
// retries every TTL/5. The holder rewrites the key every TTL/3, each write
// conditional on the revision of its previous one. It gives the lease up as
// lost when a renewal is refused (the key expired and another took it) or
// when no renewal succeeded for 2/3 of the TTL since the last good one was
// sent: the store's copy lives until at least that send plus the TTL, so the
// holder stops with a third of the TTL to spare before anyone else can
// start.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Store is the key/value store leases live in. Its entries must expire TTL
// after their last write.
type Store interface {
	// Create stores value under key when the key does not exist (or was
	// deleted or expired) and returns the new revision; when it exists it
	// fails with an error wrapping ErrHeld.
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	// Update stores value when key's revision is still rev and returns the
	// new revision; when it is not (or the key is gone) it fails with an
	// error wrapping ErrLost.
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	// Delete deletes key when its revision is still rev.
	Delete(ctx context.Context, key string, rev uint64) error
}

// Errors a Store reports.
var (
	ErrHeld = errors.New("lease held by another holder")
	ErrLost = errors.New("lease lost")
)

// Options tune leases.
type Options struct {
	// TTL is the store's expiry time; it is required.
	TTL time.Duration
	// Holder names this holder in the store (for operators): host and pid.
	Holder string
	// Logger receives renewal problems; nil discards them.
	Logger *slog.Logger
}

// Lease is a held lease.
type Lease struct {
	st  Store
	key string

	lost     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu  sync.Mutex
	rev uint64
}

// Acquire blocks until it holds the lease called key, or ctx is done.
func Acquire(ctx context.Context, st Store, key string, o Options) (*Lease, error) {
	if o.TTL <= 0 {
		return nil, errors.New("lease: TTL must be positive")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	poll := o.TTL / 5
	for {
		sent := time.Now()
		rev, err := st.Create(ctx, key, []byte(o.Holder))
		if err == nil {
			l := &Lease{st: st, key: key, rev: rev, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
			go l.renew(o, sent)
			return l, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, ErrHeld) {
			o.Logger.Warn("lease: acquire failed; retrying", "lease", key, "error", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Lost is closed when the lease is lost.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

func (l *Lease) renew(o Options, lastGood time.Time) {
	defer close(l.done)
	every := o.TTL / 3
	retry := max(o.TTL/20, time.Millisecond)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), o.TTL/3)
		l.mu.Lock()
		rev := l.rev
		l.mu.Unlock()
		next, err := l.st.Update(ctx, l.key, []byte(o.Holder), rev)
		cancel()
		switch {
		case err == nil:
			l.mu.Lock()
			l.rev = next
			l.mu.Unlock()
			lastGood = sent
			t.Reset(every)
		case errors.Is(err, ErrLost) || time.Since(lastGood) >= o.TTL*2/3:
			o.Logger.Warn("lease: lost", "lease", l.key, "error", err)
			close(l.lost)
			return
		default:
			o.Logger.Warn("lease: renewal failed; retrying", "lease", l.key, "error", err)
			t.Reset(retry)
		}
	}
}

// Release stops renewing and deletes the lease, so that a candidate takes
// it at once. It is idempotent; after a loss it only stops.
func (l *Lease) Release(ctx context.Context) error {
	first := false
	l.stopOnce.Do(func() {
		close(l.stop)
		first = true
	})
	<-l.done
	if !first {
		return nil
	}
	select {
	case <-l.lost:
		return nil
	default:
	}
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if err := l.st.Delete(ctx, l.key, rev); err != nil {
		return fmt.Errorf("lease %s: release: %w", l.key, err)
	}
	return nil
}
