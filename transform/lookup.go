package transform

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// Lookup tables: small reference files (country codes, product names, rate
// tables) loaded when a pipeline starts and reached from expressions with
// lookup("country", record.code). A table is reloaded when its file changes;
// a reload that fails keeps the previous table and logs why.
//
// Expressions are compiled once per process but tables belong to a
// pipeline: the engine loads a pipeline's tables with LoadLookups and gives
// them to each of the pipeline's Runners with SetLookups; the patcher
// passes the Runner's tables to every lookup call.

// LookupSpec declares one lookup table.
type LookupSpec struct {
	// Name is how expressions refer to the table.
	Name string
	// Path of the file.
	Path string
	// Format is "csv" or "yaml"; empty infers it from the extension (.csv,
	// .yaml, .yml).
	Format string
	// Key is the CSV column (default: the first) or, for a YAML list of
	// objects, the field holding each entry's key.
	Key string
	// Value is the CSV column or YAML field that is the looked-up value;
	// empty means the whole row or entry, as an object.
	Value string
	// Delimiter separates CSV fields; zero means a comma.
	Delimiter rune
}

// LookupOptions tune LoadLookups.
type LookupOptions struct {
	// Logger receives reload messages; nil discards them.
	Logger *slog.Logger
	// Poll is how often files are checked for a changed size or
	// modification time, besides file system notifications (which a network
	// file system may not deliver). Zero means 5s; negative disables polling.
	Poll time.Duration
	// OnReload, when set, is called after every reload attempt of a table,
	// with the error that kept the previous version, or nil: from the
	// watcher goroutine, or from the goroutine calling Reload.
	OnReload func(table string, err error)
}

