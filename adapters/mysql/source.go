package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/adapters"
)

// Initial positions of a source without a stored watermark.
const (
	initialBeginning = "beginning"
	initialNow       = "now"
)

// sourceOptions is the decoded configuration of a source.
type sourceOptions struct {
	conn      *connOptions
	table     tableName // table mode
	columns   []string  // table mode; nil: *
	where     string    // table mode
	query     *namedSQL // query mode
	tracking  []string
	initial   string    // initialBeginning, initialNow, or "" with initialAt
	initialAt watermark // from an `initial` mapping
	interval  time.Duration
	lag       time.Duration
	batchSize int
	onConsume *namedSQL
	jsonCols  map[string]bool // lower case
	zero      zeroDates
}

// Source reads rows incrementally, in the order of its tracking columns.
// It implements adapters.Source.
//
// Read returns up to batch_size rows after the read position; the position
// moves on at once, so the next Read continues while the engine enqueues.
// The watermark is committed to State (after on_consume ran) only when the
// engine acks a batch with a nil error; a failed ack rewinds the read
// position to the last committed watermark, and acks of batches read before
// the rewind commit nothing.
type Source struct {
	o      sourceOptions
	res    adapters.Resources
	log    *slog.Logger
	closed chan struct{}
	closer sync.Once

	// Owned by the goroutine calling Connect and Read.
	prepared  bool
	readPos   watermark
	upper     watermark // run --once: the last row to read; nil before computed
	empty     bool      // run --once: the table had no row at start
	onceDone  bool
	nextPoll  time.Time
	lagKind   colKind // kind of the first tracking column, with lag
	lagDate   bool    // the first tracking column is a DATE
	selectSQL string  // table mode: "SELECT cols FROM table"
	pre       *prefetch

	mu        sync.Mutex // guards the fields below
	pool      *pool      // set once by the first successful Connect
	committed watermark
	gen       uint64
	rewind    bool
	caughtUp  bool      // the last poll returned less than batch_size rows
	lastAt    time.Time // first tracking column of the last row read, when temporal
}

var (
	_ adapters.Source        = (*Source)(nil)
	_ adapters.HealthChecker = (*Source)(nil)
	_ adapters.LagReporter   = (*Source)(nil)
)

func newSource(conf *adapters.Config, res adapters.Resources) (adapters.Source, error) {
	o, err := sourceOptionsFrom(conf)
	if err != nil {
		return nil, err
	}
	log := res.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{o: o, res: res, log: log, closed: make(chan struct{})}, nil
}

func sourceOptionsFrom(conf *adapters.Config) (sourceOptions, error) {
	co, err := newConnOptions(conf)
	if err != nil {
		return sourceOptions{}, err
	}
	o := sourceOptions{
		conn:      co,
		columns:   conf.Strings("columns"),
		where:     conf.String("where"),
		tracking:  conf.Strings("tracking_columns"),
		interval:  conf.Duration("interval"),
		lag:       conf.Duration("lag"),
		batchSize: conf.Int("batch_size"),
		jsonCols:  map[string]bool{},
	}
	if conf.String("zero_dates") == "string" {
		o.zero = zeroString
	}
	for _, c := range conf.Strings("json_columns") {
		o.jsonCols[strings.ToLower(c)] = true
	}
	if conf.Has("table") {
		if o.table, err = parseTableName(conf.String("table")); err != nil {
			return o, conf.Errorf("table", "%v", err)
		}
	}
	if conf.Has("query") {
		q, err := parseNamed(conf.String("query"))
		if err != nil {
			return o, conf.Errorf("query", "%v", err)
		}
		o.query = &q
	}
	if conf.Has("on_consume") {
		q, err := parseNamed(conf.String("on_consume"))
		if err != nil {
			return o, conf.Errorf("on_consume", "%v", err)
		}
		o.onConsume = &q
	}
	switch v := conf.Any("initial").(type) {
	case string:
		o.initial = v
	case map[string]any:
		o.initialAt = make(watermark, len(o.tracking))
		for i, c := range o.tracking {
			wv, err := initialValue(lookupFold(v, c), co.loc)
			if err != nil {
				return o, conf.Errorf("initial", "%s: %v", c, err)
			}
			o.initialAt[i] = wv
		}
	}
	return o, nil
}

