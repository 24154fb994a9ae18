package mysql

import (
	"context"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/testenv"
)

func TestClassify(t *testing.T) {
	server := func(n uint16) error { return &mysqldrv.MySQLError{Number: n, Message: "x"} }
	cases := []struct {
		name string
		err  error
		want class
	}{
		{"duplicate key", server(1062), classRow},
		{"data too long", server(1406), classRow},
		{"out of range", server(1264), classRow},
		{"incorrect value", server(1366), classRow},
		{"incorrect datetime", server(1292), classRow},
		{"foreign key child", server(1452), classRow},
		{"foreign key parent", server(1451), classRow},
		{"unknown column", server(1054), classRow},
		{"not null", server(1048), classRow},
		{"no default", server(1364), classRow},
		{"check constraint (MariaDB)", server(4025), classRow},
		{"packet too large", mysqldrv.ErrPktTooLarge, classRow},
		{"syntax error", server(1064), classStatement},
		{"column count", server(1136), classStatement},
		{"deadlock", server(1213), classTransient},
		{"lock wait timeout", server(1205), classTransient},
		{"read-only option", server(1290), classTransient},
		{"read-only mode", server(1836), classTransient},
		{"read-only transaction", server(1792), classTransient},
		{"server shutting down", server(1053), classTransient},
		{"unknown server error", server(9999), classTransient},
		{"bad connection", driver.ErrBadConn, classTransient},
		{"invalid connection", mysqldrv.ErrInvalidConn, classTransient},
		{"EOF", io.EOF, classTransient},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, classTransient},
		{"i/o timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, classTransient},
		{"context deadline", context.DeadlineExceeded, classTransient},
		{"access denied", server(1045), classUnavailable},
		{"database access denied", server(1044), classUnavailable},
		{"unknown database", server(1049), classUnavailable},
		{"missing table", server(1146), classUnavailable},
		{"missing privilege", server(1142), classUnavailable},
		{"too many connections", server(1040), classUnavailable},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, classUnavailable},
		{"no such host", &net.DNSError{Err: "no such host", Name: "db"}, classUnavailable},
		{"untrusted certificate", x509.UnknownAuthorityError{}, classUnavailable},
		{"no TLS", mysqldrv.ErrNoTLS, classUnavailable},
		{"wrapped", fmt.Errorf("insert: %w", server(1062)), classRow},
		{"redacted", (&redactor{}).wrap(server(1045)), classUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := classify(c.err); got != c.want {
				t.Fatalf("classify(%v) = %d, want %d", c.err, got, c.want)
			}
			if got, want := adapters.KindOf(classified(c.err)), c.want.kind(); got != want {
				t.Fatalf("kind %v, want %v", got, want)
			}
		})
	}
}

