package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform"
)

// The mysql_lookup sink lives in this file (and lookup_test.go) so that it
// shares the connection, type and error handling of the mysql adapter
// without touching the sink's own files.

func init() {
	adapters.RegisterSink("mysql_lookup", LookupSpec, newLookup)
}

// LookupSpec is the configuration of the mysql_lookup sink.
var LookupSpec = &adapters.Spec{
	Summary: "Answer requests from a MySQL/MariaDB query: a parameterized SELECT whose rows are the reply",
	Description: `Runs a SELECT for each message, with named parameters (` + "`:customer_id`" + `) bound to the
record's fields of the same name (or to the expressions of ` + "`params`" + `), and returns the rows as the
message's reply: ` + "`{rows: [...], count: N}`" + `, plus ` + "`truncated: true`" + ` when more than max_rows matched.
In a request/reply pipeline (an http source in mode request_reply) the caller receives them: a
legacy table answers an HTTP API. Outside request/reply the rows are discarded.

Values are converted as the mysql source converts them (DECIMAL exact, DATETIME in time_zone, JSON
decoded). A query the server refuses for the message's data (a bad value) or a parameter the
record lacks fails that message permanently; lost connections and timeouts are transient; a refused
connection or login, or a missing table, make the sink back off as a whole. Give the user of the DSN
SELECT privileges only: the sink checks that the query starts with SELECT or WITH, not what it calls.`,
	Fields: append(connFields(4),
		adapters.Field{Name: "query", Type: adapters.TypeString,
			Description: "SELECT (or WITH … SELECT) with named parameters `:name`.",
			Example:     "SELECT id, name, credit_limit FROM customers WHERE id = :customer_id",
			Check:       checkLookupQuery},
		adapters.Field{Name: "params", Type: adapters.TypeStringMap, Optional: true,
			Description: "Parameter name to expression (record and meta in scope), for parameters that are not a field of the record as it is.",
			Example:     map[string]any{"customer_id": "int(record.customer)"}},
		adapters.Field{Name: "max_rows", Type: adapters.TypeInt, Default: 100, Check: positive,
			Description: "Most rows kept per message; the reply says truncated: true when there were more."},
		adapters.Field{Name: "json_columns", Type: adapters.TypeStrings, Optional: true,
			Description: "Result columns holding JSON text to decode (MariaDB sends JSON columns as text)."},
		adapters.Field{Name: "zero_dates", Type: adapters.TypeString, Default: "null", Enum: []string{"null", "string"},
			Description: "What a zero date ('0000-00-00 00:00:00') becomes: null, or its text."},
	),
	Example: `type: mysql_lookup
from: requests
dsn: ${CRM_DSN}
query: SELECT id, name, credit_limit FROM customers WHERE id = :customer_id
max_rows: 10`,
	Check: checkLookup,
}

func checkLookupQuery(v any) error {
	q, err := parseNamed(v.(string))
	if err != nil {
		return err
	}
	first := strings.ToUpper(firstWord(q.sql))
	if first != "SELECT" && first != "WITH" {
		return fmt.Errorf("want a SELECT (or WITH … SELECT) statement, got one starting with %q", first)
	}
	return nil
}

