package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/adapters"
)

// TLS modes of the `tls` key.
const (
	tlsDisabled  = "disabled"  // plain text
	tlsPreferred = "preferred" // TLS when the server offers it, unverified
	tlsRequired  = "required"  // TLS or fail; the chain is verified against ca_file when given
	tlsVerify    = "verify"    // TLS with the chain and host name verified
)

// connFields are the connection keys shared by the source and the sink.
func connFields(maxOpen int) []adapters.Field {
	return []adapters.Field{
		{Name: "dsn", Type: adapters.TypeString, Optional: true, Secret: true,
			Description: "go-sql-driver/mysql DSN, `user:password@tcp(host:3306)/database?param=value`. Give it through the environment (`dsn: ${ERP_DSN}`) or `dsn_file`; it excludes host, port, user, password and database.",
			Example:     "${ERP_DSN}"},
		{Name: "dsn_file", Type: adapters.TypeString, Optional: true,
			Description: "File holding the DSN (surrounding white space ignored), read at each connect; relative to the pipeline file.",
			Example:     "/etc/sluice/erp.dsn"},
		{Name: "host", Type: adapters.TypeString, Optional: true, Description: "Server host name or address (without dsn); default 127.0.0.1.", Example: "db.example.com"},
		{Name: "port", Type: adapters.TypeInt, Optional: true, Description: "Server TCP port (without dsn); default 3306.", Example: 3306,
			Check: func(v any) error {
				if n := v.(int64); n < 1 || n > 65535 {
					return fmt.Errorf("want a port from 1 to 65535, got %d", n)
				}
				return nil
			}},
		{Name: "user", Type: adapters.TypeString, Optional: true, Description: "User name (required without dsn).", Example: "sluice"},
		{Name: "password", Type: adapters.TypeString, Optional: true, Secret: true, Description: "Password; prefer `${VAR}` or password_file."},
		{Name: "password_file", Type: adapters.TypeString, Optional: true, Description: "File holding the password (one trailing newline ignored), read at each connect; relative to the pipeline file.", Example: "/etc/sluice/erp.password"},
		{Name: "database", Type: adapters.TypeString, Optional: true, Description: "Default database (required without dsn).", Example: "erp"},
		{Name: "tls", Type: adapters.TypeString, Optional: true, Enum: []string{tlsDisabled, tlsPreferred, tlsRequired, tlsVerify},
			Description: "TLS: `disabled`; `preferred` (TLS when the server offers it, certificate not checked; the default without dsn); `required` (TLS or no connection; with ca_file the chain is verified, not the host name); `verify` (chain and host name verified against ca_file or the system roots). With dsn, the DSN's own `tls` parameter applies unless this key is given."},
		{Name: "ca_file", Type: adapters.TypeString, Optional: true, Description: "PEM file of the CA certificates that sign the server's certificate (tls: required or verify); relative to the pipeline file."},
		{Name: "max_open_conns", Type: adapters.TypeInt, Default: maxOpen, Description: "Most connections open at once.",
			Check: positive},
		{Name: "conn_max_lifetime", Type: adapters.TypeDuration, Default: "30m", Description: "Connections older than this are closed and replaced (0: never)."},
		{Name: "connect_timeout", Type: adapters.TypeDuration, Default: "10s", Description: "Timeout of each TCP connect and handshake."},
		{Name: "io_timeout", Type: adapters.TypeDuration, Default: "5m", Description: "Timeout of each network read or write on a connection (0: none), so that a half-open connection cannot hang forever; must exceed the longest single query."},
		{Name: "time_zone", Type: adapters.TypeString, Default: "UTC",
			Description: "Time zone (IANA name or `Local`) of DATETIME and DATE values: the source reads them as times in this zone and the sink writes times converted to it. TIMESTAMP values are exact instants either way: the session time zone is +00:00.",
			Example:     "Europe/Paris",
			Check: func(v any) error {
				_, err := time.LoadLocation(v.(string))
				return err
			}},
	}
}

func positive(v any) error {
	if n := v.(int64); n < 1 {
		return fmt.Errorf("want a number of 1 or more, got %d", n)
	}
	return nil
}