// Failures the server really produces, seen through the sink.
func TestSinkErrorKinds(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY)`)
	cfg, _ := mysqldrv.ParseDSN(dsn)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx := context.Background()
	connect := func(raw map[string]any) error {
		sk, err := newSink(decode(t, SinkSpec, raw), resources(t))
		if err != nil {
			t.Fatal(err)
		}
		defer sk.Close(ctx)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return sk.Connect(cctx)
	}
	other := *cfg
	other.DBName = "no_such_database_here"
	cases := []struct {
		name string
		raw  map[string]any
		want string
	}{
		{"connection refused", map[string]any{"host": "127.0.0.1", "port": closedPort, "user": "root", "database": "x", "table": "t"}, "connection refused"},
		{"unknown database", map[string]any{"dsn": other.FormatDSN(), "table": "t"}, "Unknown database"},
		{"missing table", map[string]any{"dsn": dsn, "table": "nope"}, "does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := connect(c.raw)
			if err == nil || adapters.KindOf(err) != adapters.Unavailable || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Connect = %v (%v), want unavailable: %s", err, adapters.KindOf(err), c.want)
			}
		})
	}
	t.Run("table dropped under a connected sink", func(t *testing.T) {
		mustExec(t, db, `CREATE TABLE gone (id INT PRIMARY KEY)`)
		s := openSink(t, map[string]any{"dsn": dsn, "table": "gone"})
		mustExec(t, db, `DROP TABLE gone`)
		err := s.Write(ctx, records(3, func(i int) adapters.Record { return adapters.Record{"id": int64(i)} }))
		if adapters.KindOf(err) != adapters.Unavailable || !strings.Contains(err.Error(), "1146") {
			t.Fatalf("Write = %v, want unavailable 1146", err)
		}
	})
}

// testUser creates a user with a password on the test server, dropped at
// the end. A private server runs without grant tables: no user can be made.
func testUser(t *testing.T, dsn string) (user, password string) {
	t.Helper()
	db := testDB(t, dsn)
	cfg, _ := mysqldrv.ParseDSN(dsn)
	user = "sl_" + strings.TrimPrefix(cfg.DBName, "t_")
	if len(user) > 32 {
		user = user[:32]
	}
	password = "Pw-" + fmt.Sprint(time.Now().UnixNano()) + "-s3cr3t"
	if _, err := db.Exec(fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, password)); err != nil {
		var me *mysqldrv.MySQLError
		if errors.As(err, &me) && me.Number == 1290 {
			t.Skip("the test server runs with --skip-grant-tables: no login can be refused")
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec(fmt.Sprintf("DROP USER '%s'@'%%'", user)) })
	mustExec(t, db, fmt.Sprintf("GRANT ALL ON `%s`.* TO '%s'@'%%'", cfg.DBName, user))
	return user, password
}

// Passwords and DSNs appear in no error and no log line: refused logins,
// malformed DSNs, and the driver's own log of a connection the server
// closed.
func TestSecretsNeverShown(t *testing.T) {
	dsn := testenv.MariaDB(t)
	db := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE t (id INT PRIMARY KEY)`)
	user, password := testUser(t, dsn)
	cfg, _ := mysqldrv.ParseDSN(dsn)
	host, port, _ := net.SplitHostPort(cfg.Addr)
	var portN int
	fmt.Sscan(port, &portN)
	wrong := "Wr0ng-" + password
	good := mysqldrv.NewConfig()
	good.User, good.Passwd, good.Net, good.Addr, good.DBName = user, password, "tcp", cfg.Addr, cfg.DBName
	badDSN := *good
	badDSN.Passwd = wrong
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	var errs []string
	var kinds []adapters.Kind
	ctx := context.Background()
	cases := []map[string]any{
		{"host": host, "port": portN, "user": user, "password": wrong, "database": cfg.DBName, "table": "t"},
		{"host": host, "port": portN, "user": user, "password_file": pwFile, "database": cfg.DBName, "table": "t"},
		{"dsn": badDSN.FormatDSN(), "table": "t"},
		{"dsn": user + ":" + wrong + "@tcp(" + cfg.Addr, "table": "t"}, // malformed
		{"dsn": user + ":" + wrong + "@tcp(" + cfg.Addr + ")/" + cfg.DBName + "?tls=bogus-" + wrong, "table": "t"},
	}
	for _, raw := range cases {
		sk, err := newSink(decode(t, SinkSpec, raw), resources(t, withLog(logs)))
		if err != nil {
			t.Fatal(err)
		}
		err = sk.Connect(ctx)
		if err == nil {
			t.Fatalf("Connect with a wrong password succeeded: %v", raw["table"])
		}
		errs = append(errs, err.Error())
		kinds = append(kinds, adapters.KindOf(err))
		src, err := newSource(decode(t, SourceSpec, with(raw, "tracking_columns", "id")), resources(t, withLog(logs)))
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Connect(ctx); err != nil {
			errs = append(errs, err.Error())
		}
		_ = sk.Close(ctx)
		_ = src.Close(ctx)
	}
	if !strings.Contains(errs[0], "Access denied") || kinds[0] != adapters.Unavailable {
		t.Fatalf("refused login: %s (%v), want unavailable", errs[0], kinds[0])
	}
	// A working login, then the server closes the idle connection
	// (wait_timeout): the driver logs it.
	s := openSink(t, map[string]any{"dsn": good.FormatDSN() + "?wait_timeout=1", "table": "t"}, withLog(logs))
	if err := s.Write(ctx, records(1, func(int) adapters.Record { return adapters.Record{"id": int64(1)} })); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := s.Write(ctx, records(1, func(int) adapters.Record { return adapters.Record{"id": int64(2)} })); err != nil {
		t.Fatal(err)
	}
	out := logs.String() + strings.Join(errs, "\n")
	if !strings.Contains(out, "mysql driver") {
		t.Fatalf("the driver logged nothing; the test proves nothing: %s", out)
	}
	for _, secret := range []string{password, wrong, "bogus-" + wrong} {
		if strings.Contains(out, secret) {
			t.Fatalf("a secret leaked:\n%s", out)
		}
	}
	t.Logf("errors seen:\n%s", strings.Join(errs, "\n"))
}
