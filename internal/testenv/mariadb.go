// Package testenv provides real peers for tests: MariaDB servers, on
// loopback, started on demand and cleaned up.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDBEnv names an environment variable holding the DSN of a server to
// use instead of 127.0.0.1:3306 ("user:password@tcp(host:port)/"; the user
// must be allowed to create and drop databases), or "private" to always
// start a private server.
const MariaDBEnv = "SLUICE_TEST_MARIADB_DSN"

// systemDSN is the server the tests use when it is reachable.
const systemDSN = "root@tcp(127.0.0.1:3306)/"

var shared struct {
	once sync.Once
	base *mysql.Config  // server-level DSN, no database
	srv  *MariaDBServer // private server started for the process, or nil
	err  error
}

// MariaDB returns the DSN of a fresh, empty database of its own (named after
// the test, with a random suffix), dropped when the test ends. The DSN has
// no parameters: "root@tcp(127.0.0.1:3306)/t_name_1a2b3c".
//
// The server is, in order: the one named by SLUICE_TEST_MARIADB_DSN; the
// one at 127.0.0.1:3306 (user root, no password) when it answers; else a
// private mariadbd on a temporary datadir and a free loopback port, shared by
// every test of the process and stopped by MariaDBMain. When no server can
// be had the test is skipped, except with CI=true, where it fails.
func MariaDB(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		shared.base, shared.srv, shared.err = findServer()
	})
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	return createDatabase(t, shared.base, true)
}

// MariaDBMain runs the tests of a package that uses MariaDB and stops the
// private server MariaDB may have started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.MariaDBMain(m) }
func MariaDBMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: stopping the private MariaDB:", err)
		}
		_ = os.RemoveAll(shared.srv.dir)
	}
	os.Exit(code)
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("MariaDB is required in CI: %v", err)
	}
	t.Skipf("no MariaDB server: %v", err)
}

// findServer picks the server the tests share.
func findServer() (*mysql.Config, *MariaDBServer, error) {
	dsn := os.Getenv(MariaDBEnv)
	if dsn != "" && dsn != "private" {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", MariaDBEnv, err)
		}
		cfg.DBName = ""
		if err := ping(cfg); err != nil {
			return nil, nil, fmt.Errorf("%s: server %s: %w", MariaDBEnv, cfg.Addr, err)
		}
		return cfg, nil, nil
	}
	if dsn == "" {
		cfg, _ := mysql.ParseDSN(systemDSN)
		if err := ping(cfg); err == nil {
			return cfg, nil, nil
		}
	}
	dir, err := os.MkdirTemp("", "sluice-mariadb-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := newMariaDBServer(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	return srv.config(""), srv, nil
}

func ping(cfg *mysql.Config) error {
	c := cfg.Clone()
	c.Timeout = 2 * time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// createDatabase creates a database named after the test and, with drop,
// drops it in t.Cleanup.
func createDatabase(t testing.TB, base *mysql.Config, drop bool) string {
	t.Helper()
	name := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name = "t_" + name + "_" + hex.EncodeToString(b[:])
	db, err := openAdmin(base)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	if drop {
		t.Cleanup(func() { dropDatabase(t, base, name) })
	}
	c := base.Clone()
	c.DBName = name
	c.Params = nil
	return c.FormatDSN()
}

func dropDatabase(t testing.TB, base *mysql.Config, name string) {
	db, err := openAdmin(base)
	if err != nil {
		t.Errorf("testenv: drop database %s: %v", name, err)
		return
	}
	defer db.Close()
	if _, err := db.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
		t.Errorf("testenv: drop database %s: %v", name, err)
	}
}