// checkSource validates the relations between a source's keys.
func checkSource(conf *adapters.Config) error {
	var errs adapters.Errors
	add := func(err error) { errs = append(errs, adapters.AsErrors(err, conf.Path(), 0)...) }
	if err := checkConn(conf); err != nil {
		add(err)
	}
	tracking := conf.Strings("tracking_columns")
	if len(tracking) == 0 {
		add(conf.Errorf("tracking_columns", "name at least one column"))
	}
	seen := map[string]bool{}
	for _, c := range tracking {
		if seen[strings.ToLower(c)] {
			add(conf.Errorf("tracking_columns", "column %q is named twice", c))
		}
		seen[strings.ToLower(c)] = true
	}
	switch {
	case conf.Has("table") == conf.Has("query"):
		add(conf.Errorf("table", "give either table or query"))
	case conf.Has("table"):
		if _, err := parseTableName(conf.String("table")); err != nil {
			add(conf.Errorf("table", "%v", err))
		}
	case conf.Has("query"):
		for _, k := range []string{"columns", "where", "lag"} {
			if conf.IsSet(k) {
				add(conf.Errorf(k, "%s applies to table; with query, write it into the query", k))
			}
		}
		q, err := parseNamed(conf.String("query"))
		if err != nil {
			add(conf.Errorf("query", "%v", err))
			break
		}
		hasLimit := false
		for _, n := range q.names {
			switch {
			case n == "batch_size":
				hasLimit = true
			case !seen[strings.ToLower(n)]:
				add(conf.Errorf("query", "unknown parameter :%s (known: :batch_size and the tracking columns %s)", n, prefixed(tracking)))
			}
		}
		if !hasLimit {
			add(conf.Errorf("query", "the query must end with ORDER BY the tracking columns and LIMIT :batch_size"))
		}
		if _, ok := conf.Any("initial").(map[string]any); !ok {
			add(conf.Errorf("initial", "with query, initial must be a mapping of the tracking columns to their start values"))
		}
	}
	if conf.Has("on_consume") {
		if _, err := parseNamed(conf.String("on_consume")); err != nil {
			add(conf.Errorf("on_consume", "%v", err))
		}
	}
	switch v := conf.Any("initial").(type) {
	case string:
		if v != initialBeginning && v != initialNow {
			add(conf.Errorf("initial", "want beginning, now or a mapping of the tracking columns to values, got %q", v))
		}
	case map[string]any:
		for _, c := range tracking {
			if lookupFold(v, c) == nil {
				add(conf.Errorf("initial", "no value for tracking column %q", c))
			}
		}
		for k := range v {
			if !seen[strings.ToLower(k)] {
				add(conf.Errorf("initial", "%q is not a tracking column", k))
			}
		}
	default:
		add(conf.Errorf("initial", "want beginning, now or a mapping of the tracking columns to values"))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// lookupFold returns m[key], matching the key without regard to case as
// MySQL matches column names.
func lookupFold(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

func prefixed(cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = ":" + c
	}
	return strings.Join(out, ", ")
}

func (s *Source) db() *pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pool
}

// Connect opens the pool (once; database/sql reconnects by itself after),
// checks the table and loads the watermark.
func (s *Source) Connect(ctx context.Context) error {
	select {
	case <-s.closed:
		return adapters.ErrClosed
	default:
	}
	p := s.db()
	if p == nil {
		np, err := s.o.conn.open(ctx, s.log)
		if err != nil {
			return fmt.Errorf("source %q: %w", s.res.Name, err)
		}
		s.mu.Lock()
		select {
		case <-s.closed:
			s.mu.Unlock()
			np.db.Close()
			return adapters.ErrClosed
		default:
		}
		s.pool, p = np, np
		s.mu.Unlock()
	} else if err := p.db.PingContext(ctx); err != nil {
		return fmt.Errorf("source %q: %w", s.res.Name, classified(p.red.wrap(err)))
	}
	if s.prepared {
		return nil
	}
	if err := s.prepare(ctx, p); err != nil {
		return fmt.Errorf("source %q: %w", s.res.Name, classified(p.red.wrap(err)))
	}
	s.prepared = true
	return nil
}

// prepare checks the table, loads or initialises the watermark and, under
// run --once, finds the last row to read.
func (s *Source) prepare(ctx context.Context, p *pool) error {
	if s.o.query == nil {
		ti, err := loadTable(ctx, p.db, s.o.table)
		if err != nil {
			return err
		}
		for _, c := range s.o.tracking {
			col, ok := ti.column(c)
			if !ok {
				return fmt.Errorf("tracking column %q is not a column of %s", c, s.o.table)
			}
			if col.nullable {
				s.log.Warn("tracking column allows NULL; rows with NULL in it are never read", "table", s.o.table.String(), "column", c)
			}
		}
		for c := range ti.jsonColumns() {
			s.o.jsonCols[c] = true
		}
		if s.o.lag > 0 {
			col, _ := ti.column(s.o.tracking[0])
			switch col.dataType {
			case "datetime":
				s.lagKind = kDateTime
			case "timestamp":
				s.lagKind = kTimestamp
			case "date":
				s.lagKind, s.lagDate = kDate, true
			default:
				return fmt.Errorf("lag needs a DATETIME, TIMESTAMP or DATE first tracking column; %s is %s", col.name, col.dataType)
			}
		}
		s.selectSQL = s.buildSelect()
	}
	committed, err := s.loadWatermark(ctx, p)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.committed = committed
	s.readPos = committed
	s.mu.Unlock()
	if s.res.Once && s.o.query == nil {
		upper, err := s.maxRow(ctx, p)
		if err != nil {
			return err
		}
		s.upper, s.empty = upper, upper == nil
	}
	return nil
}

func (s *Source) buildSelect() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	if len(s.o.columns) == 0 {
		b.WriteString("*")
	} else {
		cols := append([]string(nil), s.o.columns...)
		for _, c := range s.o.tracking {
			if indexOf(s.o.columns, c) < 0 {
				cols = append(cols, c)
			}
		}
		writeIdents(&b, cols, " ", "")
	}
	b.WriteString(" FROM ")
	b.WriteString(s.o.table.quoted())
	return b.String()
}

