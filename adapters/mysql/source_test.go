package mysql

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/internal/testenv"
)

// Rows sharing one updated_at, inserted while the source runs, are each
// read exactly once.
func TestSourceSharedTimestampsWhileInserting(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE events (
		id BIGINT AUTO_INCREMENT PRIMARY KEY,
		updated_at DATETIME(6) NOT NULL,
		v VARCHAR(20) NOT NULL,
		KEY k_upd (updated_at, id))`)
	const total, perStamp, chunk = 2000, 700, 50
	s := openSource(t, map[string]any{
		"dsn": dsn, "table": "events", "tracking_columns": []any{"updated_at", "id"},
		"batch_size": 37, "interval": "5ms",
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
		for i := 0; i < total; i += chunk {
			q := "INSERT INTO events (updated_at, v) VALUES "
			var args []any
			for j := i; j < i+chunk; j++ {
				if j > i {
					q += ","
				}
				q += "(?, ?)"
				args = append(args, base.Add(time.Duration(j/perStamp)*time.Second), fmt.Sprint("row", j))
			}
			if _, err := db.Exec(q, args...); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	seen := map[int64]int{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < total && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		b, err := s.Read(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range b.Messages {
			seen[m.Record["id"].(int64)]++
		}
		if err := b.Ack(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	// Anything more would be a repeat.
	extra := readAll(t, s, 100*time.Millisecond)
	if len(extra) != 0 {
		t.Fatalf("%d rows read again", len(extra))
	}
	if len(seen) != total {
		t.Fatalf("read %d distinct rows, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d read %d times", id, n)
		}
	}
}

// A new source on the same State resumes after the last acknowledged batch;
// on_consume marks exactly the acknowledged rows.
func TestSourceRestartResumesAtWatermark(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE orders (id INT PRIMARY KEY, exported TINYINT NOT NULL DEFAULT 0)`)
	mustExec(t, db, `INSERT INTO orders (id) SELECT seq FROM seq_1_to_250`)
	dir := t.TempDir()
	conf := map[string]any{
		"dsn": dsn, "table": "orders", "tracking_columns": "id", "batch_size": 100,
		"on_consume": "UPDATE orders SET exported = 1 WHERE id = :id",
	}

	store, err := statestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s1 := openSource(t, conf, withState(store.Namespace("p/src/")))
	ctx := context.Background()
	b1, err := s1.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := s1.Read(ctx) // read ahead, never acknowledged: a crash
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(b2.Messages); n != 100 {
		t.Fatalf("second batch has %d rows", n)
	}
	if got := count(t, db, "SELECT COUNT(*) FROM orders WHERE exported = 1"); got != 100 {
		t.Fatalf("%d rows marked after the first ack, want 100", got)
	}
	if got := count(t, db, "SELECT MAX(id) FROM orders WHERE exported = 1"); got != 100 {
		t.Fatalf("last marked row %d, want 100", got)
	}
	_ = s1.Close(ctx)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store, err = statestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s2 := openSource(t, conf, withState(store.Namespace("p/src/")), withOnce())
	msgs := readAll(t, s2, 5*time.Second)
	if len(msgs) != 150 {
		t.Fatalf("resumed source read %d rows, want 150", len(msgs))
	}
	for i, m := range msgs {
		if id := m.Record["id"].(int64); id != int64(101+i) {
			t.Fatalf("row %d has id %d, want %d", i, id, 101+i)
		}
	}
	if msgs[0].ID != b2.Messages[0].ID {
		t.Fatalf("message ID changed across the restart: %s then %s", b2.Messages[0].ID, msgs[0].ID)
	}
	if got := count(t, db, "SELECT COUNT(*) FROM orders WHERE exported = 1"); got != 250 {
		t.Fatalf("%d rows marked at the end, want 250", got)
	}
}

// A failed ack rewinds to the committed watermark; acks of batches read
// after the failed one commit nothing.
func TestSourceFailedAckRewinds(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY)`)
	mustExec(t, db, `INSERT INTO t SELECT seq FROM seq_1_to_40`)
	st := statestore.Memory()
	s := openSource(t, map[string]any{"dsn": dsn, "table": "t", "tracking_columns": "id", "batch_size": 10}, withState(st))
	ctx := context.Background()
	var bs []adapters.Batch
	for range 3 {
		b, err := s.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	if err := bs[0].Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := bs[1].Ack(ctx, errors.New("queue full")); err != nil {
		t.Fatal(err)
	}
	if err := bs[2].Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	raw, _, _ := st.Get(ctx, stateKey)
	w, err := decodeWatermark(raw, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	if w[0].Text != "10" {
		t.Fatalf("committed watermark %v, want 10", w.texts())
	}
	b, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first := b.Messages[0].Record["id"].(int64); first != 11 {
		t.Fatalf("after the rewind the source read from %d, want 11", first)
	}
}

func TestSourceInitialPositions(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY, at DATETIME NOT NULL, KEY (at, id))`)
	mustExec(t, db, `INSERT INTO t SELECT seq, '2024-01-01' + INTERVAL seq DAY FROM seq_1_to_10`)
	cases := []struct {
		name    string
		initial any
		want    int
	}{
		{"beginning", "beginning", 10},
		{"now", "now", 0},
		{"mapping", map[string]any{"at": "2024-01-05 00:00:00", "id": 4}, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openSource(t, map[string]any{"dsn": dsn, "table": "t", "tracking_columns": []any{"at", "id"}, "initial": c.initial}, withOnce())
			if got := len(readAll(t, s, 5*time.Second)); got != c.want {
				t.Fatalf("read %d rows, want %d", got, c.want)
			}
		})
	}
}

