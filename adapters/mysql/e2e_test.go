package mysql

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
)

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

	bin := filepath.Join(t.TempDir(), "sluice")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sluice: %v\n%s", err, out)
	}
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