// loadWatermark returns the committed watermark: the stored one, else the
// configured initial position (which, for `now`, is stored at once so that
// a restart does not move it).
func (s *Source) loadWatermark(ctx context.Context, p *pool) (watermark, error) {
	if st := s.res.State; st != nil {
		b, ok, err := st.Get(ctx, stateKey)
		if err != nil {
			return nil, fmt.Errorf("read watermark: %w", err)
		}
		if ok {
			w, err := decodeWatermark(b, s.o.tracking)
			if err != nil {
				return nil, err
			}
			s.log.Info("resuming after the stored watermark", "watermark", strings.Join(w.texts(), ", "))
			return w, nil
		}
	}
	switch {
	case s.o.initialAt != nil:
		return s.o.initialAt, nil
	case s.o.initial == initialNow && s.o.query == nil:
		w, err := s.maxRow(ctx, p)
		if err != nil || w == nil {
			return nil, err
		}
		if err := s.saveWatermark(ctx, w); err != nil {
			return nil, err
		}
		return w, nil
	}
	return nil, nil
}

func (s *Source) saveWatermark(ctx context.Context, w watermark) error {
	st := s.res.State
	if st == nil {
		return nil
	}
	b, err := encodeWatermark(s.o.tracking, w)
	if err != nil {
		return err
	}
	if err := st.Put(ctx, stateKey, b); err != nil {
		return fmt.Errorf("store watermark: %w", err)
	}
	return nil
}

