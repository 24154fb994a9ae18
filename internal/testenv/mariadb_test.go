package testenv

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestMain(m *testing.M) { MariaDBMain(m) }

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMariaDBGivesAFreshDatabase(t *testing.T) {
	a, b := MariaDB(t), MariaDB(t)
	if a == b {
		t.Fatalf("two calls gave the same database %q", a)
	}
	cfg, err := mysql.ParseDSN(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.DBName, "t_testmariadbgivesafreshdatabase_") {
		t.Fatalf("database name %q is not named after the test", cfg.DBName)
	}
	db := open(t, a)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("fresh database has %d tables", n)
	}
	if _, err := db.Exec("CREATE TABLE t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
}

func TestPrivateServerSurvivesKill(t *testing.T) {
	srv := StartMariaDB(t)
	db := open(t, srv.CreateDatabase(t))
	db.SetMaxIdleConns(0)
	if _, err := db.Exec("CREATE TABLE t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1), (2), (3)"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err == nil {
		t.Fatal("ping succeeded on a killed server")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d rows after the restart, want 3", n)
	}
	if err := srv.Start(); err == nil {
		t.Fatal("starting a running server succeeded")
	}
}
