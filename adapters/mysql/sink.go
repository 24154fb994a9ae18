package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform"
)

// Write modes.
const (
	modeInsert = "insert"
	modeUpsert = "upsert"
	modeUpdate = "update"
	modeDelete = "delete"
)

// sinkOptions is the decoded configuration of a sink.
type sinkOptions struct {
	conn            *connOptions
	table           tableName
	mode            string
	key             []string  // configured key; nil: the primary key
	columns         []colExpr // sorted by name; nil: the record's fields
	maxStatement    int       // bytes
	deadlockRetries int
	ignoreUnknown   bool // drop record fields the table lacks
}

// colExpr is one entry of the `columns` mapping.
type colExpr struct {
	name string
	prog *transform.Program
}

// Sink writes records to a table, one transaction per Write. It implements
// adapters.Sink and is safe for concurrent use.
type Sink struct {
	o       sinkOptions
	res     adapters.Resources
	log     *slog.Logger
	runners sync.Pool

	mu     sync.Mutex // guards the fields below
	pool   *pool
	schema *sinkSchema
	closed bool
}

// sinkSchema is what Connect learnt about the table.
type sinkSchema struct {
	info         *tableInfo
	key          []string // key columns as the table spells them
	maxStatement int
}

var (
	_ adapters.Sink          = (*Sink)(nil)
	_ adapters.HealthChecker = (*Sink)(nil)
)

func newSink(conf *adapters.Config, res adapters.Resources) (adapters.Sink, error) {
	co, err := newConnOptions(conf)
	if err != nil {
		return nil, err
	}
	o := sinkOptions{
		conn:            co,
		mode:            conf.String("mode"),
		key:             conf.Strings("key"),
		maxStatement:    int(conf.Size("max_statement_size")),
		deadlockRetries: conf.Int("deadlock_retries"),
		ignoreUnknown:   conf.String("unknown_fields") == "ignore",
	}
	if o.table, err = parseTableName(conf.String("table")); err != nil {
		return nil, conf.Errorf("table", "%v", err)
	}
	if m := conf.StringMap("columns"); len(m) > 0 {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			prog, err := transform.Compile(m[n])
			if err != nil {
				return nil, conf.Errorf("columns", "%s: %v", n, err)
			}
			o.columns = append(o.columns, colExpr{name: n, prog: prog})
		}
	}
	log := res.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{o: o, res: res, log: log}
	s.runners.New = func() any { return &transform.Runner{} }
	return s, nil
}

func checkSink(conf *adapters.Config) error {
	var errs adapters.Errors
	add := func(err error) { errs = append(errs, adapters.AsErrors(err, conf.Path(), 0)...) }
	if err := checkConn(conf); err != nil {
		add(err)
	}
	if _, err := parseTableName(conf.String("table")); err != nil {
		add(conf.Errorf("table", "%v", err))
	}
	for n, src := range conf.StringMap("columns") {
		if _, err := transform.Compile(src); err != nil {
			add(conf.Errorf("columns", "%s: %v", n, err))
		}
	}
	if conf.Has("columns") && conf.IsSet("unknown_fields") {
		add(conf.Errorf("unknown_fields", "unknown_fields applies to records written without a columns mapping"))
	}
	if len(errs) > 0 {
		errs.Sort()
		return errs
	}
	return nil
}

// Connect opens the pool and reads the table's columns and primary key.
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	p, closed := s.pool, s.closed
	s.mu.Unlock()
	if closed {
		return adapters.ErrClosed
	}
	if p == nil {
		np, err := s.o.conn.open(ctx, s.log)
		if err != nil {
			return fmt.Errorf("sink %q: %w", s.res.Name, err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			np.db.Close()
			return adapters.ErrClosed
		}
		s.pool, p = np, np
		s.mu.Unlock()
	}
	sc, err := s.loadSchema(ctx, p)
	if err != nil {
		return fmt.Errorf("sink %q: %w", s.res.Name, err)
	}
	s.mu.Lock()
	s.schema = sc
	s.mu.Unlock()
	return nil
}