// firstWord returns the first keyword of a statement, after white space,
// comments and opening parentheses.
func firstWord(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n(")
		switch {
		case strings.HasPrefix(s, "/*"):
			if i := strings.Index(s, "*/"); i >= 0 {
				s = s[i+2:]
				continue
			}
			return ""
		case strings.HasPrefix(s, "#"), strings.HasPrefix(s, "-- "):
			if i := strings.IndexByte(s, '\n'); i >= 0 {
				s = s[i+1:]
				continue
			}
			return ""
		}
		end := strings.IndexFunc(s, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') })
		if end < 0 {
			return s
		}
		return s[:end]
	}
}

func checkLookup(conf *adapters.Config) error {
	var errs adapters.Errors
	add := func(err error) { errs = append(errs, adapters.AsErrors(err, conf.Path(), 0)...) }
	if err := checkConn(conf); err != nil {
		add(err)
	}
	q, err := parseNamed(conf.String("query"))
	if err == nil {
		names := map[string]bool{}
		for _, n := range q.names {
			names[n] = true
		}
		for n, src := range conf.StringMap("params") {
			if !names[n] {
				add(conf.Errorf("params", "%s: the query has no parameter :%s", n, n))
			}
			if _, err := transform.Compile(src); err != nil {
				add(conf.Errorf("params", "%s: %v", n, err))
			}
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return errs
	}
	return nil
}

// Lookup is the mysql_lookup sink. It implements adapters.Sink,
// adapters.Replier and adapters.HealthChecker and is safe for concurrent
// use.
type Lookup struct {
	conn     *connOptions
	query    namedSQL
	params   map[string]*transform.Program // by parameter name
	maxRows  int
	jsonCols map[string]bool // lower case
	zero     zeroDates
	res      adapters.Resources
	log      *slog.Logger
	runners  sync.Pool

	mu     sync.Mutex // guards the fields below
	pool   *pool
	closed bool
}

var (
	_ adapters.Sink          = (*Lookup)(nil)
	_ adapters.Replier       = (*Lookup)(nil)
	_ adapters.HealthChecker = (*Lookup)(nil)
)

func newLookup(conf *adapters.Config, res adapters.Resources) (adapters.Sink, error) {
	co, err := newConnOptions(conf)
	if err != nil {
		return nil, err
	}
	q, err := parseNamed(conf.String("query"))
	if err != nil {
		return nil, conf.Errorf("query", "%v", err)
	}
	l := &Lookup{conn: co, query: q, params: map[string]*transform.Program{}, maxRows: conf.Int("max_rows"),
		jsonCols: map[string]bool{}, res: res, log: res.Logger}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	names := make([]string, 0, len(conf.StringMap("params")))
	for n := range conf.StringMap("params") {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		prog, err := transform.Compile(conf.StringMap("params")[n])
		if err != nil {
			return nil, conf.Errorf("params", "%s: %v", n, err)
		}
		l.params[n] = prog
	}
	for _, c := range conf.Strings("json_columns") {
		l.jsonCols[strings.ToLower(c)] = true
	}
	if conf.String("zero_dates") == "string" {
		l.zero = zeroString
	}
	l.runners.New = func() any { return &transform.Runner{} }
	return l, nil
}

// Connect opens the pool and pings the server.
func (l *Lookup) Connect(ctx context.Context) error {
	l.mu.Lock()
	p, closed := l.pool, l.closed
	l.mu.Unlock()
	if closed {
		return adapters.ErrClosed
	}
	if p != nil {
		if err := p.db.PingContext(ctx); err != nil {
			return fmt.Errorf("sink %q: %w", l.res.Name, classified(p.red.wrap(err)))
		}
		return nil
	}
	np, err := l.conn.open(ctx, l.log)
	if err != nil {
		return fmt.Errorf("sink %q: %w", l.res.Name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		np.db.Close()
		return adapters.ErrClosed
	}
	l.pool = np
	return nil
}

// Write runs the query for each message and discards the rows.
func (l *Lookup) Write(ctx context.Context, msgs []adapters.Message) error {
	_, err := l.WriteReply(ctx, msgs)
	return err
}

// WriteReply runs the query for each message, one after the other, and
// returns {rows, count[, truncated]} per message. A message whose query the
// server refuses for its data, or whose parameters cannot be bound, fails
// alone and permanently; any other failure fails it and the messages after
// it, with its kind.
func (l *Lookup) WriteReply(ctx context.Context, msgs []adapters.Message) ([]adapters.Record, error) {
	l.mu.Lock()
	p, closed := l.pool, l.closed
	l.mu.Unlock()
	switch {
	case closed:
		return nil, adapters.ErrClosed
	case p == nil:
		return nil, adapters.ErrNotConnected
	}
	runner := l.runners.Get().(*transform.Runner)
	defer l.runners.Put(runner)
	out := make([]adapters.Record, len(msgs))
	be := adapters.NewBatchError(0)
	for i := range msgs {
		m := &msgs[i]
		args, err := l.args(runner, m)
		if err != nil {
			be.Fail(i, adapters.PermanentError(fmt.Errorf("message %s: %w", m.ID, err)))
			continue
		}
		rec, err := l.run(ctx, p, args)
		if err == nil {
			out[i] = rec
			continue
		}
		err = fmt.Errorf("sink %q: lookup for message %s: %w", l.res.Name, m.ID, err)
		be.Fail(i, err)
		if adapters.KindOf(err) == adapters.Permanent {
			continue
		}
		for j := i + 1; j < len(msgs); j++ {
			be.Fail(j, err)
		}
		break
	}
	return out, be.Err()
}

// args binds the query's parameters for m.
func (l *Lookup) args(runner *transform.Runner, m *adapters.Message) ([]any, error) {
	args := make([]any, len(l.query.names))
	for i, n := range l.query.names {
		var v any
		if prog, ok := l.params[n]; ok {
			var err error
			if v, err = runner.Eval(prog, m.Record, m.Meta); err != nil {
				return nil, fmt.Errorf("params.%s: %w", n, err)
			}
		} else {
			var ok bool
			if v, ok = field(m.Record, n); !ok {
				return nil, fmt.Errorf("parameter :%s: the record has no field %q", n, n)
			}
		}
		a, err := sqlArg(&column{}, v, l.conn.loc)
		if err != nil {
			return nil, fmt.Errorf("parameter :%s: %w", n, err)
		}
		args[i] = a
	}
	return args, nil
}

// field returns rec[name], matching the name without regard to case when
// there is no exact match, and whether it exists.
func field(rec adapters.Record, name string) (any, bool) {
	if v, ok := rec[name]; ok {
		return v, true
	}
	for k, v := range rec {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// run executes the query and converts up to maxRows rows.
func (l *Lookup) run(ctx context.Context, p *pool, args []any) (adapters.Record, error) {
	rows, err := p.db.QueryContext(ctx, l.query.sql, args...)
	if err != nil {
		return nil, classified(p.red.wrap(err))
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		return nil, classified(p.red.wrap(err))
	}
	dec := newDecoder(cols, l.jsonCols, l.conn.loc, l.zero)
	raw := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	for i := range raw {
		dest[i] = &raw[i]
	}
	list := []any{}
	truncated := false
	for rows.Next() {
		if len(list) == l.maxRows {
			truncated = true
			break
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, classified(p.red.wrap(err))
		}
		rec := make(adapters.Record, len(cols))
		for i, r := range raw {
			v, err := dec.value(i, r)
			if err != nil {
				return nil, adapters.PermanentError(fmt.Errorf("column %s: %w", dec.names[i], err))
			}
			rec[dec.names[i]] = v
		}
		list = append(list, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, classified(p.red.wrap(err))
	}
	out := adapters.Record{"rows": list, "count": int64(len(list))}
	if truncated {
		out["truncated"] = true
	}
	return out, nil
}

// Health pings the server.
func (l *Lookup) Health(ctx context.Context) error {
	l.mu.Lock()
	p := l.pool
	l.mu.Unlock()
	if p == nil {
		return adapters.ErrNotConnected
	}
	if err := p.db.PingContext(ctx); err != nil {
		return classified(p.red.wrap(err))
	}
	return nil
}

// Close closes the pool. It is idempotent.
func (l *Lookup) Close(context.Context) error {
	l.mu.Lock()
	p, already := l.pool, l.closed
	l.closed, l.pool = true, nil
	l.mu.Unlock()
	if already || p == nil {
		return nil
	}
	if err := p.db.Close(); err != nil && !errors.Is(err, sql.ErrConnDone) {
		return err
	}
	return nil
}
