package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	natsbroker "github.com/sluicehq/sluice/broker/nats"
	"github.com/sluicehq/sluice/internal/logging"
)

// settings are the agent's own options (not the pipelines'): flags, then
// SLUICE_* environment variables, then the agent config file, then defaults.
type settings struct {
	DataDir         string
	Broker          string
	NATS            natsbroker.Options // the nats block (used when Broker is nats)
	LogLevel        string
	LogFormat       string
	LogLevels       map[string]string // component → level
	ShutdownTimeout time.Duration
	AdminAddress    string // host:port, or "off"
	AdminToken      string // never printed
	AdminTokenFile  string
	Watch           bool
	Quiet           bool
	// Warnings found while reading the settings, logged once the logger exists.
	Warnings []string
}

// adminOff is the admin.address value that disables the admin server.
const adminOff = "off"

// defaultAdminAddress is where the admin server listens by default: loopback
// only, so that nothing is exposed to the network without a decision.
const defaultAdminAddress = "127.0.0.1:9650"

// settingKeys are the keys an agent config file may hold; log.levels takes
// any component name below it.
var settingKeys = []string{"admin.address", "admin.token", "admin.token_file", "broker", "data_dir",
	"log.format", "log.level", "log.levels", "quiet", "reload.watch", "shutdown_timeout"}

// agentFlags adds the agent's flags to fs and binds them to v.
func agentFlags(fs *pflag.FlagSet, v *viper.Viper) {
	fs.String("data-dir", "./sluice-data", "directory for queues and checkpoints (env SLUICE_DATA_DIR)")
	fs.String("broker", "disk", "queue backend: disk (durable), memory (nothing survives a restart) or nats (JetStream, shared by several agents)")
	natsFlags(fs, v)
	fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.StringToString("log-levels", nil, "log level per component, e.g. sink=debug,source=warn (components: agent, engine, source, sink, broker, admin, reload)")
	fs.String("log-format", "text", "log format: text or json")
	fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight work before exiting")
	fs.String("admin-address", defaultAdminAddress, `admin HTTP server (health, metrics, API) address, or "off"`)
	fs.String("admin-token-file", "", "file holding the bearer token that mutating admin calls need (or env SLUICE_ADMIN_TOKEN)")
	fs.Bool("watch", true, "reload the pipelines when their config files change (SIGHUP reloads in any case)")
	fs.BoolP("quiet", "q", false, "no live status lines on the terminal")
	fs.String("agent-config", "", "agent settings file (YAML: data_dir, broker, log.*, shutdown_timeout, admin.*, reload.watch; env SLUICE_AGENT_CONFIG)")
	binds := map[string]string{
		"data_dir": "data-dir", "broker": "broker", "log.level": "log-level", "log.format": "log-format", "log.levels": "log-levels",
		"shutdown_timeout": "shutdown-timeout", "admin.address": "admin-address", "admin.token_file": "admin-token-file",
		"reload.watch": "watch", "quiet": "quiet",
	}
	for key, flag := range binds {
		_ = v.BindPFlag(key, fs.Lookup(flag))
	}
	v.SetEnvPrefix("SLUICE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
}

// loadSettings reads the agent config file (when given) and returns the
// effective settings.
func loadSettings(fs *pflag.FlagSet, v *viper.Viper) (settings, error) {
	file, _ := fs.GetString("agent-config")
	if file == "" {
		file = os.Getenv("SLUICE_AGENT_CONFIG")
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return settings{}, fmt.Errorf("agent config %s: %w", file, err)
		}
		if err := checkKeys(file, v); err != nil {
			return settings{}, err
		}
	}
	s := settings{
		DataDir:         v.GetString("data_dir"),
		Broker:          v.GetString("broker"),
		LogLevel:        v.GetString("log.level"),
		LogFormat:       v.GetString("log.format"),
		ShutdownTimeout: v.GetDuration("shutdown_timeout"),
		AdminAddress:    strings.TrimSpace(v.GetString("admin.address")),
		AdminToken:      v.GetString("admin.token"),
		AdminTokenFile:  v.GetString("admin.token_file"),
		Watch:           v.GetBool("reload.watch"),
		Quiet:           v.GetBool("quiet"),
	}
	var err error
	if s.LogLevels, err = levelsSetting(v.Get("log.levels")); err != nil {
		return s, err
	}
	if s.DataDir == "" {
		return s, fmt.Errorf("data_dir: must not be empty")
	}
	switch s.Broker {
	case "disk", "memory", "nats":
	default:
		return s, fmt.Errorf("broker: unknown broker type %q (known: disk, memory, nats)", s.Broker)
	}
	if s.NATS, err = natsSettings(file, v); err != nil {
		return s, err
	}
	if s.ShutdownTimeout <= 0 {
		return s, fmt.Errorf("shutdown_timeout: must be positive, got %s", s.ShutdownTimeout)
	}
	if _, err := logging.ParseLevel("log.level", s.LogLevel); err != nil {
		return s, err
	}
	if _, err := logging.ParseLevels(s.LogLevels); err != nil {
		return s, err
	}
	if err := s.adminSettings(); err != nil {
		return s, err
	}
	return s, nil
}

