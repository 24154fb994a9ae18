package natsbroker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicehq/sluice/adapters"
)

// Options configure a Broker. Zero values take the defaults documented on
// each field (the same as Spec's).
type Options struct {
	// URL lists the servers, comma-separated: "nats://a:4222,nats://b:4222".
	// Default nats://127.0.0.1:4222.
	URL string
	// Authentication: at most one of CredsFile (a JWT + nkey .creds file),
	// NKeyFile (an nkey seed file), User with Password, or Token.
	CredsFile string
	NKeyFile  string
	User      string
	Password  string // secret
	Token     string // secret
	// TLS: CAFile verifies the servers; CertFile and KeyFile are the
	// client certificate for mutual TLS. Any of them turns TLS on.
	TLS TLSOptions
	// Prefix names the streams (PREFIX_PIPELINE_QUEUE) and key/value buckets
	// (PREFIX_state, PREFIX_leases, PREFIX_released): letters, digits and -.
	// Default SLUICE.
	Prefix string
	// SubjectPrefix is the first token of the queues' subjects
	// (SUBJECTPREFIX.PIPELINE.QUEUE). Default sluice.
	SubjectPrefix string
	// Replicas of every stream and bucket (1, 3 or 5 in a cluster). Default 1.
	Replicas int
	// Storage of the streams: "file" (default) or "memory".
	Storage string
	// DuplicateWindow is how long a stream remembers message IDs to drop a
	// message published twice (a source re-reading after a crash or a
	// take-over). Default 2m.
	DuplicateWindow time.Duration
	// LeaseTTL is how long a source lease lives without renewal: a dead
	// agent's sources are taken over within it. Default 15s.
	LeaseTTL time.Duration
	// MaxAckPending bounds the messages a consumer group (across agents) may
	// hold unacknowledged, retries waiting for their backoff included.
	// Default 20000.
	MaxAckPending int
	// ConnectTimeout bounds each connection attempt. Default 5s.
	ConnectTimeout time.Duration
	// Name identifies the connection in the server's monitoring. Default
	// "sluice HOSTNAME PID".
	Name string
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
}

// TLSOptions configure TLS to the servers.
type TLSOptions struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

func (t TLSOptions) enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// DefaultURL is the server a broker connects to when Options.URL is empty.
const DefaultURL = "nats://127.0.0.1:4222"

var (
	prefixRE  = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	subjectRE = regexp.MustCompile(`^[^.*> \t\r\n]+(\.[^.*> \t\r\n]+)*$`)
)

// Spec documents and decodes the nats settings: the `nats:` block of the
// agent config and the `broker: {type: nats, ...}` block of a pipeline.
var Spec = &adapters.Spec{
	Summary: "NATS JetStream as the queue backend, shared by several agents.",
	Description: "Each queue is a JetStream stream, each sink a durable pull consumer; " +
		"checkpoints and source leases live in key/value buckets, so agents running the same " +
		"pipelines share the work. See docs/nats.md.",
	Fields: []Field{
		{Name: "url", Type: adapters.TypeString, Default: DefaultURL, Description: "Server URLs, comma-separated.", Example: "nats://nats-1:4222,nats://nats-2:4222"},
		{Name: "creds_file", Type: adapters.TypeString, Optional: true, Description: "Credentials file (JWT and nkey seed)."},
		{Name: "nkey_file", Type: adapters.TypeString, Optional: true, Description: "Nkey seed file."},
		{Name: "user", Type: adapters.TypeString, Optional: true, Description: "User name, with password."},
		{Name: "password", Type: adapters.TypeString, Optional: true, Secret: true, Description: "Password of user."},
		{Name: "token", Type: adapters.TypeString, Optional: true, Secret: true, Description: "Authentication token."},
		{Name: "tls", Type: adapters.TypeObject, Default: map[string]any{}, Description: "TLS to the servers; any file turns TLS on.", Fields: []Field{
			{Name: "ca_file", Type: adapters.TypeString, Optional: true, Description: "CA certificates (PEM) that sign the servers' certificates."},
			{Name: "cert_file", Type: adapters.TypeString, Optional: true, Description: "Client certificate (PEM) for mutual TLS."},
			{Name: "key_file", Type: adapters.TypeString, Optional: true, Description: "Client key (PEM) for mutual TLS."},
		}},
		{Name: "prefix", Type: adapters.TypeString, Default: "SLUICE", Description: "Prefix of stream and bucket names (letters, digits, -).",
			Check: func(v any) error { return checkPrefix(v.(string)) }},
		{Name: "subject_prefix", Type: adapters.TypeString, Default: "sluice", Description: "First token(s) of the queues' subjects.",
			Check: func(v any) error { return checkSubjectPrefix(v.(string)) }},
		{Name: "replicas", Type: adapters.TypeInt, Default: 1, Description: "Replicas of each stream and bucket (1 to 5).",
			Check: func(v any) error {
				if n := v.(int64); n < 1 || n > 5 {
					return fmt.Errorf("want 1 to 5, got %d", n)
				}
				return nil
			}},
		{Name: "storage", Type: adapters.TypeString, Default: "file", Enum: []string{"file", "memory"}, Description: "Where the servers keep the streams."},
		{Name: "duplicate_window", Type: adapters.TypeDuration, Default: "2m", Description: "How long a stream drops a message ID published again."},
		{Name: "lease_ttl", Type: adapters.TypeDuration, Default: "15s", Description: "A source lease not renewed within this time is taken over by another agent.",
			Check: func(v any) error {
				if d := v.(time.Duration); d < 100*time.Millisecond {
					return fmt.Errorf("want at least 100ms, got %s", d)
				}
				return nil
			}},
		{Name: "max_ack_pending", Type: adapters.TypeInt, Default: 20000, Description: "Unacknowledged messages a sink may hold across agents."},
	},
	Example: "url: nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222\ncreds_file: /etc/sluice/sluice.creds\nreplicas: 3",
	Check: func(c *adapters.Config) error {
		auth := 0
		for _, k := range []string{"creds_file", "nkey_file", "user", "token"} {
			if c.IsSet(k) {
				auth++
			}
		}
		if auth > 1 {
			return c.Errorf("creds_file", "set one of creds_file, nkey_file, user (with password) or token")
		}
		if c.IsSet("password") && !c.IsSet("user") {
			return c.Errorf("password", "password needs user")
		}
		t := c.Object("tls")
		if t.IsSet("cert_file") != t.IsSet("key_file") {
			return t.Errorf("cert_file", "cert_file and key_file go together")
		}
		return nil
	},
}

