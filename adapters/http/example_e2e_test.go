package httpadapter_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/internal/testenv"
)

// The walk-through of examples/http-to-mysql/README.md against MariaDB and
// the real binary: async orders into a table, request/reply lookups whose
// rows come back in the HTTP response, 422 and 400 for bad input, 401
// without the token, and 504 when the lookup outlasts the timeout.
func TestExampleHTTPToMySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sluice binary")
	}
	dsn := testenv.MariaDB(t)
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MultiStatements = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	example := filepath.Join("..", "..", "examples", "http-to-mysql")
	schema, err := os.ReadFile(filepath.Join(example, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(schema)); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(example, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	orders, lookups := freeAddr(t), freeAddr(t)
	a := startAgent(t, filepath.Join(example, "pipeline.yaml"), filepath.Join(t.TempDir(), "data"), "http://"+lookups+"/customers/lookup",
		"ERP_DSN="+dsn, "API_TOKEN=let-me-in", "ORDERS_ADDRESS="+orders, "LOOKUP_ADDRESS="+lookups)
	startAgentWait(t, "http://"+orders+"/orders")
	auth := map[string]string{"Authorization": "Bearer let-me-in"}
	// Each request body must be the README's, so the two cannot drift.
	req := func(url, body string, headers map[string]string) answer {
		t.Helper()
		if !strings.Contains(string(readme), body) {
			t.Fatalf("README.md does not show the request %s", body)
		}
		return post(t, url, body, headers)
	}
	ordersURL, lookupURL := "http://"+orders+"/orders", "http://"+lookups+"/customers/lookup"

	if a := req(ordersURL, `{"id": 1001, "customer_id": 1, "amount": "250.00"}`, auth); a.Status != 202 {
		t.Fatalf("order: %+v", a)
	}
	batch := `[{"id": 1002, "customer_id": 1, "amount": "19.90"}, {"id": 1003, "customer_id": 2, "amount": "5.00"}]`
	h := map[string]string{"Authorization": "Bearer let-me-in", "Idempotency-Key": "batch-7"}
	first, again := req(ordersURL, batch, h), req(ordersURL, batch, h)
	if first.Status != 202 || fmt.Sprint(first.Body["ids"]) != fmt.Sprint(again.Body["ids"]) {
		t.Fatalf("idempotent retry: %+v then %+v", first, again)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders in the table, want 3", n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	look := req(lookupURL, `{"customer_id": 1}`, auth)
	rows := replyRows(t, look)
	if look.Status != 200 || len(rows) != 1 {
		t.Fatalf("lookup: %+v", look)
	}
	if r := rows[0].(map[string]any); r["name"] != "Ada Lovelace" || r["orders"] != float64(2) || r["credit_limit"] != "5000" {
		t.Fatalf("row %v", r)
	}
	if a := req(lookupURL, `{"customer_id": 99}`, auth); a.Status != 200 || len(replyRows(t, a)) != 0 {
		t.Fatalf("unknown customer: %+v", a)
	}
	if a := req(lookupURL, `{"customer_id": "abc"}`, auth); a.Status != 422 {
		t.Fatalf("unconvertible: %+v", a)
	}
	if a := req(lookupURL, `{"customer_id": `, auth); a.Status != 400 {
		t.Fatalf("malformed: %+v", a)
	}
	if a := post(t, lookupURL, `{"customer_id": 1}`, nil); a.Status != 401 {
		t.Fatalf("no token: %+v", a)
	}

	// A lock on the table holds the lookup past the 5s timeout: 504; the
	// lookup completes once the lock is released.
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `LOCK TABLES customers WRITE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	slow := req(lookupURL, `{"customer_id": 2}`, auth)
	if _, err := conn.ExecContext(context.Background(), `UNLOCK TABLES`); err != nil {
		t.Fatal(err)
	}
	if slow.Status != 504 || time.Since(start) < 5*time.Second || !strings.Contains(fmt.Sprint(slow.Body["error"]), "no complete reply within 5s") {
		t.Fatalf("timeout: %+v after %s", slow, time.Since(start))
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(a.out.String(), "caller gave up") {
		if time.Now().After(deadline) {
			t.Fatal("the log does not say that the caller gave up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.stop()
}

// startAgentWait waits until url answers (a second source of the agent).
func startAgentWait(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replyRows returns the rows of the first reply of a request/reply answer.
func replyRows(t *testing.T, a answer) []any {
	t.Helper()
	reps, _ := a.Body["replies"].([]any)
	if len(reps) == 0 {
		t.Fatalf("no reply: %+v", a)
	}
	rep, _ := reps[0].(map[string]any)["reply"].(map[string]any)
	rows, ok := rep["rows"].([]any)
	if !ok {
		t.Fatalf("no rows in %+v", a)
	}
	return rows
}