// maxRow returns the tracking values of the last row (in tracking order)
// that matches where, or nil when there is none.
func (s *Source) maxRow(ctx context.Context, p *pool) (watermark, error) {
	var b strings.Builder
	b.WriteString("SELECT ")
	writeIdents(&b, s.o.tracking, " ", "")
	b.WriteString(" FROM ")
	b.WriteString(s.o.table.quoted())
	s.writeFilters(&b)
	b.WriteString(" ORDER BY ")
	writeIdents(&b, s.o.tracking, " ", " DESC")
	b.WriteString(" LIMIT 1")
	rows, err := p.db.QueryContext(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("find the last row: %w", err)
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	raw := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	for i := range raw {
		dest[i] = &raw[i]
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	w := make(watermark, len(cols))
	for i, c := range cols {
		w[i] = wmValue{wmKind(kindOfColumn(c.DatabaseTypeName(), false)), string(raw[i])}
	}
	return w, rows.Err()
}

// writeFilters writes the WHERE clause shared by every query of table mode:
// the user's where and the not-null tracking columns.
func (s *Source) writeFilters(b *strings.Builder) {
	b.WriteString(" WHERE ")
	if s.o.where != "" {
		b.WriteString("(")
		b.WriteString(s.o.where)
		b.WriteString(") AND ")
	}
	for i, c := range s.o.tracking {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(quoteIdent(c))
		b.WriteString(" IS NOT NULL")
	}
}

// Read returns the next rows after the read position, waiting for the
// polling interval when the last poll found fewer than batch_size rows.
func (s *Source) Read(ctx context.Context) (adapters.Batch, error) {
	p := s.db()
	if p == nil || !s.prepared {
		return adapters.Batch{}, adapters.ErrNotConnected
	}
	for {
		select {
		case <-s.closed:
			return adapters.Batch{}, adapters.ErrClosed
		default:
		}
		s.mu.Lock()
		if s.rewind {
			s.readPos, s.rewind = s.committed, false
			s.gen++
			s.nextPoll, s.onceDone = time.Time{}, false
			s.log.Info("rewinding to the committed watermark after a failed batch")
		}
		gen := s.gen
		s.mu.Unlock()
		if s.res.Once && (s.onceDone || s.empty) {
			return adapters.Batch{}, adapters.ErrEndOfInput
		}
		res, ok, err := s.takePrefetch(ctx, gen)
		if ctx.Err() != nil {
			return adapters.Batch{}, ctx.Err()
		}
		if !ok {
			if d := time.Until(s.nextPoll); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return adapters.Batch{}, ctx.Err()
				case <-s.closed:
					t.Stop()
					return adapters.Batch{}, adapters.ErrClosed
				}
			}
			res, err = s.poll(ctx, p, s.readPos)
		}
		if err != nil {
			select {
			case <-s.closed:
				return adapters.Batch{}, adapters.ErrClosed
			default:
			}
			if ctx.Err() != nil {
				return adapters.Batch{}, ctx.Err()
			}
			err = classified(p.red.wrap(err))
			if isConnLoss(err) {
				return adapters.Batch{}, fmt.Errorf("source %q: %w: %w", s.res.Name, adapters.ErrNotConnected, err)
			}
			return adapters.Batch{}, fmt.Errorf("source %q: %w", s.res.Name, err)
		}
		if len(res.msgs) < s.o.batchSize {
			s.nextPoll = time.Now().Add(s.o.interval)
			s.onceDone = s.res.Once
		} else {
			s.nextPoll = time.Time{}
		}
		s.mu.Lock()
		s.caughtUp = !s.nextPoll.IsZero()
		if !res.lastAt.IsZero() {
			s.lastAt = res.lastAt
		}
		s.mu.Unlock()
		if len(res.msgs) == 0 {
			continue
		}
		s.readPos = res.last
		if s.nextPoll.IsZero() {
			s.startPrefetch(p, gen, res.last)
		}
		return adapters.Batch{Messages: res.msgs, Ack: s.acker(gen, res.last, res.consume)}, nil
	}
}

// pollResult is one query's rows.
type pollResult struct {
	msgs    []adapters.Message
	last    watermark
	lastAt  time.Time // the last row's first tracking column, when temporal
	consume [][]any   // on_consume arguments, one list per row
}

// Lag reports how far the source is behind: nothing once a poll came back
// short; otherwise, with a temporal first tracking column, the age of the
// last row read. It does no I/O.
func (s *Source) Lag() adapters.Lag {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.caughtUp:
		return adapters.Lag{Messages: 0, Bytes: -1, Age: 0}
	case !s.lastAt.IsZero():
		return adapters.Lag{Messages: -1, Bytes: -1, Age: max(0, time.Since(s.lastAt))}
	}
	return adapters.Lag{Messages: -1, Bytes: -1, Age: -1}
}

// prefetch is the next page, queried in the background while the engine
// enqueues the current one: the server's work overlaps the client's.
type prefetch struct {
	gen    uint64
	from   watermark
	cancel context.CancelFunc
	done   chan struct{}
	res    pollResult
	err    error
}