// Field is adapters.Field, shortened for the spec above.
type Field = adapters.Field

func checkPrefix(p string) error {
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("want letters, digits and -, got %q", p)
	}
	return nil
}

func checkSubjectPrefix(p string) error {
	if !subjectRE.MatchString(p) {
		return fmt.Errorf("want subject tokens separated by dots, without * > or spaces, got %q", p)
	}
	return nil
}

// FromConfig returns the options a decoded Spec block holds.
func FromConfig(c *adapters.Config) Options {
	t := c.Object("tls")
	return Options{
		URL: c.String("url"), CredsFile: c.String("creds_file"), NKeyFile: c.String("nkey_file"),
		User: c.String("user"), Password: c.String("password"), Token: c.String("token"),
		TLS:    TLSOptions{CAFile: t.String("ca_file"), CertFile: t.String("cert_file"), KeyFile: t.String("key_file")},
		Prefix: c.String("prefix"), SubjectPrefix: c.String("subject_prefix"), Replicas: c.Int("replicas"),
		Storage: c.String("storage"), DuplicateWindow: c.Duration("duplicate_window"), LeaseTTL: c.Duration("lease_ttl"),
		MaxAckPending: c.Int("max_ack_pending"),
	}
}

// withDefaults fills the zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Prefix == "" {
		o.Prefix = "SLUICE"
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = "sluice"
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Storage == "" {
		o.Storage = "file"
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = 2 * time.Minute
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 15 * time.Second
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = 20000
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.Name == "" {
		host, _ := os.Hostname()
		o.Name = fmt.Sprintf("sluice %s %d", host, os.Getpid())
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkPrefix(o.Prefix); err != nil {
		return o, fmt.Errorf("nats prefix: %w", err)
	}
	if err := checkSubjectPrefix(o.SubjectPrefix); err != nil {
		return o, fmt.Errorf("nats subject_prefix: %w", err)
	}
	if o.Storage != "file" && o.Storage != "memory" {
		return o, fmt.Errorf("nats storage: want file or memory, got %q", o.Storage)
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		return o, fmt.Errorf("nats replicas: want 1 to 5, got %d", o.Replicas)
	}
	if o.Password != "" && o.User == "" {
		return o, errors.New("nats password: needs user")
	}
	return o, nil
}

// natsOptions turns Options into connection options. Errors name the
// setting and file at fault, never a secret.
func (o Options) natsOptions() ([]nats.Option, error) {
	log := o.Logger
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(o.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats: disconnected; reconnecting", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("nats: async error", "error", err) }),
	}
	switch {
	case o.CredsFile != "":
		if _, err := os.Stat(o.CredsFile); err != nil {
			return nil, fmt.Errorf("nats creds_file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey_file %s: %w", o.NKeyFile, redactErr(err))
		}
		opts = append(opts, opt)
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	}
	if o.TLS.enabled() {
		cfg, err := o.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(cfg))
	}
	return opts, nil
}

func (t TLSOptions) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("nats tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats tls.ca_file %s: no PEM certificate found", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats tls.cert_file %s / tls.key_file %s: %w", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// redactErr keeps an error's message short of anything that looks like key
// material: nkey seeds start with "SU" and are long base32 strings.
func redactErr(err error) error {
	msg := err.Error()
	for _, f := range strings.Fields(msg) {
		if len(f) > 40 && strings.HasPrefix(f, "SU") {
			msg = strings.ReplaceAll(msg, f, "[redacted]")
		}
	}
	return errors.New(msg)
}

// redactURL removes user information from a server URL list for messages.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			scheme := ""
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				scheme = p[:s+3]
			}
			parts[i] = scheme + "[redacted]@" + p[at+1:]
		}
	}
	return strings.Join(parts, ",")
}