// run --once reads up to the last row present at start.
func TestSourceOnceStopsAtStartMax(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY)`)
	mustExec(t, db, `INSERT INTO t SELECT seq FROM seq_1_to_25`)
	s := openSource(t, map[string]any{"dsn": dsn, "table": "t", "tracking_columns": "id", "batch_size": 10}, withOnce())
	ctx := context.Background()
	b, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Ack(ctx, nil)
	mustExec(t, db, `INSERT INTO t SELECT seq FROM seq_26_to_60`)
	rest := readAll(t, s, 5*time.Second)
	if len(rest) != 15 {
		t.Fatalf("read %d more rows, want the 15 present at start", len(rest))
	}
	if _, err := s.Read(ctx); !errors.Is(err, adapters.ErrEndOfInput) {
		t.Fatalf("Read after the end = %v, want ErrEndOfInput", err)
	}
}

func TestSourceCustomQuery(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(20))`)
	mustExec(t, db, `CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, amount DECIMAL(12,2), updated_at TIMESTAMP(3) NOT NULL)`)
	mustExec(t, db, `INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace')`)
	mustExec(t, db, `INSERT INTO orders SELECT seq, 1 + seq % 2, seq * 1.25, '2024-06-01 10:00:00.500' FROM seq_1_to_30`)
	s := openSource(t, map[string]any{
		"dsn": dsn,
		"query": `SELECT o.id, o.updated_at, o.amount, c.name AS customer
			FROM orders o JOIN customers c ON c.id = o.customer_id
			WHERE o.updated_at > :updated_at OR (o.updated_at = :updated_at AND o.id > :id) -- keyset
			ORDER BY o.updated_at, o.id LIMIT :batch_size`,
		"tracking_columns": []any{"updated_at", "id"},
		"initial":          map[string]any{"updated_at": "1970-01-01 00:00:01", "id": 0},
		"batch_size":       7,
	}, withOnce())
	msgs := readAll(t, s, 5*time.Second)
	if len(msgs) != 30 {
		t.Fatalf("read %d rows, want 30", len(msgs))
	}
	m := msgs[2]
	if m.Record["customer"] != "Grace" || m.Record["amount"].(fmt.Stringer).String() != "3.75" {
		t.Fatalf("row 3 = %v", m.Record)
	}
	want := time.Date(2024, 6, 1, 10, 0, 0, 500e6, time.UTC)
	if at := m.Record["updated_at"].(time.Time); !at.Equal(want) {
		t.Fatalf("updated_at = %v, want %v", at, want)
	}
}

// lag holds back rows newer than the server clock minus lag.
func TestSourceLag(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY, at DATETIME(6) NOT NULL)`)
	mustExec(t, db, `INSERT INTO t VALUES (1, UTC_TIMESTAMP(6) - INTERVAL 1 HOUR), (2, UTC_TIMESTAMP(6) - INTERVAL 2 MINUTE), (3, UTC_TIMESTAMP(6))`)
	s := openSource(t, map[string]any{"dsn": dsn, "table": "t", "tracking_columns": []any{"at", "id"}, "lag": "1m"}, withOnce())
	msgs := readAll(t, s, 5*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("read %d rows, want the 2 older than a minute", len(msgs))
	}
	if lag := s.Lag(); lag.Messages != 0 || lag.Age != 0 {
		t.Fatalf("Lag() = %+v after catching up, want none", lag)
	}
}

// Lag reports the age of the last row read while the source is behind.
func TestSourceLagReport(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY, at TIMESTAMP NOT NULL)`)
	mustExec(t, db, `INSERT INTO t SELECT seq, UTC_TIMESTAMP() - INTERVAL 1 HOUR FROM seq_1_to_20`)
	s := openSource(t, map[string]any{"dsn": dsn, "table": "t", "tracking_columns": []any{"at", "id"}, "batch_size": 5})
	if _, err := s.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lag := s.Lag(); lag.Messages != -1 || lag.Age < 59*time.Minute || lag.Age > 2*time.Hour {
		t.Fatalf("Lag() = %+v, want an age of about an hour", lag)
	}
}