// startPrefetch queries the page after from. The query ends with Close
// (poll watches it) or when the prefetch is discarded.
func (s *Source) startPrefetch(p *pool, gen uint64, from watermark) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &prefetch{gen: gen, from: from, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.res, f.err = s.poll(ctx, p, from)
	}()
	s.pre = f
}

// takePrefetch returns the prefetched page when it continues the read
// position of generation gen (ok), waiting for it; a prefetch made stale by
// a rewind is discarded. When ctx ends first, the prefetch is kept for the
// next Read.
func (s *Source) takePrefetch(ctx context.Context, gen uint64) (pollResult, bool, error) {
	f := s.pre
	if f == nil {
		return pollResult{}, false, nil
	}
	if f.gen != gen || !sameWatermark(f.from, s.readPos) {
		s.pre = nil
		f.cancel()
		return pollResult{}, false, nil
	}
	select {
	case <-f.done:
		s.pre = nil
		f.cancel()
		return f.res, true, f.err
	case <-ctx.Done():
		return pollResult{}, false, nil
	case <-s.closed:
		return pollResult{}, true, adapters.ErrClosed
	}
}

func sameWatermark(a, b watermark) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// poll runs one query for the rows after from.
func (s *Source) poll(ctx context.Context, p *pool, from watermark) (pollResult, error) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-qctx.Done():
		}
	}()
	query, args, err := s.buildQuery(qctx, p, from)
	if err != nil {
		return pollResult{}, err
	}
	rows, err := p.db.QueryContext(qctx, query, args...)
	if err != nil {
		return pollResult{}, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	return s.scan(rows)
}

// buildQuery returns the SQL and arguments of the poll after w.
func (s *Source) buildQuery(ctx context.Context, p *pool, w watermark) (string, []any, error) {
	if s.o.query != nil {
		return s.customQuery(w)
	}
	var b strings.Builder
	b.Grow(256)
	b.WriteString(s.selectSQL)
	s.writeFilters(&b)
	var args []any
	var err error
	if w != nil {
		b.WriteString(" AND ")
		if args, err = keyset(&b, args, s.o.tracking, w, true); err != nil {
			return "", nil, err
		}
	}
	if s.upper != nil {
		b.WriteString(" AND ")
		if args, err = keyset(&b, args, s.o.tracking, s.upper, false); err != nil {
			return "", nil, err
		}
	}
	if s.o.lag > 0 {
		cutoff, err := s.lagCutoff(ctx, p)
		if err != nil {
			return "", nil, err
		}
		b.WriteString(" AND ")
		b.WriteString(quoteIdent(s.o.tracking[0]))
		b.WriteString(" <= ?")
		args = append(args, cutoff)
	}
	b.WriteString(" ORDER BY ")
	writeIdents(&b, s.o.tracking, " ", "")
	b.WriteString(" LIMIT ")
	b.WriteString(strconv.Itoa(s.o.batchSize))
	return b.String(), args, nil
}

// customQuery binds the named parameters of the user's query.
func (s *Source) customQuery(w watermark) (string, []any, error) {
	q := s.o.query
	args := make([]any, len(q.names))
	vals := make([]*wmValue, len(q.names))
	hasDecimal := false
	for i, n := range q.names {
		if n == "batch_size" {
			args[i] = int64(s.o.batchSize)
			continue
		}
		j := indexOf(s.o.tracking, n)
		a, err := w[j].arg()
		if err != nil {
			return "", nil, err
		}
		args[i], vals[i] = a, &w[j]
		hasDecimal = hasDecimal || w[j].Kind == 'd'
	}
	if !hasDecimal {
		return q.sql, args, nil
	}
	// Decimal watermarks compare exactly only through CAST.
	return q.with(func(i int) string {
		if vals[i] == nil {
			return "?"
		}
		return vals[i].placeholder()
	}), args, nil
}

// lagCutoff returns the newest value of the first tracking column that may
// be read: the server's clock minus lag, as text in the column's zone.
func (s *Source) lagCutoff(ctx context.Context, p *pool) (string, error) {
	var now string
	if err := p.db.QueryRowContext(ctx, "SELECT UTC_TIMESTAMP(6)").Scan(&now); err != nil {
		return "", fmt.Errorf("read the server clock: %w", err)
	}
	t, _, err := parseDateTime([]byte(now), time.UTC)
	if err != nil {
		return "", err
	}
	t = t.Add(-s.o.lag)
	if s.lagKind != kTimestamp {
		t = t.In(s.o.conn.loc)
	}
	if s.lagDate {
		return t.Format("2006-01-02"), nil
	}
	return formatDateTime(t), nil
}