// Lookups is a pipeline's set of lookup tables. Get is safe for concurrent
// use and never blocks on a reload: a reload builds the new table aside and
// swaps it in atomically.
type Lookups struct {
	tables map[string]*lookupTable // fixed after LoadLookups
	names  []string
	log    *slog.Logger
	opts   LookupOptions

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type lookupTable struct {
	spec LookupSpec
	path string // absolute and clean, to match file system events
	data atomic.Pointer[tableData]

	mu   sync.Mutex // serialises reloads; guards seen
	seen fileStamp  // stamp of the file at the last load attempt
}

type tableData struct {
	rows map[string]any
}

type fileStamp struct {
	size    int64
	modTime time.Time
}

// LoadLookups loads every table and starts watching their files. It
// reports every spec or file problem at once. Close the result when the
// pipeline stops.
func LoadLookups(specs []LookupSpec, opts LookupOptions) (*Lookups, error) {
	l := &Lookups{tables: make(map[string]*lookupTable, len(specs)), opts: opts, log: opts.Logger,
		stop: make(chan struct{}), done: make(chan struct{})}
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var errs []error
	for _, s := range specs {
		if err := checkLookupSpec(&s); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := l.tables[s.Name]; dup {
			errs = append(errs, fmt.Errorf("lookup table %q is declared twice", s.Name))
			continue
		}
		abs, err := filepath.Abs(s.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("lookup table %q: %w", s.Name, err))
			continue
		}
		l.tables[s.Name] = &lookupTable{spec: s, path: abs}
		l.names = append(l.names, s.Name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Strings(l.names)
	w := l.startWatch()
	for _, name := range l.names {
		if err := l.tables[name].reload(); err != nil {
			errs = append(errs, fmt.Errorf("lookup table %q: %w", name, err))
		}
	}
	if len(errs) > 0 {
		if w != nil {
			w.Close()
		}
		return nil, errors.Join(errs...)
	}
	go l.watch(w)
	return l, nil
}

func checkLookupSpec(s *LookupSpec) error {
	if s.Name == "" {
		return errors.New("a lookup table needs a name")
	}
	if s.Path == "" {
		return fmt.Errorf("lookup table %q: path is missing", s.Name)
	}
	if s.Format == "" {
		switch strings.ToLower(filepath.Ext(s.Path)) {
		case ".csv":
			s.Format = "csv"
		case ".yaml", ".yml":
			s.Format = "yaml"
		default:
			return fmt.Errorf("lookup table %q: cannot tell the format of %s from its extension; set format: csv or yaml", s.Name, s.Path)
		}
	}
	if s.Format != "csv" && s.Format != "yaml" {
		return fmt.Errorf("lookup table %q: unknown format %q (known: csv, yaml)", s.Name, s.Format)
	}
	if s.Delimiter == 0 {
		s.Delimiter = ','
	}
	return nil
}

// Tables returns the names of the tables, sorted.
func (l *Lookups) Tables() []string { return append([]string(nil), l.names...) }

// Len returns the number of keys of a table, or -1 for an unknown table.
func (l *Lookups) Len(table string) int {
	t, ok := l.tables[table]
	if !ok {
		return -1
	}
	return len(t.data.Load().rows)
}

// Get looks key up in table. Keys are compared as text, so the integer 42
// finds the row whose key is "42". An object or array value is a copy the
// caller may modify.
func (l *Lookups) Get(table string, key any) (v any, found bool, err error) {
	if l == nil {
		return nil, false, errors.New("no lookup tables are declared for this pipeline (declare them under lookups:)")
	}
	t, ok := l.tables[table]
	if !ok {
		known := "none"
		if len(l.names) > 0 {
			known = strings.Join(l.names, ", ")
		}
		return nil, false, fmt.Errorf("unknown lookup table %q (declared: %s)", table, known)
	}
	var k string
	switch x := key.(type) {
	case nil:
		return nil, false, nil
	case string:
		k = x
	default:
		s, _, err := textOf(1, "key", key)
		if err != nil {
			return nil, false, err
		}
		k = s
	}
	v, found = t.data.Load().rows[k]
	return deepCopy(v), found, nil
}

// Reload reloads a table now, whether or not its file changed. On failure
// the previous table stays.
func (l *Lookups) Reload(table string) error {
	t, ok := l.tables[table]
	if !ok {
		return fmt.Errorf("unknown lookup table %q", table)
	}
	return l.reloadLogged(t)
}

// Close stops watching the files; the tables stay readable. It is
// idempotent.
func (l *Lookups) Close() error {
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

func (l *Lookups) reloadLogged(t *lookupTable) error {
	err := t.reload()
	if err != nil {
		l.log.Warn("lookup table reload failed; keeping the previous version",
			"table", t.spec.Name, "path", t.spec.Path, "error", err)
	} else {
		l.log.Info("lookup table reloaded", "table", t.spec.Name, "path", t.spec.Path, "keys", len(t.data.Load().rows))
	}
	if l.opts.OnReload != nil {
		l.opts.OnReload(t.spec.Name, err)
	}
	return err
}

// reload reads the file and swaps the new table in.
func (t *lookupTable) reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, err := statFile(t.path)
	t.seen = st
	if err != nil {
		return err
	}
	rows, err := readTable(&t.spec)
	if err != nil {
		return err
	}
	t.data.Store(&tableData{rows: rows})
	return nil
}

// changed reports whether the file's stamp differs from the last load
// attempt.
func (t *lookupTable) changed() bool {
	st, _ := statFile(t.path)
	t.mu.Lock()
	defer t.mu.Unlock()
	return st != t.seen
}

// deepCopy copies objects and arrays so that a stage modifying a looked-up
// row does not modify the table.
func deepCopy(v any) any {
	switch x := v.(type) {
	case adapters.Record:
		out := make(adapters.Record, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// SetLookups gives the Runner a pipeline's lookup tables; nil removes them.
func (r *Runner) SetLookups(l *Lookups) { r.env.Lookups = l }

func init() {
	registerLib(libFunc{name: "lookup", hidden: 1,
		params: []libParam{{"tables", kLookup}, {"table", kStr}, {"key", kAny}, {"default", kAny}}, opt: 1,
		doc: "lookup(table, key[, default]) → any: the value of key (compared as text) in the pipeline's lookup table, a string or, for a table without a value column, the whole row as an object; a missing key or a nil key gives default (nil when none is given); an undeclared table is an error",
		fn: func(a []any) (any, error) {
			l, _ := a[0].(*Lookups)
			name, ok := a[1].(string)
			if !ok {
				return nil, argError(0, "table", "a table name", a[1])
			}
			v, found, err := l.Get(name, a[2])
			if err != nil {
				return nil, err
			}
			if !found && len(a) > 3 {
				return a[3], nil
			}
			return v, nil
		}})
}
