package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/testenv"
)

// One bad row (too long) and one duplicate key fail alone, with the
// server's error; the other rows commit.
func TestSinkBadRowsFailAlone(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY, code VARCHAR(5) NOT NULL, qty SMALLINT)`)
	mustExec(t, db, `INSERT INTO t VALUES (1000, 'old', 1)`)
	s := openSink(t, map[string]any{"dsn": dsn, "table": "t"})
	msgs := records(40, func(i int) adapters.Record {
		return adapters.Record{"id": int64(i), "code": "c" + fmt.Sprint(i), "qty": int64(i)}
	})
	msgs[7].Record["code"] = "much too long"
	msgs[23].Record["id"] = int64(1000)
	msgs[31].Record["qty"] = int64(1 << 20)
	msgs[35].Record["code"] = nil
	err := s.Write(context.Background(), msgs)
	var be *adapters.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a BatchError", err)
	}
	want := map[int]string{7: "Error 1406", 23: "Error 1062", 31: "Error 1264", 35: "Error 1048"}
	if len(be.Failed) != len(want) {
		t.Fatalf("failed messages %v, want %v", be.Failed, want)
	}
	for i, code := range want {
		e := be.Failed[i]
		if e == nil || !strings.Contains(e.Error(), code) {
			t.Fatalf("message %d failed with %v, want %s", i, e, code)
		}
		if k := adapters.KindOf(e); k != adapters.Permanent {
			t.Fatalf("message %d failed as %v, want permanent", i, k)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM t"); n != 37 {
		t.Fatalf("%d rows in the table, want 36 good ones and the old one", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM t WHERE id IN (7, 23, 31, 35)"); n != 0 {
		t.Fatalf("%d bad rows were written", n)
	}
}

func TestSinkModes(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE stock (
		site CHAR(3) NOT NULL, sku INT NOT NULL, qty INT NOT NULL DEFAULT 0, price DECIMAL(10,2), note VARCHAR(40),
		PRIMARY KEY (site, sku))`)
	ctx := context.Background()
	rec := func(site string, sku, qty int64, price string) adapters.Record {
		return adapters.Record{"site": site, "sku": sku, "qty": qty, "price": decimal.RequireFromString(price)}
	}
	base := map[string]any{"dsn": dsn, "table": "stock"}
	ins := openSink(t, with(base, "mode", "insert"))
	if err := ins.Write(ctx, []adapters.Message{
		{Record: rec("PAR", 1, 5, "1.50")}, {Record: rec("PAR", 2, 6, "2.50")}, {Record: rec("LYO", 1, 7, "3.50")},
	}); err != nil {
		t.Fatal(err)
	}

	// upsert: a replay changes nothing; a new value wins; in-batch order holds.
	up := openSink(t, with(base, "mode", "upsert"))
	batch := []adapters.Message{{Record: rec("PAR", 1, 50, "1.55")}, {Record: rec("PAR", 1, 51, "1.56")}, {Record: rec("NCE", 9, 1, "9.99")}}
	for range 2 {
		if err := up.Write(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM stock"); n != 4 {
		t.Fatalf("%d rows after upserts, want 4", n)
	}
	if q := count(t, db, "SELECT qty FROM stock WHERE site = 'PAR' AND sku = 1"); q != 51 {
		t.Fatalf("upserted qty %d, want the later 51", q)
	}

	// update through a columns mapping with expressions and meta; a
	// repeated key within the batch: the later message wins.
	upd := openSink(t, with(base, "mode", "update", "columns", map[string]any{
		"site": "record.s", "sku": "record.k", "qty": "record.q * 2", "note": "meta.source + ':' + string(record.k)",
	}))
	msgs := []adapters.Message{
		{Record: adapters.Record{"s": "PAR", "k": int64(2), "q": int64(10)}, Meta: map[string]string{"source": "erp"}},
		{Record: adapters.Record{"s": "PAR", "k": int64(2), "q": int64(11)}, Meta: map[string]string{"source": "erp"}},
		{Record: adapters.Record{"s": "XXX", "k": int64(404), "q": int64(1)}, Meta: map[string]string{"source": "erp"}},
	}
	if err := upd.Write(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	var qty int
	var note string
	if err := db.QueryRow("SELECT qty, note FROM stock WHERE site = 'PAR' AND sku = 2").Scan(&qty, &note); err != nil {
		t.Fatal(err)
	}
	if qty != 22 || note != "erp:2" {
		t.Fatalf("updated row = %d, %q; want 22, erp:2", qty, note)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM stock"); n != 4 {
		t.Fatalf("update inserted rows: %d", n)
	}

	// update without a key value fails that message alone.
	err := upd.Write(ctx, []adapters.Message{{Record: adapters.Record{"s": "PAR", "q": int64(1)}}, {Record: adapters.Record{"s": "LYO", "k": int64(1), "q": int64(4)}}})
	var be *adapters.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0] == nil || !strings.Contains(be.Failed[0].Error(), `key column "sku" is null`) {
		t.Fatalf("Write = %v, want message 0 failed for its key", err)
	}
	if q := count(t, db, "SELECT qty FROM stock WHERE site = 'LYO' AND sku = 1"); q != 8 {
		t.Fatalf("the good message of the batch was not written: qty %d", q)
	}

	del := openSink(t, with(base, "mode", "delete"))
	if err := del.Write(ctx, []adapters.Message{{Record: rec("PAR", 1, 0, "0")}, {Record: rec("NCE", 9, 0, "0")}, {Record: rec("ZZZ", 1, 0, "0")}}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM stock"); n != 2 {
		t.Fatalf("%d rows after delete, want 2", n)
	}
}