// scan turns rows into messages.
func (s *Source) scan(rows *sql.Rows) (pollResult, error) {
	cols, err := rows.ColumnTypes()
	if err != nil {
		return pollResult{}, err
	}
	rc, err := s.newRowConverter(newDecoder(cols, s.o.jsonCols, s.o.conn.loc, s.o.zero))
	if err != nil {
		return pollResult{}, err
	}
	dest := make([]any, len(rc.raw))
	for i := range rc.raw {
		dest[i] = &rc.raw[i]
	}
	res := pollResult{msgs: make([]adapters.Message, 0, s.o.batchSize)}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return pollResult{}, err
		}
		m, consume, err := rc.convert()
		if err != nil {
			return pollResult{}, err
		}
		res.msgs = append(res.msgs, m)
		if consume != nil {
			res.consume = append(res.consume, consume)
		}
	}
	if err := rows.Err(); err != nil {
		return pollResult{}, err
	}
	if len(res.msgs) > 0 {
		res.last = rc.last()
		res.lastAt = rc.lastTime()
	}
	return res, nil
}

// rowConverter turns the raw columns of one result row after another into
// messages. It is built per result set.
type rowConverter struct {
	s          *Source
	dec        *decoder
	raw        []sql.RawBytes // the current row, filled by Scan
	track      []int          // result index of each tracking column
	consumeIdx []int          // result index of each on_consume parameter
	idParts    []string
	idBuf      []byte
	lastRaw    [][]byte // tracking values of the last row converted
	meta       string   // table name for Meta, or ""
	now        time.Time
}

func (s *Source) newRowConverter(dec *decoder) (*rowConverter, error) {
	rc := &rowConverter{s: s, dec: dec, raw: make([]sql.RawBytes, len(dec.names)), now: time.Now()}
	rc.track = make([]int, len(s.o.tracking))
	for i, c := range s.o.tracking {
		rc.track[i] = indexOf(dec.names, c)
		if rc.track[i] < 0 {
			return nil, fmt.Errorf("tracking column %q is not in the result (columns: %s)", c, strings.Join(dec.names, ", "))
		}
	}
	if s.o.onConsume != nil {
		rc.consumeIdx = make([]int, len(s.o.onConsume.names))
		for i, n := range s.o.onConsume.names {
			rc.consumeIdx[i] = indexOf(dec.names, n)
			if rc.consumeIdx[i] < 0 {
				return nil, fmt.Errorf("on_consume parameter :%s is not a column of the result (columns: %s)", n, strings.Join(dec.names, ", "))
			}
		}
	}
	rc.idParts = make([]string, 2+len(rc.track))
	rc.idParts[0], rc.idParts[1] = s.res.Pipeline, s.res.Name
	rc.lastRaw = make([][]byte, len(rc.track))
	if s.o.query == nil {
		rc.meta = s.o.table.String()
	}
	return rc, nil
}

// convert makes the message of the current row, and its on_consume
// arguments.
func (rc *rowConverter) convert() (adapters.Message, []any, error) {
	dec := rc.dec
	rec := make(adapters.Record, len(rc.raw))
	var rowErr error
	strs := dec.strings(rc.raw)
	for i, r := range rc.raw {
		var v any
		var err error
		if dec.kinds[i] == kString && r != nil && strs != "" {
			v, strs = strs[:len(r)], strs[len(r):]
		} else {
			v, err = dec.value(i, r)
		}
		if err != nil && rowErr == nil {
			rowErr = fmt.Errorf("column %s: %w", dec.names[i], err)
		}
		rec[dec.names[i]] = v
	}
	for i, ci := range rc.track {
		r := rc.raw[ci]
		if r == nil {
			return adapters.Message{}, nil, fmt.Errorf("tracking column %q is NULL in a row: filter such rows out of the query", rc.s.o.tracking[i])
		}
		rc.lastRaw[i] = append(rc.lastRaw[i][:0], r...)
		// NewID only reads its parts: no copy needed.
		rc.idParts[2+i] = unsafe.String(unsafe.SliceData(rc.lastRaw[i]), len(rc.lastRaw[i]))
	}
	var consume []any
	if rc.consumeIdx != nil {
		consume = make([]any, len(rc.consumeIdx))
		for i, ci := range rc.consumeIdx {
			if rc.raw[ci] == nil {
				continue
			}
			a, err := wmValue{wmKind(dec.kinds[ci]), string(rc.raw[ci])}.arg()
			if err != nil {
				return adapters.Message{}, nil, fmt.Errorf("on_consume parameter :%s: %w", rc.s.o.onConsume.names[i], err)
			}
			consume[i] = a
		}
	}
	m := adapters.Message{ID: rc.id(), Record: rec, Time: rc.now}
	if rowErr != nil {
		m.Err = fmt.Errorf("row %s: %w", strings.Join(rc.last().texts(), ", "), rowErr)
	}
	if rc.meta != "" {
		m.Meta = map[string]string{"table": rc.meta}
	}
	return m, consume, nil
}

