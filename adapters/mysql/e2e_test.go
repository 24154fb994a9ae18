package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
)

var binary struct {
	once sync.Once
	path string
	err  error
}

// sluiceBinary builds ./cmd/sluice once per test process.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-mysql-e2e")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "sluice")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binary.path, "github.com/sluicehq/sluice/cmd/sluice").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build ./cmd/sluice: %w\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

const e2ePipeline = `pipelines:
  copy:
    sources:
      - name: orders
        type: mysql
        dsn: ${SRC_DSN}
        table: orders
        tracking_columns: [updated_at, id]
        batch_size: 100
        interval: 100ms
    queues:
      orders: {}
    sinks:
      - name: copy
        type: mysql
        dsn: ${DST_DSN}
        table: orders_copy
        mode: upsert
        batch_size: 250
`

// sluice run --once, the real binary, mysql source → disk queue → mysql
// sink; a second run carries only the rows added since.
func TestBinaryRunOnce(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	for _, tbl := range []string{"orders", "orders_copy"} {
		mustExec(t, db, `CREATE TABLE `+tbl+` (
			id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, amount DECIMAL(14,4) NOT NULL,
			note VARCHAR(40), doc JSON, KEY (updated_at, id))`)
	}
	mustExec(t, db, `INSERT INTO orders SELECT seq, '2024-05-01' + INTERVAL (seq DIV 200) MINUTE, seq / 7, CONCAT('n', seq),
		JSON_OBJECT('seq', seq, 'tags', JSON_ARRAY('a', seq % 3)) FROM seq_1_to_1000`)

	bin := sluiceBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfgFile, []byte(e2ePipeline), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, "run", "--once", "-c", cfgFile, "--data-dir", filepath.Join(dir, "data"))
		cmd.Env = append(os.Environ(), "SRC_DSN="+dsn, "DST_DSN="+dsn)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sluice run --once: %v\n%s", err, out)
		}
		return string(out)
	}
	same := func(what string) {
		t.Helper()
		n := count(t, db, `SELECT COUNT(*) FROM orders o JOIN orders_copy c USING (id)
			WHERE o.updated_at = c.updated_at AND o.amount = c.amount AND o.note <=> c.note AND JSON_EQUALS(o.doc, c.doc)`)
		if want := count(t, db, "SELECT COUNT(*) FROM orders"); n != want || count(t, db, "SELECT COUNT(*) FROM orders_copy") != want {
			t.Fatalf("%s: %d identical rows, want %d", what, n, want)
		}
	}
	out := run()
	same("first run")
	if strings.Contains(out, "level=ERROR") {
		t.Fatalf("errors logged:\n%s", out)
	}

	// The second run starts at the stored watermark: rows copied before and
	// deleted from the copy stay deleted.
	mustExec(t, db, `DELETE FROM orders_copy WHERE id <= 10`)
	mustExec(t, db, `INSERT INTO orders SELECT seq, '2024-05-01' + INTERVAL (seq DIV 200) MINUTE, seq / 7, NULL, NULL FROM seq_1001_to_1050`)
	run()
	if n := count(t, db, "SELECT COUNT(*) FROM orders_copy"); n != 1040 {
		t.Fatalf("%d rows after the second run, want 1040 (990 kept + 50 new)", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM orders_copy WHERE id <= 10"); n != 0 {
		t.Fatal("the second run read from the beginning again")
	}
}

// The examples run as their READMEs say, against a fresh database.
func TestExamples(t *testing.T) {
	bin := sluiceBinary(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, dir, example, dsn string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "run", "--once", "-c", filepath.Join(root, "examples", example, "pipeline.yaml"), "--data-dir", filepath.Join(dir, "data"))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "MYSQL_DSN="+dsn, "SOURCE_DSN="+dsn, "TARGET_DSN="+dsn)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sluice run --once: %v\n%s", err, out)
		}
		return string(out)
	}
	schema := func(t *testing.T, example string) (string, *sql.DB) {
		dsn := testenv.MariaDB(t)
		db := testDB(t, dsn)
		b, err := os.ReadFile(filepath.Join(root, "examples", example, "schema.sql"))
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, string(b))
		return dsn, db
	}
	t.Run("csv-to-mysql", func(t *testing.T) {
		dsn, db := schema(t, "csv-to-mysql")
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "in"), 0o755); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(root, "examples/csv-to-mysql/sample/*.csv"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if err := os.WriteFile(filepath.Join(dir, "in", filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run(t, dir, "csv-to-mysql", dsn)
		if n := count(t, db, "SELECT COUNT(*) FROM orders"); n != 6 {
			t.Fatalf("%d orders, want 6", n)
		}
		var amount, customer, day string
		if err := db.QueryRow("SELECT amount, customer, ordered_at FROM orders WHERE order_id = 1002").Scan(&amount, &customer, &day); err != nil {
			t.Fatal(err)
		}
		if amount != "5.00" || customer != "Globex" || day != "2026-11-24" {
			t.Fatalf("order 1002 = %s %s %s, want the later file's 5.00 Globex 2026-11-24", amount, customer, day)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM orders WHERE order_id = 1001 AND customer = 'ACME Corp' AND amount = 1299.00"); n != 1 {
			t.Fatal("order 1001 not typed and trimmed")
		}
	})
	t.Run("mysql-to-mysql", func(t *testing.T) {
		dsn, db := schema(t, "mysql-to-mysql")
		dir := t.TempDir()
		run(t, dir, "mysql-to-mysql", dsn)
		if n := count(t, db, `SELECT COUNT(*) FROM erp_orders e JOIN report_orders r USING (id)
			WHERE r.customer = e.customer AND r.amount = e.amount AND r.status = UPPER(e.status)
			AND r.updated_at = e.updated_at AND (JSON_EQUALS(r.details, e.details) OR (r.details IS NULL AND e.details IS NULL))`); n != 4 {
			t.Fatalf("%d rows copied faithfully, want 4", n)
		}
		mustExec(t, db, "UPDATE erp_orders SET status = 'shipped', updated_at = UTC_TIMESTAMP(6) - INTERVAL 10 SECOND WHERE id = 2")
		mustExec(t, db, "DELETE FROM report_orders WHERE id = 1")
		run(t, dir, "mysql-to-mysql", dsn)
		if n := count(t, db, "SELECT COUNT(*) FROM report_orders WHERE id = 2 AND status = 'SHIPPED'"); n != 1 {
			t.Fatal("the changed row was not copied")
		}
		if n := count(t, db, "SELECT COUNT(*) FROM report_orders"); n != 3 {
			t.Fatalf("%d rows after the second run, want 3: only the changed row travels", n)
		}
	})
}