// Records with different fields in one batch, and unknown_fields.
func TestSinkRecordShapes(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10) DEFAULT 'da', b INT DEFAULT 7)`)
	ctx := context.Background()
	s := openSink(t, map[string]any{"dsn": dsn, "table": "t"})
	msgs := []adapters.Message{
		{Record: adapters.Record{"id": int64(1), "a": "x"}},
		{Record: adapters.Record{"id": int64(2), "b": int64(2)}},
		{Record: adapters.Record{"id": int64(3), "a": "y", "b": int64(3)}},
		{Record: adapters.Record{"id": int64(4), "a": "z", "extra": true}},
	}
	err := s.Write(ctx, msgs)
	var be *adapters.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || !strings.Contains(be.Failed[3].Error(), "Unknown column 'extra'") {
		t.Fatalf("Write = %v, want message 3 failed for its unknown column", err)
	}
	var got []string
	rows, err := db.Query("SELECT CONCAT_WS('/', id, a, b) FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		got = append(got, s)
	}
	if strings.Join(got, " ") != "1/x/7 2/da/2 3/y/3" {
		t.Fatalf("rows = %v", got)
	}
	ig := openSink(t, map[string]any{"dsn": dsn, "table": "t", "unknown_fields": "ignore"})
	if err := ig.Write(ctx, msgs[3:]); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM t WHERE id = 4 AND a = 'z'"); n != 1 {
		t.Fatal("record with an ignored field not written")
	}
}

// Statements are split to stay under max_statement_size; all in one
// transaction.
func TestSinkSplitsLargeBatches(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY, body TEXT)`)
	s := openSink(t, map[string]any{"dsn": dsn, "table": "t", "max_statement_size": "16KiB"})
	body := strings.Repeat("é'\\", 300)
	msgs := records(500, func(i int) adapters.Record { return adapters.Record{"id": int64(i), "body": body} })
	rows := s.rows(msgs, s.schema, adapters.NewBatchError(0))
	if n := len(s.statements(s.schema, rows)); n < 20 {
		t.Fatalf("%d statements for 500 rows of 2 KB under 16 KiB", n)
	}
	if err := s.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM t WHERE body = ?", body); n != 500 {
		t.Fatalf("%d rows intact, want 500", n)
	}
}

// A concurrent writer that deadlocks with the sink: the sink is chosen as
// the victim (it changed fewer rows). Without retries the failure is
// transient; with retries the write succeeds; the data ends correct.
func TestSinkDeadlock(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE acct (id INT PRIMARY KEY, bal INT NOT NULL)`)
	mustExec(t, db, `CREATE TABLE heavy (id INT PRIMARY KEY, n INT)`)
	mustExec(t, db, `INSERT INTO acct VALUES (1, 0), (2, 0)`)
	mustExec(t, db, `INSERT INTO heavy SELECT seq, 0 FROM seq_1_to_200`)
	ctx := context.Background()
	batch := []adapters.Message{
		{Record: adapters.Record{"id": int64(1), "bal": int64(100)}},
		{Record: adapters.Record{"id": int64(2), "bal": int64(200)}},
	}
	for _, retries := range []int{0, 3} {
		t.Run(fmt.Sprint("retries=", retries), func(t *testing.T) {
			// Rows differ from the batch: an upsert that changes nothing
			// may not lock (MariaDB), and then there is no deadlock.
			mustExec(t, db, "UPDATE acct SET bal = 0")
			logs := &logBuffer{}
			s := openSink(t, map[string]any{"dsn": dsn + "?innodb_lock_wait_timeout=10", "table": "acct", "mode": "upsert", "deadlock_retries": retries}, withLog(logs))
			other, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			mustConn := func(q string) {
				if _, err := other.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			mustConn("BEGIN")
			mustConn("UPDATE heavy SET n = n + 1") // weight: the sink is the cheaper victim
			mustConn("UPDATE acct SET bal = -2 WHERE id = 2")
			done := make(chan error, 1)
			go func() { done <- s.Write(ctx, batch) }()
			waitFor(t, "the sink to wait for row 2", func() bool {
				select {
				case err := <-done:
					t.Fatalf("Write returned while row 2 was locked: %v", err)
				default:
				}
				// Other tests may share the server: look at this database's
				// sessions only. (INNODB_TRX is a cache, sometimes stale.)
				return count(t, db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'INSERT INTO `acct`%' AND STATE = 'Update'") > 0
			})
			// The other transaction now wants row 1, which the sink holds.
			_, cerr := other.ExecContext(ctx, "UPDATE acct SET bal = -1 WHERE id = 1")
			if cerr != nil {
				t.Fatalf("the heavier transaction was the victim: %v", cerr)
			}
			mustConn("COMMIT")
			werr := <-done
			if retries == 0 {
				if werr == nil || adapters.KindOf(werr) != adapters.Transient || !strings.Contains(werr.Error(), "Deadlock") {
					t.Fatalf("Write = %v (%v), want a transient deadlock", werr, adapters.KindOf(werr))
				}
				// The engine retries the batch.
				werr = s.Write(ctx, batch)
			}
			if werr != nil {
				t.Fatalf("Write = %v", werr)
			}
			if retries > 0 && !strings.Contains(logs.String(), "deadlock; retrying") {
				var typ, name, status string
				_ = db.QueryRow("SHOW ENGINE INNODB STATUS").Scan(&typ, &name, &status)
				if i := strings.Index(status, "LATEST DETECTED DEADLOCK"); i >= 0 {
					status = status[i:min(len(status), i+3000)]
				}
				t.Fatalf("no deadlock happened: %s\n%s", logs, status)
			}
			if got := count(t, db, "SELECT SUM(bal) FROM acct"); got != 300 {
				t.Fatalf("balances sum to %d, want 300", got)
			}
		})
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