// checkKeys rejects keys of the agent config file that mean nothing, so a
// typo does not pass silently.
func checkKeys(file string, v *viper.Viper) error {
	var unknown []string
	for _, k := range v.AllKeys() {
		if strings.HasPrefix(k, "log.levels.") {
			continue
		}
		known := false
		for _, s := range settingKeys {
			known = known || k == s
		}
		if !known {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("agent config %s: unknown key(s) %s (known: %s)", file, strings.Join(unknown, ", "), strings.Join(settingKeys, ", "))
	}
	return nil
}

// levelsSetting reads log.levels: a mapping in the agent config file, or
// "sink=debug,source=warn" in SLUICE_LOG_LEVELS or --log-levels.
func levelsSetting(raw any) (map[string]string, error) {
	out := map[string]string{}
	switch x := raw.(type) {
	case nil:
	case map[string]string:
		for k, v := range x {
			out[k] = v
		}
	case map[string]any:
		for k, v := range x {
			out[k] = fmt.Sprint(v)
		}
	case string:
		for _, pair := range strings.Split(x, ",") {
			if pair = strings.TrimSpace(pair); pair == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "=")
			if !ok {
				return nil, fmt.Errorf("log.levels: want COMPONENT=LEVEL pairs separated by commas, got %q", x)
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	default:
		return nil, fmt.Errorf("log.levels: want a mapping of component to level, got %v", raw)
	}
	return out, nil
}

// adminSettings checks the admin address and reads the token.
func (s *settings) adminSettings() error {
	if s.AdminAddress == "" {
		s.AdminAddress = defaultAdminAddress
	}
	if s.AdminAddress != adminOff {
		host, _, err := net.SplitHostPort(s.AdminAddress)
		if err != nil {
			return fmt.Errorf("admin.address: want HOST:PORT or %q, got %q", adminOff, s.AdminAddress)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("admin server on %s is reachable from other machines: its read-only endpoints (metrics, queues, dead-letter contents) need no token", s.AdminAddress))
		}
	}
	if s.AdminTokenFile == "" {
		return nil
	}
	if s.AdminToken != "" {
		return fmt.Errorf("admin.token_file: set either SLUICE_ADMIN_TOKEN (admin.token) or admin.token_file, not both")
	}
	st, err := os.Stat(s.AdminTokenFile)
	if err != nil {
		return fmt.Errorf("admin.token_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("admin.token_file %s is readable by other users (mode %s); chmod 600 it", s.AdminTokenFile, st.Mode().Perm()))
	}
	b, err := os.ReadFile(s.AdminTokenFile)
	if err != nil {
		return fmt.Errorf("admin.token_file: %w", err)
	}
	s.AdminToken = strings.TrimSpace(string(b))
	if s.AdminToken == "" {
		return fmt.Errorf("admin.token_file: %s is empty", s.AdminTokenFile)
	}
	return nil
}

// logOptions returns the logging options of the settings, which
// loadSettings validated.
func (s settings) logOptions() logging.Options {
	lv, _ := logging.ParseLevel("log.level", s.LogLevel)
	levels, _ := logging.ParseLevels(s.LogLevels)
	return logging.Options{Format: s.LogFormat, Level: lv, Levels: levels}
}

// newLogger returns the agent's logger writing to w.
func newLogger(w interface{ Write([]byte) (int, error) }, s settings) (*slog.Logger, error) {
	return logging.New(w, s.logOptions())
}

// printable returns the settings for --print-config, with the token masked.
func (s settings) printable() map[string]any {
	token := ""
	if s.AdminToken != "" {
		token = "[redacted]"
	}
	return map[string]any{
		"data_dir":         s.DataDir,
		"broker":           s.Broker,
		"nats":             natsPrintable(s.NATS),
		"log":              map[string]any{"level": s.LogLevel, "format": s.LogFormat, "levels": s.LogLevels},
		"shutdown_timeout": s.ShutdownTimeout.String(),
		"admin":            map[string]any{"address": s.AdminAddress, "token": token, "token_file": s.AdminTokenFile},
		"reload":           map[string]any{"watch": s.Watch},
	}
}