func (s *Sink) loadSchema(ctx context.Context, p *pool) (*sinkSchema, error) {
	info, err := loadTable(ctx, p.db, s.o.table)
	if err != nil {
		var nt *errNoTable
		if errors.As(err, &nt) {
			return nil, adapters.UnavailableError(err)
		}
		return nil, classified(p.red.wrap(err))
	}
	sc := &sinkSchema{info: info, maxStatement: s.o.maxStatement}
	var maxPacket int
	if err := p.db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		return nil, classified(p.red.wrap(fmt.Errorf("read max_allowed_packet: %w", err)))
	}
	if limit := maxPacket - 64<<10; limit > 0 && limit < sc.maxStatement {
		sc.maxStatement = limit
	}
	for _, c := range s.o.columns {
		if _, ok := info.column(c.name); !ok {
			return nil, adapters.PermanentError(fmt.Errorf("columns: %q is not a column of %s", c.name, s.o.table))
		}
	}
	keys := s.o.key
	if len(keys) == 0 {
		keys = info.primary
	}
	for _, k := range keys {
		col, ok := info.column(k)
		if !ok {
			return nil, adapters.PermanentError(fmt.Errorf("key: %q is not a column of %s", k, s.o.table))
		}
		sc.key = append(sc.key, col.name)
	}
	if len(sc.key) == 0 && (s.o.mode == modeUpdate || s.o.mode == modeDelete) {
		return nil, adapters.PermanentError(fmt.Errorf("key: %s has no primary key; name the key columns for mode %s", s.o.table, s.o.mode))
	}
	return sc, nil
}

// Write writes msgs in one transaction. When the server rejects the data
// of some rows (a duplicate key in insert mode, a value too long, a foreign
// key, ...), the batch is bisected: every good row is committed and each bad
// row is failed alone, permanently, with the server's error, in a
// *adapters.BatchError. Deadlocks are retried at once, deadlock_retries
// times. Other failures fail the rows not yet committed: transient (lost
// connection, lock wait timeout, read-only server) or unavailable (refused
// connection or login, missing table).
func (s *Sink) Write(ctx context.Context, msgs []adapters.Message) error {
	s.mu.Lock()
	p, sc, closed := s.pool, s.schema, s.closed
	s.mu.Unlock()
	if closed {
		return adapters.ErrClosed
	}
	if p == nil || sc == nil {
		return adapters.ErrNotConnected
	}
	if len(msgs) == 0 {
		return nil
	}
	be := adapters.NewBatchError(0)
	rows := s.rows(msgs, sc, be)
	err := s.write(ctx, p, sc, rows, be)
	if err != nil {
		err = fmt.Errorf("sink %q: %s %s: %w", s.res.Name, s.o.mode, s.o.table, classified(p.red.wrap(err)))
		if len(be.Failed) == 0 && !anyDone(rows) {
			return err
		}
		for _, r := range rows {
			if !r.done {
				if _, failed := be.Failed[r.idx]; !failed {
					be.Fail(r.idx, err)
				}
			}
		}
	}
	return be.Err()
}

func anyDone(rows []*row) bool {
	for _, r := range rows {
		if r.done {
			return true
		}
	}
	return false
}

// write writes rows in one transaction, bisecting on row-level errors.
// Rows committed are marked done; rows the server rejected are failed in
// be. A returned error (transient or unavailable) concerns the rows that
// are neither.
func (s *Sink) write(ctx context.Context, p *pool, sc *sinkSchema, rows []*row, be *adapters.BatchError) error {
	if len(rows) == 0 {
		return nil
	}
	err := s.tx(ctx, p, sc, rows)
	if err == nil {
		for _, r := range rows {
			r.done = true
		}
		return nil
	}
	switch classify(err) {
	case classRow:
		if len(rows) > 1 {
			mid := len(rows) / 2
			if err := s.write(ctx, p, sc, rows[:mid], be); err != nil {
				return err
			}
			return s.write(ctx, p, sc, rows[mid:], be)
		}
		fallthrough
	case classStatement:
		perr := adapters.PermanentError(fmt.Errorf("sink %q: %s %s: %w", s.res.Name, s.o.mode, s.o.table, p.red.wrap(err)))
		for _, r := range rows {
			be.Fail(r.idx, perr)
		}
		return nil
	}
	return err
}

