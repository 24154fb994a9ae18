package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MariaDBMain(m) }

// testDB opens dsn for the test's own queries.
func testDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	cfg.MultiStatements = true
	cfg.Logger = &mysqldrv.NopLogger{}
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// logBuffer collects slog output, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	state adapters.State
	log   *logBuffer
	once  bool
	name  string
}

type option func(*fixture)

func withState(st adapters.State) option { return func(f *fixture) { f.state = st } }
func withLog(l *logBuffer) option        { return func(f *fixture) { f.log = l } }
func withOnce() option                   { return func(f *fixture) { f.once = true } }

func resources(t testing.TB, opts ...option) adapters.Resources {
	f := &fixture{name: "src"}
	for _, o := range opts {
		o(f)
	}
	if f.state == nil {
		f.state = statestore.Memory()
	}
	var w interface{ Write([]byte) (int, error) } = testWriter{t}
	if f.log != nil {
		w = f.log
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return adapters.Resources{Pipeline: "p", Name: f.name, Logger: log, State: f.state, Once: f.once}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func decode(t testing.TB, spec *adapters.Spec, raw map[string]any) *adapters.Config {
	t.Helper()
	conf, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "test"})
	if err != nil {
		t.Fatalf("decode %v: %v", raw, err)
	}
	return conf
}

// openSource builds and connects a source.
func openSource(t testing.TB, raw map[string]any, opts ...option) *Source {
	t.Helper()
	return open(t, SourceSpec, newSource, raw, opts).(*Source)
}

// openSink builds and connects a sink.
func openSink(t testing.TB, raw map[string]any, opts ...option) *Sink {
	t.Helper()
	return open(t, SinkSpec, newSink, raw, opts).(*Sink)
}

type connector interface {
	Connect(context.Context) error
	Close(context.Context) error
}

// open builds an adapter with its factory, connects it and closes it when
// the test ends.
func open[T connector](t testing.TB, spec *adapters.Spec, factory func(*adapters.Config, adapters.Resources) (T, error), raw map[string]any, opts []option) T {
	t.Helper()
	a, err := factory(decode(t, spec, raw), resources(t, opts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// readAll reads and acks batches until the source ends (run --once) or
// has nothing more within idle.
func readAll(t testing.TB, s *Source, idle time.Duration) []adapters.Message {
	t.Helper()
	var out []adapters.Message
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		b, err := s.Read(ctx)
		cancel()
		if errors.Is(err, adapters.ErrEndOfInput) || errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if err := b.Ack(context.Background(), nil); err != nil {
			t.Fatalf("ack: %v", err)
		}
		out = append(out, b.Messages...)
	}
}

func records(n int, f func(i int) adapters.Record) []adapters.Message {
	msgs := make([]adapters.Message, n)
	for i := range msgs {
		msgs[i] = adapters.Message{ID: fmt.Sprint("m", i), Record: f(i), Meta: map[string]string{"source": "test"}}
	}
	return msgs
}

func count(t testing.TB, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