// id returns adapters.NewID(pipeline, source, tracking values...) of the
// current row, computed without NewID's allocations: the parts go through
// one reused buffer and sha256.Sum256.
func (rc *rowConverter) id() string {
	b := rc.idBuf[:0]
	for _, p := range rc.idParts {
		b = append(b, p...)
		b = append(b, 0)
	}
	rc.idBuf = b
	sum := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

// lastTime returns the first tracking column of the last row converted as
// a time, or the zero time when it is not temporal.
func (rc *rowConverter) lastTime() time.Time {
	loc := rc.s.o.conn.loc
	switch rc.dec.kinds[rc.track[0]] {
	case kTimestamp:
		loc = time.UTC
	case kDateTime, kDate:
	default:
		return time.Time{}
	}
	t, _, err := parseDateTime(rc.lastRaw[0], loc)
	if err != nil {
		return time.Time{}
	}
	return t
}

// last returns the watermark of the last row converted.
func (rc *rowConverter) last() watermark {
	w := make(watermark, len(rc.track))
	for i, ci := range rc.track {
		w[i] = wmValue{wmKind(rc.dec.kinds[ci]), string(rc.lastRaw[i])}
	}
	return w
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	for i, n := range names {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// acker returns the Ack of a batch read in generation gen, ending at last.
func (s *Source) acker(gen uint64, last watermark, consume [][]any) func(context.Context, error) error {
	return func(ctx context.Context, err error) error {
		s.mu.Lock()
		if err != nil {
			s.rewind = true
		}
		stale := s.rewind || gen != s.gen
		p := s.pool
		s.mu.Unlock()
		if stale {
			return nil
		}
		fail := func(err error) error {
			s.mu.Lock()
			s.rewind = true
			s.mu.Unlock()
			return fmt.Errorf("source %q: %w", s.res.Name, err)
		}
		if consume != nil {
			if err := s.runConsume(ctx, p, consume); err != nil {
				return fail(classified(p.red.wrap(err)))
			}
		}
		if err := s.saveWatermark(ctx, last); err != nil {
			return fail(err)
		}
		s.mu.Lock()
		s.committed = last
		s.mu.Unlock()
		return nil
	}
}

// runConsume runs on_consume once per row, in one transaction.
func (s *Source) runConsume(ctx context.Context, p *pool, rows [][]any) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("on_consume: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, args := range rows {
		if _, err := tx.ExecContext(ctx, s.o.onConsume.sql, args...); err != nil {
			return fmt.Errorf("on_consume: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("on_consume: commit: %w", err)
	}
	return nil
}

// Health pings the server.
func (s *Source) Health(ctx context.Context) error {
	p := s.db()
	if p == nil {
		return adapters.ErrNotConnected
	}
	if err := p.db.PingContext(ctx); err != nil {
		return classified(p.red.wrap(err))
	}
	return nil
}

// Close stops Read and closes the pool. It is idempotent.
func (s *Source) Close(context.Context) error {
	var err error
	s.closer.Do(func() {
		close(s.closed)
		s.mu.Lock()
		p := s.pool
		s.mu.Unlock()
		if p != nil {
			err = p.db.Close()
		}
	})
	if errors.Is(err, sql.ErrConnDone) {
		err = nil
	}
	return err
}
