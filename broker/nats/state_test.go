package natsbroker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
)

func TestStateShared(t *testing.T) {
	o := testOptions(t, testenv.NATS(t), testenv.NATSPrefix(t))
	a, b := connect(t, o), connect(t, o)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, sb := a.State("p/source/in/"), b.State("p/source/in/")
	other := a.State("p/source/other/")
	keys := map[string]string{"offset:/var/spool/a.csv": "10", "": "empty key", "x.y z=1": "dots", "é/ü": "utf-8"}
	for k, v := range keys {
		if err := sa.Put(ctx, k, []byte(v)); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
	if err := other.Put(ctx, "offset:/var/spool/a.csv", []byte("99")); err != nil {
		t.Fatal(err)
	}
	for k, v := range keys {
		got, ok, err := sb.Get(ctx, k)
		if err != nil || !ok || string(got) != v {
			t.Fatalf("get %q from the other agent: %q %v %v", k, got, ok, err)
		}
	}
	l, err := sb.List(ctx, "offset:")
	if err != nil || len(l) != 1 || string(l["offset:/var/spool/a.csv"]) != "10" {
		t.Fatalf("list offset: %v %v", l, err)
	}
	if l, err := sb.List(ctx, ""); err != nil || len(l) != len(keys) {
		t.Fatalf("list all: %v %v", l, err)
	}
	if err := sb.Delete(ctx, "x.y z=1"); err != nil {
		t.Fatal(err)
	}
	if err := sb.Delete(ctx, "never written"); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
	if _, ok, err := sa.Get(ctx, "x.y z=1"); ok || err != nil {
		t.Fatalf("deleted key: %v %v", ok, err)
	}
	if _, ok, _ := sa.Get(ctx, "missing"); ok {
		t.Fatal("missing key found")
	}
}

func TestLeaseOneHolderAndTakeOver(t *testing.T) {
	o := testOptions(t, testenv.NATS(t), testenv.NATSPrefix(t))
	o.LeaseTTL = time.Second
	a, b := connect(t, o), connect(t, o)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	la, err := a.Lease(ctx, "p", "in")
	if err != nil {
		t.Fatal(err)
	}
	// b waits while a holds and renews it, well past the TTL
	wctx, wcancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	if _, err := b.Lease(wctx, "p", "in"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second holder: want to wait, got %v", err)
	}
	wcancel()
	select {
	case <-la.Lost():
		t.Fatal("renewed lease reported lost")
	default:
	}
	// a released: b takes it at once
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	lb, err := b.Lease(ctx, "p", "in")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("took %v to take a released lease", d)
	}
	// b dies (its connection drops, nothing is released): a takes over
	// within the TTL, and b learns it lost the lease
	died := time.Now()
	b.Conn().Close()
	la2, err := a.Lease(ctx, "p", "in")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(died); d > o.LeaseTTL+300*time.Millisecond {
		t.Fatalf("take-over after %v, TTL %v", d, o.LeaseTTL)
	}
	select {
	case <-lb.Lost():
	case <-time.After(o.LeaseTTL):
		t.Fatal("the dead holder never noticed its loss")
	}
	if err := la2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := la2.Release(ctx); err != nil {
		t.Fatalf("second release: %v", err)
	}
	a.Close()
}