// checkConn validates the relations between the connection keys.
func checkConn(conf *adapters.Config) error {
	var errs adapters.Errors
	add := func(err error) { errs = append(errs, adapters.AsErrors(err, conf.Path(), 0)...) }
	hasDSN := conf.Has("dsn") || conf.Has("dsn_file")
	if conf.Has("dsn") && conf.Has("dsn_file") {
		add(conf.Errorf("dsn_file", "give dsn or dsn_file, not both"))
	}
	if hasDSN {
		for _, k := range []string{"host", "port", "user", "password", "password_file", "database"} {
			if conf.Has(k) {
				add(conf.Errorf(k, "%s cannot be combined with dsn or dsn_file, which name the server already", k))
			}
		}
	} else {
		for _, k := range []string{"user", "database"} {
			if !conf.Has(k) {
				add(conf.Errorf(k, "required without dsn or dsn_file"))
			}
		}
	}
	if conf.Has("password") && conf.Has("password_file") {
		add(conf.Errorf("password_file", "give password or password_file, not both"))
	}
	if conf.Has("ca_file") {
		if m := conf.String("tls"); m != tlsRequired && m != tlsVerify {
			add(conf.Errorf("ca_file", "ca_file needs tls: required or tls: verify"))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// connOptions is the decoded connection configuration. It holds secrets: it
// is never formatted.
type connOptions struct {
	dsn, dsnFile                     string
	host                             string
	port                             int
	user, password, passwordFile, db string
	tlsMode, caFile                  string
	maxOpen                          int
	maxLifetime, timeout, ioTimeout  time.Duration
	loc                              *time.Location
	baseDir                          string // relative files are resolved here
}

func newConnOptions(conf *adapters.Config) (*connOptions, error) {
	loc, err := time.LoadLocation(conf.String("time_zone"))
	if err != nil {
		return nil, conf.Errorf("time_zone", "%v", err)
	}
	o := &connOptions{
		dsn: conf.String("dsn"), dsnFile: conf.String("dsn_file"),
		host: conf.String("host"), port: conf.Int("port"),
		user: conf.String("user"), password: conf.String("password"), passwordFile: conf.String("password_file"),
		db:      conf.String("database"),
		tlsMode: conf.String("tls"), caFile: conf.String("ca_file"),
		maxOpen:     conf.Int("max_open_conns"),
		maxLifetime: conf.Duration("conn_max_lifetime"),
		timeout:     conf.Duration("connect_timeout"),
		ioTimeout:   conf.Duration("io_timeout"),
		loc:         loc,
	}
	if f := conf.File(); f != "" {
		o.baseDir = filepath.Dir(f)
	}
	if o.host == "" {
		o.host = "127.0.0.1"
	}
	if o.port == 0 {
		o.port = 3306
	}
	return o, nil
}

func (o *connOptions) path(p string) string {
	if p == "" || filepath.IsAbs(p) || o.baseDir == "" {
		return p
	}
	return filepath.Join(o.baseDir, p)
}

// driverConfig builds the driver configuration, reading the DSN, password
// and CA files. The returned redactor knows every secret it used. Errors
// never contain a secret.
func (o *connOptions) driverConfig(log *slog.Logger) (*mysqldrv.Config, *redactor, error) {
	red := &redactor{}
	var cfg *mysqldrv.Config
	dsn := o.dsn
	if o.dsnFile != "" {
		b, err := os.ReadFile(o.path(o.dsnFile))
		if err != nil {
			return nil, red, fmt.Errorf("dsn_file: %w", err)
		}
		dsn = strings.TrimSpace(string(b))
	}
	if dsn != "" {
		red.add(dsn)
		// The password is between the first ":" and the last "@" before the
		// address, as the driver parses it; hide it even if parsing fails.
		if at := strings.LastIndex(dsn, "@"); at > 0 {
			if c := strings.IndexByte(dsn[:at], ':'); c >= 0 {
				red.add(dsn[c+1 : at])
			}
		}
		c, err := mysqldrv.ParseDSN(dsn)
		if err != nil {
			return nil, red, red.wrap(fmt.Errorf("dsn: %w", err))
		}
		red.add(c.Passwd)
		cfg = c
	} else {
		cfg = mysqldrv.NewConfig()
		cfg.Net = "tcp"
		cfg.Addr = netAddr(o.host, o.port)
		cfg.User = o.user
		cfg.DBName = o.db
		cfg.Passwd = o.password
		if o.passwordFile != "" {
			b, err := os.ReadFile(o.path(o.passwordFile))
			if err != nil {
				return nil, red, fmt.Errorf("password_file: %w", err)
			}
			cfg.Passwd = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		}
		red.add(cfg.Passwd)
	}
	mode := o.tlsMode
	if mode == "" && dsn == "" {
		mode = tlsPreferred
	}
	if err := o.applyTLS(cfg, mode); err != nil {
		return nil, red, red.wrap(err)
	}
	cfg.InterpolateParams = true
	cfg.ParseTime = false
	cfg.Loc = time.UTC
	cfg.RejectReadOnly = true
	cfg.Timeout = o.timeout
	cfg.ReadTimeout = o.ioTimeout
	cfg.WriteTimeout = o.ioTimeout
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Params["autocommit"] = "1" // the sink relies on it for single statements
	cfg.Logger = &driverLogger{log: log, red: red}
	return cfg, red, nil
}

func netAddr(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// applyTLS sets the TLS configuration for mode; "" leaves the DSN's.
func (o *connOptions) applyTLS(cfg *mysqldrv.Config, mode string) error {
	host, _, _ := strings.Cut(cfg.Addr, ":")
	host = strings.Trim(host, "[]")
	switch mode {
	case "":
		return nil // the DSN decides
	case tlsDisabled:
		cfg.TLS, cfg.TLSConfig, cfg.AllowFallbackToPlaintext = nil, "false", false
		return nil
	case tlsPreferred:
		cfg.TLS, cfg.TLSConfig, cfg.AllowFallbackToPlaintext = &tls.Config{InsecureSkipVerify: true}, "", true //nolint:gosec // preferred means unverified by definition
		return nil
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.path(o.caFile))
		if err != nil {
			return fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ca_file %s: no PEM certificate found", o.path(o.caFile))
		}
		tc.RootCAs = pool
	}
	if mode == tlsRequired {
		tc.InsecureSkipVerify = true //nolint:gosec // verified below against ca_file, without the host name
		if tc.RootCAs != nil {
			roots := tc.RootCAs
			tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
				return verifyChain(raw, roots)
			}
		}
	}
	cfg.TLS, cfg.TLSConfig, cfg.AllowFallbackToPlaintext = tc, "", false
	return nil
}

// verifyChain checks a server certificate chain against roots, ignoring the
// host name (MySQL's VERIFY_CA).
func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("tls: server certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

// pool is an open connection pool with what is needed to report its errors.
type pool struct {
	db  *sql.DB
	red *redactor
	cfg *mysqldrv.Config
}

// open builds the pool and pings the server. Errors are classified and
// redacted.
func (o *connOptions) open(ctx context.Context, log *slog.Logger) (*pool, error) {
	cfg, red, err := o.driverConfig(log)
	if err != nil {
		return nil, adapters.UnavailableError(err)
	}
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		return nil, adapters.UnavailableError(red.wrap(err))
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(o.maxOpen)
	db.SetMaxIdleConns(o.maxOpen)
	db.SetConnMaxLifetime(o.maxLifetime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, classified(red.wrap(fmt.Errorf("connect to %s: %w", cfg.Addr, err)))
	}
	return &pool{db: db, red: red, cfg: cfg}, nil
}

// driverLogger sends the driver's own log lines (connection problems it
// recovers from) to slog, redacted.
type driverLogger struct {
	log *slog.Logger
	red *redactor
}

func (l *driverLogger) Print(v ...any) {
	if l.log == nil {
		return
	}
	l.log.Warn("mysql driver", "message", l.red.string(strings.TrimSpace(fmt.Sprint(v...))))
}
