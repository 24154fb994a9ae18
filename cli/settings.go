package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// settings are the agent's own options (not the pipelines'): flags, then
// SLUICE_* environment variables, then the agent config file, then defaults.
type settings struct {
	DataDir         string
	Broker          string
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
	AdminAddress    string
	AdminTokenFile  string
	Quiet           bool
}

// agentFlags adds the agent's flags to fs and binds them to v.
func agentFlags(fs *pflag.FlagSet, v *viper.Viper) {
	fs.String("data-dir", "./sluice-data", "directory for queues and checkpoints (env SLUICE_DATA_DIR)")
	fs.String("broker", "disk", "queue backend: disk (durable) or memory (nothing survives a restart)")
	fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.String("log-format", "text", "log format: text or json")
	fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight work before exiting")
	fs.String("agent-config", "", "agent settings file (YAML: data_dir, broker, log.level, log.format, shutdown_timeout, admin.address)")
	binds := map[string]string{
		"data_dir": "data-dir", "broker": "broker", "log.level": "log-level", "log.format": "log-format",
		"shutdown_timeout": "shutdown-timeout",
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
	if f, _ := fs.GetString("agent-config"); f != "" {
		v.SetConfigFile(f)
		if err := v.ReadInConfig(); err != nil {
			return settings{}, fmt.Errorf("agent config %s: %w", f, err)
		}
	} else if f := os.Getenv("SLUICE_AGENT_CONFIG"); f != "" {
		v.SetConfigFile(f)
		if err := v.ReadInConfig(); err != nil {
			return settings{}, fmt.Errorf("agent config %s: %w", f, err)
		}
	}
	s := settings{
		DataDir:         v.GetString("data_dir"),
		Broker:          v.GetString("broker"),
		LogLevel:        v.GetString("log.level"),
		LogFormat:       v.GetString("log.format"),
		ShutdownTimeout: v.GetDuration("shutdown_timeout"),
		AdminAddress:    v.GetString("admin.address"),
		AdminTokenFile:  v.GetString("admin.token_file"),
	}
	if s.DataDir == "" {
		return s, fmt.Errorf("data_dir: must not be empty")
	}
	switch s.Broker {
	case "disk", "memory":
	default:
		return s, fmt.Errorf("broker: unknown broker type %q (known: disk, memory)", s.Broker)
	}
	if s.ShutdownTimeout <= 0 {
		return s, fmt.Errorf("shutdown_timeout: must be positive, got %s", s.ShutdownTimeout)
	}
	return s, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log.level: unknown level %q (known: debug, info, warn, error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log.format: unknown format %q (known: text, json)", format)
}