// tx runs the statements for rows in one transaction, retrying deadlocks.
func (s *Sink) tx(ctx context.Context, p *pool, sc *sinkSchema, rows []*row) error {
	stmts := s.statements(sc, rows)
	for attempt := 0; ; attempt++ {
		err := s.runTx(ctx, p, stmts)
		var me *mysqldrv.MySQLError
		if err == nil || attempt >= s.o.deadlockRetries || !errors.As(err, &me) || me.Number != 1213 {
			return err
		}
		s.log.Debug("deadlock; retrying the transaction", "attempt", attempt+1)
		d := time.Duration(attempt+1)*10*time.Millisecond + rand.N(10*time.Millisecond)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

type statement struct {
	sql  string
	args []any
}

func (s *Sink) runTx(ctx context.Context, p *pool, stmts []statement) error {
	if len(stmts) == 1 {
		// One statement is atomic on its own (autocommit is forced on for
		// the session): no BEGIN and COMMIT round trips.
		_, err := p.db.ExecContext(ctx, stmts[0].sql, stmts[0].args...)
		return err
	}
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.sql, st.args...); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// statements builds the statements writing rows, in order: one per run of
// rows with the same columns, split to stay under max_statement_size (and,
// in update mode, where a key repeats, so that the later row wins).
func (s *Sink) statements(sc *sinkSchema, rows []*row) []statement {
	var out []statement
	start := 0
	size := 0
	var keys map[string]bool
	if s.o.mode == modeUpdate {
		keys = map[string]bool{}
	}
	flush := func(end int) {
		if end > start {
			out = append(out, s.statement(sc, rows[start:end]))
		}
		start, size = end, 0
		if keys != nil {
			clear(keys)
		}
	}
	for i, r := range rows {
		if i > start && (r.shape != rows[start].shape || size+r.size > sc.maxStatement) {
			flush(i)
		}
		if keys != nil {
			k := keyText(r)
			if keys[k] {
				flush(i)
			}
			keys[k] = true
		}
		size += r.size
	}
	flush(len(rows))
	return out
}

func keyText(r *row) string {
	var b strings.Builder
	for _, i := range r.shape.keyIdx {
		fmt.Fprintf(&b, "%v\x00", r.vals[i])
	}
	return b.String()
}

// statement builds one statement for rows of one shape.
func (s *Sink) statement(sc *sinkSchema, rows []*row) statement {
	var b strings.Builder
	b.Grow(64 + len(rows)*(2*len(rows[0].shape.cols)+3))
	var args []any
	switch s.o.mode {
	case modeDelete:
		args = s.deleteStatement(&b, sc, rows)
	case modeUpdate:
		args = s.updateStatement(&b, sc, rows)
	default:
		args = s.insertStatement(&b, rows)
	}
	return statement{sql: b.String(), args: args}
}

// deleteStatement writes DELETE FROM t WHERE k IN (?, ...), or
// (k1, k2) IN ((?, ?), ...) for a compound key.
func (s *Sink) deleteStatement(b *strings.Builder, sc *sinkSchema, rows []*row) []any {
	sh := rows[0].shape
	keyIdx := sh.keyIdx
	args := make([]any, 0, len(rows)*len(keyIdx))
	tuple := len(keyIdx) > 1
	b.WriteString("DELETE FROM ")
	b.WriteString(s.o.table.quoted())
	b.WriteString(" WHERE ")
	if tuple {
		b.WriteByte('(')
	}
	writeIdents(b, sc.key, "", "")
	if tuple {
		b.WriteByte(')')
	}
	b.WriteString(" IN (")
	for j, r := range rows {
		if j > 0 {
			b.WriteByte(',')
		}
		if tuple {
			b.WriteByte('(')
		}
		for i, ki := range keyIdx {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
			args = append(args, r.vals[ki])
		}
		if tuple {
			b.WriteByte(')')
		}
	}
	b.WriteByte(')')
	return args
}

// updateStatement writes
//
//	UPDATE t AS __t JOIN (SELECT ? AS k, ? AS c UNION ALL SELECT ?, ?) AS __v
//	ON __t.k = __v.k SET __t.c = __v.c
//
// one statement for many rows; the join is an eq_ref on the key.
func (s *Sink) updateStatement(b *strings.Builder, sc *sinkSchema, rows []*row) []any {
	sh := rows[0].shape
	args := make([]any, 0, len(rows)*len(sh.cols))
	b.WriteString("UPDATE ")
	b.WriteString(s.o.table.quoted())
	b.WriteString(" AS `__t` JOIN (")
	for j, r := range rows {
		if j > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT ")
		for i, c := range sh.cols {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
			if j == 0 {
				b.WriteString(" AS ")
				b.WriteString(quoteIdent(c))
			}
		}
		args = append(args, r.vals...)
	}
	b.WriteString(") AS `__v` ON ")
	for i, k := range sc.key {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString("`__t`.")
		b.WriteString(quoteIdent(k))
		b.WriteString(" = `__v`.")
		b.WriteString(quoteIdent(sh.cols[sh.keyIdx[i]]))
	}
	b.WriteString(" SET ")
	set := func(b *strings.Builder, q string) {
		b.WriteString("`__t`." + q + " = `__v`." + q)
	}
	if !writeUpdates(b, sh, set) {
		set(b, quoteIdent(sc.key[0])) // only key columns: a valid no-op
	}
	return args
}

// insertStatement writes INSERT INTO t (c, ...) VALUES (?, ...), ... and,
// in upsert mode, ON DUPLICATE KEY UPDATE c = VALUES(c) for the non-key
// columns.
func (s *Sink) insertStatement(b *strings.Builder, rows []*row) []any {
	sh := rows[0].shape
	args := make([]any, 0, len(rows)*len(sh.cols))
	b.WriteString("INSERT INTO ")
	b.WriteString(s.o.table.quoted())
	b.WriteString(" (")
	writeIdents(b, sh.cols, "", "")
	b.WriteString(") VALUES ")
	for j, r := range rows {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for i := range sh.cols {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
		args = append(args, r.vals...)
	}
	if s.o.mode == modeUpsert {
		b.WriteString(" ON DUPLICATE KEY UPDATE ")
		set := func(b *strings.Builder, q string) { b.WriteString(q + " = VALUES(" + q + ")") }
		if !writeUpdates(b, sh, set) {
			q := quoteIdent(sh.cols[0]) // only key columns: a valid no-op
			b.WriteString(q + " = " + q)
		}
	}
	return args
}

// writeUpdates writes set(quoted column) for every non-key column of sh,
// separated by commas, and reports whether there was any.
func writeUpdates(b *strings.Builder, sh *shape, set func(b *strings.Builder, q string)) bool {
	n := 0
	for i, c := range sh.cols {
		if sh.isKey[i] {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		set(b, quoteIdent(c))
	}
	return n > 0
}

// Health pings the server.
func (s *Sink) Health(ctx context.Context) error {
	s.mu.Lock()
	p := s.pool
	s.mu.Unlock()
	if p == nil {
		return adapters.ErrNotConnected
	}
	if err := p.db.PingContext(ctx); err != nil {
		return classified(p.red.wrap(err))
	}
	return nil
}

// Close closes the pool. Writes in progress finish first (database/sql
// waits for connections in use). It is idempotent.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	p := s.pool
	already := s.closed
	s.closed, s.pool = true, nil
	s.mu.Unlock()
	if already || p == nil {
		return nil
	}
	if err := p.db.Close(); err != nil && !errors.Is(err, sql.ErrConnDone) {
		return err
	}
	return nil
}
