// Command mysql benchmarks the mysql source and sink adapters against
// go-sql-driver/mysql used by hand for the same work, on the same server,
// in the same run.
//
//	go run ./bench/mysql                        # 1M rows, as in docs/benchmarks.md
//	go run ./bench/mysql -rows 200000 -profile /tmp/prof
//
// It fills a table of -rows rows, then measures:
//
//   - read, driver: SELECT pages of -batch rows in keyset order, scanned
//     into sql.RawBytes (the floor for any reader);
//   - read, sluice source: the mysql source (run --once) reading the same
//     pages into records;
//   - write, driver: multi-row INSERTs of -batch rows, one statement per
//     batch, autocommit; with interpolated parameters (one round trip) and
//     with server-side prepared statements; the values are the records the
//     source read, converted to driver arguments outside the timing;
//   - write, sluice sink: the mysql sink writing the same records in
//     batches of -batch (Write = one transaction);
//   - end to end: the sluice binary, `run --once`, mysql source → disk
//     queue → mysql sink (and the memory broker for comparison).
//
// Write phases start from an empty copy of the table. Times are wall
// clock around the calls measured only.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
	_ "github.com/sluicehq/sluice/adapters/mysql"
	"github.com/sluicehq/sluice/broker/disk"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/pipeline"
)

const table = `CREATE TABLE %s (
	id BIGINT NOT NULL PRIMARY KEY,
	updated_at DATETIME(6) NOT NULL,
	customer VARCHAR(40) NOT NULL,
	sku VARCHAR(16) NOT NULL,
	qty INT NOT NULL,
	price DECIMAL(12,2) NOT NULL,
	status VARCHAR(12) NOT NULL,
	note VARCHAR(100) NULL,
	KEY k_upd (updated_at, id)
) ENGINE=InnoDB`

var columns = []string{"id", "updated_at", "customer", "sku", "qty", "price", "status", "note"}

type bench struct {
	server  string // DSN without database
	dbName  string
	rows    int
	batch   int
	profile string
	db      *sql.DB
}

