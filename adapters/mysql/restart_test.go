package mysql

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/testenv"
)

// The server is killed (SIGKILL) and restarted while the sink loads and
// while the source reads: nothing is lost, nothing doubled (upsert).
func TestServerRestartMidLoad(t *testing.T) {
	srv := testenv.StartMariaDB(t)
	dsn := srv.CreateDatabase(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE dst (
		id BIGINT AUTO_INCREMENT PRIMARY KEY,
		order_no INT NOT NULL, amount DECIMAL(12,2) NOT NULL, attempt INT NOT NULL,
		UNIQUE KEY (order_no))`)
	const total, batch = 3000, 100
	ctx := context.Background()
	conn := map[string]any{"dsn": dsn, "connect_timeout": "1s", "io_timeout": "5s"}
	sink := openSink(t, with(conn, "table", "dst", "mode", "upsert", "key", "order_no"))

	var written atomic.Int64
	restarted := make(chan error, 1)
	go func() {
		for written.Load() < 10*batch {
			time.Sleep(time.Millisecond)
		}
		if err := srv.Kill(); err != nil {
			restarted <- err
			return
		}
		time.Sleep(300 * time.Millisecond)
		restarted <- srv.Start()
	}()
	failures := map[adapters.Kind]int{}
	for start := 0; start < total; start += batch {
		msgs := records(batch, func(i int) adapters.Record {
			n := start + i
			return adapters.Record{"order_no": int64(n), "amount": decimal.New(int64(n), -2), "attempt": int64(1)}
		})
		pending := msgs
		for attempt := 1; len(pending) > 0; attempt++ {
			if attempt > 200 {
				t.Fatalf("batch at %d not written after 200 attempts", start)
			}
			err := sink.Write(ctx, pending)
			if err == nil {
				break
			}
			var be *adapters.BatchError
			if !errors.As(err, &be) {
				be = &adapters.BatchError{Failed: map[int]error{}}
				for i := range pending {
					be.Failed[i] = err
				}
			}
			var next []adapters.Message
			for i, e := range be.Failed {
				k := adapters.KindOf(e)
				failures[k]++
				if k == adapters.Permanent {
					t.Fatalf("message %d failed permanently: %v", i, e)
				}
				m := pending[i]
				m.Record = adapters.Record{"order_no": m.Record["order_no"], "amount": m.Record["amount"], "attempt": int64(attempt + 1)}
				next = append(next, m)
			}
			pending = next
			time.Sleep(20 * time.Millisecond)
		}
		written.Add(batch)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if failures[adapters.Transient]+failures[adapters.Unavailable] == 0 {
		t.Fatal("no write failed: the server was not killed during the load")
	}
	t.Logf("failures by kind during the load: %v", failures)
	if n := count(t, db, "SELECT COUNT(*) FROM dst"); n != total {
		t.Fatalf("%d rows, want %d", n, total)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM dst WHERE amount * 100 <> order_no"); n != 0 {
		t.Fatalf("%d rows with a wrong amount", n)
	}

	// The source reads the table while the server is killed again.
	src := openSource(t, with(conn, "table", "dst", "tracking_columns", "order_no", "batch_size", batch), withOnce())
	seen := map[int64]int{}
	killedAt := 0
	for reads := 0; ; reads++ {
		if reads == 5 {
			if err := srv.Kill(); err != nil {
				t.Fatal(err)
			}
			go func() {
				time.Sleep(300 * time.Millisecond)
				restarted <- srv.Start()
			}()
			killedAt = len(seen)
		}
		b, err := src.Read(ctx)
		if errors.Is(err, adapters.ErrEndOfInput) {
			break
		}
		if errors.Is(err, adapters.ErrNotConnected) {
			reconnect(t, src)
			continue
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		for _, m := range b.Messages {
			seen[m.Record["order_no"].(int64)]++
		}
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if killedAt == 0 || killedAt == total {
		t.Fatalf("the kill came at %d rows, not during the read", killedAt)
	}
	if len(seen) != total {
		t.Fatalf("read %d distinct rows, want %d", len(seen), total)
	}
	for n, c := range seen {
		if c != 1 {
			t.Fatalf("row %d read %d times", n, c)
		}
	}
}

// reconnect calls Connect with backoff, as the engine does.
func reconnect(t *testing.T, s adapters.Source) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := s.Connect(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reconnect: %v", err)
		}
		if k := adapters.KindOf(err); k != adapters.Unavailable {
			t.Logf("reconnect failed as %v: %v", k, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