func openAdmin(base *mysql.Config) (*sql.DB, error) {
	c := base.Clone()
	c.DBName = ""
	c.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// MariaDBServer is a private mariadbd: its own datadir and loopback port,
// no grant tables (any user, no password), for tests that stop, kill or
// restart the server.
type MariaDBServer struct {
	dir  string
	port int
	args []string // extra mariadbd options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exited
}

// StartMariaDB starts a private server for one test, with extra mariadbd
// options (--ssl-cert=..., say); it is killed and its datadir removed when
// the test ends. A missing mariadbd skips the test (fails it with CI=true).
func StartMariaDB(t testing.TB, args ...string) *MariaDBServer {
	t.Helper()
	// Not t.TempDir: its long paths can exceed the 107 bytes a unix
	// socket path may have.
	dir, err := os.MkdirTemp("", "sluice-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	srv, err := newMariaDBServer(dir, args...)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { _ = srv.Kill() })
	return srv
}

// newMariaDBServer initialises a datadir in dir and starts the server.
//
// mariadbd starts on an empty datadir with --skip-grant-tables (it creates
// the InnoDB system files and warns about the missing mysql schema), which
// takes a fraction of a second where mariadb-install-db takes many. The
// fresh InnoDB files are only crash-safe after a first clean shutdown, so
// the server is started, shut down and started again before use: tests kill
// it with SIGKILL.
func newMariaDBServer(dir string, args ...string) (*MariaDBServer, error) {
	if _, err := mariadbd(); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	srv := &MariaDBServer{dir: dir, port: port, args: args}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	if err := srv.Stop(); err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return srv, nil
}

// mariadbd finds the server binary, installing the mariadb-server package
// when it is missing and we are root.
func mariadbd() (string, error) {
	find := func() (string, error) {
		for _, name := range []string{"mariadbd", "mysqld"} {
			if p, err := exec.LookPath(name); err == nil {
				return p, nil
			}
			for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"} {
				p := filepath.Join(dir, name)
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
			}
		}
		return "", errors.New("mariadbd not found (install the mariadb-server package)")
	}
	return findOrInstall("mariadb-server", find)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port returns the server's TCP port on 127.0.0.1.
func (s *MariaDBServer) Port() int { return s.port }

func (s *MariaDBServer) config(db string) *mysql.Config {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "tcp"
	c.Addr = "127.0.0.1:" + strconv.Itoa(s.port)
	c.DBName = db
	return c
}

// DSN returns a DSN for database db (which may be empty) on this server.
func (s *MariaDBServer) DSN(db string) string { return s.config(db).FormatDSN() }

// CreateDatabase creates a fresh database for the test and returns its DSN.
// It goes away with the server's datadir.
func (s *MariaDBServer) CreateDatabase(t testing.TB) string {
	t.Helper()
	return createDatabase(t, s.config(""), false)
}

// Start starts the server on its datadir and port and waits until it
// accepts connections. Starting a running server is an error.
func (s *MariaDBServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("testenv: mariadbd is already running")
	}
	bin, err := mariadbd()
	if err != nil {
		return err
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + filepath.Join(s.dir, "data"),
		"--socket=" + filepath.Join(s.dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(s.dir, "mysqld.pid"),
		"--port=" + strconv.Itoa(s.port),
		"--bind-address=127.0.0.1",
		"--skip-grant-tables",
		"--skip-name-resolve",
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=16M",
		"--max-connections=200",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	args = append(args, s.args...)
	cmd := exec.Command(bin, args...)
	done, err := spawn(cmd, filepath.Join(s.dir, "mysqld.log"))
	if err != nil {
		return err
	}
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := ping(s.config("")); err == nil {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("testenv: mariadbd exited at start: %s", lastLines(s.log(), 8))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.cmd = nil
			return fmt.Errorf("testenv: mariadbd did not accept connections within 60s: %s", lastLines(s.log(), 8))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *MariaDBServer) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "mysqld.log"))
	return string(b)
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it to exit.
func (s *MariaDBServer) Stop() error { return s.signal(syscall.SIGTERM, 60*time.Second) }

// Kill kills the server with SIGKILL, as a crash would, and waits for it to
// exit. Killing a stopped server does nothing.
func (s *MariaDBServer) Kill() error { return s.signal(syscall.SIGKILL, 10*time.Second) }

func (s *MariaDBServer) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.done:
	case <-time.After(wait):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
		return fmt.Errorf("testenv: mariadbd did not exit within %s after %s", wait, sig)
	}
	s.cmd = nil
	return nil
}