func main() {
	def := os.Getenv("MYSQL_DSN")
	if def == "" {
		def = "root@tcp(127.0.0.1:3306)/"
	}
	b := &bench{}
	flag.StringVar(&b.server, "dsn", def, "server DSN; its database is ignored (env MYSQL_DSN)")
	flag.StringVar(&b.dbName, "db", "sluice_bench", "database to create and use (dropped at the end)")
	flag.IntVar(&b.rows, "rows", 1_000_000, "rows in the table")
	flag.IntVar(&b.batch, "batch", 1000, "rows per query, per INSERT and per sink Write")
	flag.StringVar(&b.profile, "profile", "", "write CPU profiles of the source and sink phases to this directory")
	e2e := flag.Bool("e2e", true, "also run the sluice binary end to end")
	only := flag.Bool("e2e-only", false, "run only the end-to-end phases")
	brokers := flag.String("brokers", "disk,memory", "brokers of the end-to-end runs of the binary")
	keep := flag.Bool("keep", false, "keep the database")
	rounds := flag.Int("rounds", 3, "rounds of every phase; the best time of each counts")
	flag.Parse()

	cfg, err := mysqldrv.ParseDSN(b.server)
	if err != nil {
		log.Fatalf("-dsn: %v", err)
	}
	cfg.DBName = ""
	b.server = cfg.FormatDSN()
	b.db = open(b.server, "", true)
	defer b.db.Close()
	var version string
	must(b.db.QueryRow("SELECT VERSION()").Scan(&version))
	fmt.Printf("server %s, %d rows, batches of %d, %d CPUs, %s\n\n", version, b.rows, b.batch, runtime.NumCPU(), runtime.Version())
	b.setup()
	if !*keep {
		defer b.db.Exec("DROP DATABASE `" + b.dbName + "`")
	}

	// Each round runs every phase; the best time of each phase counts, so
	// that other load on the machine disturbs the comparison less.
	// Client CPU per row (getrusage of this process around each phase,
	// setup included) does not depend on the load; the server's does not
	// show here.
	best := map[string]time.Duration{}
	bestCPU := map[string]time.Duration{}
	pairedTotal := make([]time.Duration, 3) // interpolated, prepared, sink, over all rounds
	var order []string
	phase := func(name string, f func() time.Duration) {
		cpu0 := cpuTime()
		d := f()
		cpu := cpuTime() - cpu0
		if _, ok := best[name]; !ok {
			order = append(order, name)
		}
		if old, ok := best[name]; !ok || d < old {
			best[name] = d
		}
		if old, ok := bestCPU[name]; !ok || cpu < old {
			bestCPU[name] = cpu
		}
		fmt.Fprintf(os.Stderr, "  %-36s %9.0f rows/s %6.2f µs CPU/row\n", name, float64(b.rows)/d.Seconds(), float64(cpu.Nanoseconds())/1e3/float64(b.rows))
	}
	var msgs []adapters.Message
	var args [][]any
	if !*only {
		msgs, _ = b.readSource([]any{"updated_at", "id"}, true) // the rows every write phase writes
		args = toArgs(msgs)
	}
	for r := 1; r <= *rounds && !*only; r++ {
		fmt.Fprintf(os.Stderr, "round %d\n", r)
		phase("read: driver, keyset (id)", func() time.Duration { return b.readDriver(false) })
		phase("read: driver, keyset (updated_at, id)", func() time.Duration { return b.readDriver(true) })
		phase("read: sluice source (id)", func() time.Duration { _, d := b.readSource([]any{"id"}, false); return d })
		phase("read: sluice source (updated_at, id)", func() time.Duration { _, d := b.readSource([]any{"updated_at", "id"}, false); return d })
		phase("write: driver, interpolated", func() time.Duration { return b.timeWrite(b.driverWriter(args, true, "dst_driver"), "driver") })
		phase("write: driver, prepared", func() time.Duration { return b.timeWrite(b.driverWriter(args, false, "dst_driver"), "prepared") })
		phase("write: sluice sink", func() time.Duration { return b.timeWrite(b.sinkWriter(msgs, "dst_sink"), "sink") })
		ts := b.paired([]writer{b.driverWriter(args, true, "dst_p_interp"), b.driverWriter(args, false, "dst_p_prep"), b.sinkWriter(msgs, "dst_p_sink")})
		for i, name := range []string{"interpolated", "prepared", "sink"} {
			pairedTotal[i] += ts[i]
			fmt.Fprintf(os.Stderr, "  paired %-29s %9.0f rows/s\n", name, float64(b.rows)/ts[i].Seconds())
		}
	}
	if !*only {
		fmt.Printf("\nbest of %d rounds:\n%-40s %12s %9s %14s\n", *rounds, "phase", "rows/s", "seconds", "client µs/row")
		rate := func(name string) float64 { return float64(b.rows) / best[name].Seconds() }
		for _, name := range order {
			fmt.Printf("%-40s %12.0f %9.2f %14.2f\n", name, rate(name), best[name].Seconds(), float64(bestCPU[name].Nanoseconds())/1e3/float64(b.rows))
		}
		base := max(rate("write: driver, interpolated"), rate("write: driver, prepared"))
		fmt.Printf("\nsink / best driver baseline: %.0f%% (target 80%%); source (updated_at, id): %.0f rows/s (target 200000)\n",
			100*rate("write: sluice sink")/base, rate("read: sluice source (updated_at, id)"))
		n := float64(b.rows * *rounds)
		pi, pp, ps := n/pairedTotal[0].Seconds(), n/pairedTotal[1].Seconds(), n/pairedTotal[2].Seconds()
		fmt.Printf("paired writes, turns of %d rows rotating between the three, all rounds: driver interpolated %.0f, prepared %.0f, sink %.0f rows/s: sink / best %.0f%%\n",
			20*b.batch, pi, pp, ps, 100*ps/max(pi, pp))
	}
	if *e2e {
		runtime.GC()
		fmt.Println()
		for _, broker := range strings.Split(*brokers, ",") {
			if broker == "" {
				continue
			}
			d, rss := b.endToEnd(broker)
			fmt.Printf("%-40s %12.0f %9.2f   peak RSS %d MB\n", "end to end: sluice run --once, "+broker, float64(b.rows)/d.Seconds(), d.Seconds(), rss/1024)
		}
		if b.profile != "" {
			d := b.endToEndInProcess()
			fmt.Printf("%-40s %12.0f %9.2f   (in process, profiled)\n", "end to end: disk", float64(b.rows)/d.Seconds(), d.Seconds())
		}
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func open(server, db string, interpolate bool) *sql.DB {
	cfg, err := mysqldrv.ParseDSN(server)
	must(err)
	cfg.DBName = db
	cfg.InterpolateParams = interpolate
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	conn, err := mysqldrv.NewConnector(cfg)
	must(err)
	d := sql.OpenDB(conn)
	d.SetMaxOpenConns(4)
	d.SetMaxIdleConns(4)
	return d
}

func (b *bench) dsn() string {
	cfg, _ := mysqldrv.ParseDSN(b.server)
	cfg.DBName = b.dbName
	return cfg.FormatDSN()
}

// setup creates the source table, filled server-side from a sequence.
func (b *bench) setup() {
	_, _ = b.db.Exec("DROP DATABASE IF EXISTS `" + b.dbName + "`")
	mustExec(b.db, "CREATE DATABASE `"+b.dbName+"`")
	mustExec(b.db, "USE `"+b.dbName+"`")
	db := open(b.server, b.dbName, true)
	defer db.Close()
	mustExec(db, fmt.Sprintf(table, "src"))
	start := time.Now()
	for lo := 1; lo <= b.rows; lo += 100_000 {
		hi := min(lo+100_000-1, b.rows)
		mustExec(db, fmt.Sprintf(`INSERT INTO src
			SELECT seq, '2024-01-01' + INTERVAL (seq DIV 50) SECOND + INTERVAL (seq %% 7) MICROSECOND,
			CONCAT('customer-', LPAD(seq %% 50000, 5, '0')), CONCAT('SKU-', seq %% 9973), 1 + seq %% 50,
			(seq %% 100000) / 100, ELT(1 + seq %% 4, 'open', 'paid', 'shipped', 'cancelled'),
			IF(seq %% 10 = 0, NULL, CONCAT('note for order ', seq, ' with some free text'))
			FROM seq_%d_to_%d`, lo, hi))
	}
	fmt.Printf("filled src in %.1fs\n\n", time.Since(start).Seconds())
}

func mustExec(db *sql.DB, q string, args ...any) {
	if _, err := db.Exec(q, args...); err != nil {
		log.Fatalf("%s: %v", firstLine(q), err)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (b *bench) resetCopy(name string) {
	db := open(b.server, b.dbName, true)
	defer db.Close()
	mustExec(db, "DROP TABLE IF EXISTS "+name)
	mustExec(db, fmt.Sprintf(table, name))
}

func startProfile(dir, name string) func() {
	if dir == "" {
		return func() {}
	}
	must(os.MkdirAll(dir, 0o755))
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	must(err)
	must(pprof.StartCPUProfile(f))
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// readDriver pages through src in keyset order, by id or by (updated_at,
// id) as the source does, scanning into RawBytes.
func (b *bench) readDriver(compound bool) time.Duration {
	db := open(b.server, b.dbName, true)
	defer db.Close()
	raw := make([]sql.RawBytes, len(columns))
	dest := make([]any, len(columns))
	for i := range raw {
		dest[i] = &raw[i]
	}
	start := time.Now()
	var lastID int64
	var lastAt string
	n := 0
	for {
		var rows *sql.Rows
		var err error
		switch {
		case !compound:
			rows, err = db.Query("SELECT * FROM src WHERE id > ? ORDER BY id LIMIT ?", lastID, b.batch)
		case lastAt == "":
			rows, err = db.Query("SELECT * FROM src ORDER BY updated_at, id LIMIT ?", b.batch)
		default:
			rows, err = db.Query("SELECT * FROM src WHERE updated_at > ? OR (updated_at = ? AND id > ?) ORDER BY updated_at, id LIMIT ?",
				lastAt, lastAt, lastID, b.batch)
		}
		must(err)
		got := 0
		for rows.Next() {
			must(rows.Scan(dest...))
			got++
			lastAt = string(raw[1])
			lastID = 0
			for _, c := range raw[0] {
				lastID = lastID*10 + int64(c-'0')
			}
		}
		must(rows.Err())
		rows.Close()
		n += got
		if got < b.batch {
			break
		}
	}
	if n != b.rows {
		log.Fatalf("driver read %d rows, want %d", n, b.rows)
	}
	return time.Since(start)
}

// readSource reads src through the mysql source, run --once.
//
// With keep the messages are returned; without, they are dropped as the
// engine drops them once enqueued (holding a million records in memory
// would double the garbage collector's work and slow the reading).
func (b *bench) readSource(tracking []any, keep bool) ([]adapters.Message, time.Duration) {
	spec, err := adapters.SourceSpec("mysql")
	must(err)
	conf, err := adapters.Decode(spec, map[string]any{
		"dsn": b.dsn(), "table": "src", "tracking_columns": tracking, "batch_size": b.batch,
	}, adapters.DecodeOptions{Path: "bench"})
	must(err)
	res := adapters.Resources{Pipeline: "bench", Name: "src", Logger: slog.New(slog.DiscardHandler), State: statestore.Memory(), Once: true}
	src, err := adapters.NewSource("mysql", conf, res)
	must(err)
	defer src.Close(context.Background())
	ctx := context.Background()
	must(src.Connect(ctx))
	var msgs []adapters.Message
	if keep {
		msgs = make([]adapters.Message, 0, b.rows)
	}
	n := 0
	stop := startProfile(b.profile, "source")
	var d time.Duration
	for {
		start := time.Now()
		batch, err := src.Read(ctx)
		if errors.Is(err, adapters.ErrEndOfInput) {
			break
		}
		must(err)
		must(batch.Ack(ctx, nil))
		d += time.Since(start)
		n += len(batch.Messages)
		if keep {
			msgs = append(msgs, batch.Messages...)
		}
	}
	stop()
	if n != b.rows {
		log.Fatalf("source read %d rows, want %d", n, b.rows)
	}
	return msgs, d
}

// toArgs converts records to driver arguments, as a hand-written loader
// would hold them.
func toArgs(msgs []adapters.Message) [][]any {
	out := make([][]any, len(msgs))
	for i, m := range msgs {
		row := make([]any, len(columns))
		for j, c := range columns {
			v := m.Record[c]
			switch x := v.(type) {
			case decimal.Decimal:
				v = x.StringFixed(2)
			case time.Time:
				v = x.UTC()
			}
			row[j] = v
		}
		out[i] = row
	}
	return out
}

// writer writes rows [lo, hi) of the data set, in batches, to its own
// table; close checks the table holds every row and releases it.
type writer struct {
	write func(lo, hi int)
	close func()
}

// driverWriter inserts args into a fresh table with multi-row INSERTs, one
// statement per batch, autocommit.
func (b *bench) driverWriter(args [][]any, interpolate bool, table string) writer {
	b.resetCopy(table)
	db := open(b.server, b.dbName, interpolate)
	stmt := func(n int) string {
		var s strings.Builder
		s.WriteString("INSERT INTO " + table + " (" + strings.Join(columns, ",") + ") VALUES ")
		row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(columns)), ",") + ")"
		for i := 0; i < n; i++ {
			if i > 0 {
				s.WriteByte(',')
			}
			s.WriteString(row)
		}
		return s.String()
	}
	full := stmt(b.batch)
	flat := make([]any, 0, b.batch*len(columns))
	return writer{
		write: func(lo, hi int) {
			for blo := lo; blo < hi; blo += b.batch {
				bhi := min(blo+b.batch, hi)
				flat = flat[:0]
				for _, r := range args[blo:bhi] {
					flat = append(flat, r...)
				}
				q := full
				if bhi-blo != b.batch {
					q = stmt(bhi - blo)
				}
				if _, err := db.Exec(q, flat...); err != nil {
					log.Fatal(err)
				}
			}
		},
		close: func() { db.Close(); b.checkCount(table) },
	}
}

// sinkWriter writes the records through the mysql sink, one Write per
// batch, into a fresh table.
func (b *bench) sinkWriter(msgs []adapters.Message, table string) writer {
	b.resetCopy(table)
	spec, err := adapters.SinkSpec("mysql")
	must(err)
	conf, err := adapters.Decode(spec, map[string]any{"dsn": b.dsn(), "table": table}, adapters.DecodeOptions{Path: "bench"})
	must(err)
	res := adapters.Resources{Pipeline: "bench", Name: "dst", Logger: slog.New(slog.DiscardHandler), State: statestore.Memory()}
	sink, err := adapters.NewSink("mysql", conf, res)
	must(err)
	ctx := context.Background()
	must(sink.Connect(ctx))
	return writer{
		write: func(lo, hi int) {
			for blo := lo; blo < hi; blo += b.batch {
				if err := sink.Write(ctx, msgs[blo:min(blo+b.batch, hi)]); err != nil {
					log.Fatal(err)
				}
			}
		},
		close: func() { _ = sink.Close(ctx); b.checkCount(table) },
	}
}

func (b *bench) checkCount(table string) {
	var n int
	must(b.db.QueryRow("SELECT COUNT(*) FROM `" + b.dbName + "`." + table).Scan(&n))
	if n != b.rows {
		log.Fatalf("%s holds %d rows, want %d", table, n, b.rows)
	}
}

// timeWrite runs one writer over the whole data set.
func (b *bench) timeWrite(w writer, profile string) time.Duration {
	stop := startProfile(b.profile, profile)
	start := time.Now()
	w.write(0, b.rows)
	d := time.Since(start)
	stop()
	w.close()
	return d
}

// paired runs the writers over the data set in turns of 20 batches, the
// order rotating each turn, so that they share the same moments of the
// machine's other load; it returns each writer's total time.
func (b *bench) paired(ws []writer) []time.Duration {
	total := make([]time.Duration, len(ws))
	chunk := 20 * b.batch
	for turn, lo := 0, 0; lo < b.rows; turn, lo = turn+1, lo+chunk {
		hi := min(lo+chunk, b.rows)
		for k := range ws {
			i := (turn + k) % len(ws)
			start := time.Now()
			ws[i].write(lo, hi)
			total[i] += time.Since(start)
		}
	}
	for _, w := range ws {
		w.close()
	}
	return total
}

const e2ePipeline = `pipelines:
  copy:
    sources:
      - name: src
        type: mysql
        dsn: ${BENCH_DSN}
        table: src
        tracking_columns: [updated_at, id]
        batch_size: %d
    queues:
      rows: {max_bytes: 1GiB}
    sinks:
      - name: dst
        type: mysql
        dsn: ${BENCH_DSN}
        table: dst_e2e
        batch_size: %d
`

// endToEnd runs the sluice binary and returns the wall time and the peak
// RSS in KiB.
func (b *bench) endToEnd(broker string) (time.Duration, int64) {
	b.resetCopy("dst_e2e")
	dir, err := os.MkdirTemp("", "sluice-bench-mysql")
	must(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice")
	if out, err := build.CombinedOutput(); err != nil {
		log.Fatalf("go build: %v\n%s", err, out)
	}
	cfgFile := filepath.Join(dir, "pipeline.yaml")
	must(os.WriteFile(cfgFile, []byte(fmt.Sprintf(e2ePipeline, b.batch, b.batch)), 0o644))
	cmd := exec.Command(bin, "run", "--once", "-c", cfgFile, "--data-dir", filepath.Join(dir, "data"), "--broker", broker, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "BENCH_DSN="+b.dsn())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	must(cmd.Start())
	// VmHWM of the child itself: the rusage of a child started by fork and
	// exec also counts the parent's resident memory.
	var hwm int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if v := vmHWM(cmd.Process.Pid); v > 0 {
				hwm = v
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-stop:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(stop)
	<-done
	if err != nil {
		log.Fatalf("sluice run: %v", err)
	}
	d := time.Since(start)
	var n int
	must(b.db.QueryRow("SELECT COUNT(*) FROM `" + b.dbName + "`.dst_e2e").Scan(&n))
	if n != b.rows {
		log.Fatalf("end to end wrote %d rows, want %d", n, b.rows)
	}
	return d, hwm
}

// endToEndInProcess runs the same pipeline in this process, on the disk
// broker, under the CPU profiler.
func (b *bench) endToEndInProcess() time.Duration {
	b.resetCopy("dst_e2e")
	dir, err := os.MkdirTemp("", "sluice-bench-mysql")
	must(err)
	defer os.RemoveAll(dir)
	env := func(k string) (string, bool) {
		if k == "BENCH_DSN" {
			return b.dsn(), true
		}
		return "", false
	}
	cfg, err := pipeline.LoadBytes("pipeline.yaml", []byte(fmt.Sprintf(e2ePipeline, b.batch, b.batch)), pipeline.LoadOptions{Env: env})
	must(err)
	br, err := disk.Open(filepath.Join(dir, "data"), disk.Options{Logger: slog.New(slog.DiscardHandler)})
	must(err)
	defer br.Close()
	store, err := statestore.Open(filepath.Join(dir, "state"))
	must(err)
	defer store.Close()
	var writes, written int64
	var inWrite time.Duration
	var reads, read int64
	var mu sync.Mutex
	hooks := pipeline.Hooks{
		SinkWrite: func(_, _ string, ok int, _ map[adapters.Kind]int, d time.Duration) {
			mu.Lock()
			writes++
			written += int64(ok)
			inWrite += d
			mu.Unlock()
		},
		SourceRead: func(_, _ string, n int) {
			mu.Lock()
			reads++
			read += int64(n)
			mu.Unlock()
		},
	}
	agent := pipeline.NewAgent(pipeline.Options{Broker: br, Memory: br, Once: true, Hooks: hooks,
		State: func(p, c string) adapters.State { return store.Namespace(p + "/" + c + "/") }})
	defer func() {
		fmt.Printf("  in process: %d source batches of %.0f rows; %d sink writes of %.0f rows, %.1fs in Write\n",
			reads, float64(read)/float64(max(reads, 1)), writes, float64(written)/float64(max(writes, 1)), inWrite.Seconds())
	}()
	stop := startProfile(b.profile, "e2e")
	start := time.Now()
	_, err = agent.Apply(context.Background(), cfg)
	must(err)
	_ = agent.Wait(context.Background())
	_ = agent.Stop(context.Background())
	d := time.Since(start)
	stop()
	return d
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmHWM returns the peak resident set of a process in KiB, or 0.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb
		}
	}
	return 0
}
