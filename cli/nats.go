package cli

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	natsbroker "github.com/sluicehq/sluice/broker/nats"
	"github.com/sluicehq/sluice/pipeline"
)

// The agent's nats settings are the `nats:` block of the agent config file
// (keys of natsbroker.Spec), SLUICE_NATS_* environment variables
// (SLUICE_NATS_URL, SLUICE_NATS_PASSWORD, ...) and --nats-url.

func init() { settingKeys = append(settingKeys, natsSettingKeys()...) }

// natsSettingKeys lists the agent config keys of the nats block, from the
// spec: nats.url, nats.tls.ca_file, ...
func natsSettingKeys() []string {
	var keys []string
	var walk func(prefix string, fs []adapters.Field)
	walk = func(prefix string, fs []adapters.Field) {
		for _, f := range fs {
			if f.Type == adapters.TypeObject {
				walk(prefix+f.Name+".", f.Fields)
				continue
			}
			keys = append(keys, prefix+f.Name)
		}
	}
	walk("nats.", natsbroker.Spec.Fields)
	sort.Strings(keys)
	return keys
}

// natsFlags adds the nats flags to fs.
func natsFlags(fs *pflag.FlagSet, v *viper.Viper) {
	fs.String("nats-url", natsbroker.DefaultURL, "NATS servers for --broker nats, comma-separated (env SLUICE_NATS_URL; other nats.* settings in the agent config)")
	_ = v.BindPFlag("nats.url", fs.Lookup("nats-url"))
}

// natsSettings decodes the nats settings; file names the agent config in
// errors.
func natsSettings(file string, v *viper.Viper) (natsbroker.Options, error) {
	raw := map[string]any{}
	for _, k := range natsSettingKeys() {
		if !v.IsSet(k) {
			continue
		}
		m := raw
		parts := strings.Split(strings.TrimPrefix(k, "nats."), ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v.Get(k)
	}
	c, err := adapters.Decode(natsbroker.Spec, raw, adapters.DecodeOptions{File: file, Path: "nats"})
	if err != nil {
		return natsbroker.Options{}, err
	}
	return natsbroker.FromConfig(c), nil
}

// natsPrintable is the nats block for --print-config, secrets masked.
func natsPrintable(o natsbroker.Options) map[string]any {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "[redacted]"
	}
	return map[string]any{"url": o.URL, "creds_file": o.CredsFile, "nkey_file": o.NKeyFile, "user": o.User,
		"password": mask(o.Password), "token": mask(o.Token),
		"tls":    map[string]any{"ca_file": o.TLS.CAFile, "cert_file": o.TLS.CertFile, "key_file": o.TLS.KeyFile},
		"prefix": o.Prefix, "subject_prefix": o.SubjectPrefix, "replicas": o.Replicas, "storage": o.Storage,
		"duplicate_window": o.DuplicateWindow.String(), "lease_ttl": o.LeaseTTL.String(), "max_ack_pending": o.MaxAckPending}
}

// natsConnectTimeout bounds the first connection to the servers.
const natsConnectTimeout = 30 * time.Second

// openNATS connects the agent's nats broker.
func openNATS(o natsbroker.Options, log interface{ Warn(string, ...any) }) (*natsbroker.Broker, error) {
	if l, ok := log.(*slog.Logger); ok {
		o.Logger = l
	}
	ctx, cancel := context.WithTimeout(context.Background(), natsConnectTimeout)
	defer cancel()
	return natsbroker.Connect(ctx, o)
}

// shareWork wires what several agents share when the broker is nats: on a
// nats agent, checkpoints in the broker's key/value bucket, a lease per
// source and request/reply answers routed between agents; for pipelines
// whose broker block names another broker (nats with its own servers on any
// agent, disk on a nats agent), their own backend. It returns the function
// that closes the brokers and reply registries it opened.
func shareWork(opts *pipeline.Options, s settings, agentBroker broker.Broker, log *slog.Logger) (func(), error) {
	local := opts.State
	var mu sync.Mutex
	var registries []*natsbroker.Replies
	replies := func(nb *natsbroker.Broker) (*natsbroker.Replies, error) {
		r, err := nb.Replies(natsbroker.ReplyOptions{Local: pipeline.NewLocalReplies(), Logger: log.With("component", "replies")})
		if err == nil {
			registries = append(registries, r)
		}
		return r, err
	}
	if nb, ok := agentBroker.(*natsbroker.Broker); ok {
		opts.State = sharedState(nb, local)
		opts.Lease = func(ctx context.Context, p, source string) (pipeline.Lease, error) { return nb.Lease(ctx, p, source) }
		r, err := replies(nb)
		if err != nil {
			return nil, err
		}
		opts.Replies = r
	}
	opened := map[string]*natsbroker.Broker{}
	openedReplies := map[*natsbroker.Broker]*natsbroker.Replies{}
	var disk broker.Broker
	opts.Backend = func(p *pipeline.Pipeline) (*pipeline.Backend, error) {
		switch {
		case p.Broker == "nats" && !ownServers(p.BrokerConf) && s.Broker == "nats":
			return nil, nil // the agent's
		case p.Broker == "nats":
			o := natsbroker.FromConfig(p.BrokerConf)
			key := fmt.Sprintf("%+v", o)
			mu.Lock()
			defer mu.Unlock()
			nb := opened[key]
			if nb == nil {
				var err error
				if nb, err = openNATS(o, log.With("component", "broker", "pipeline", p.Name)); err != nil {
					return nil, err
				}
				opened[key] = nb
			}
			r := openedReplies[nb]
			if r == nil {
				var err error
				if r, err = replies(nb); err != nil {
					return nil, err
				}
				openedReplies[nb] = r
			}
			return &pipeline.Backend{Broker: nb, State: sharedState(nb, local),
				Lease:   func(ctx context.Context, p, source string) (pipeline.Lease, error) { return nb.Lease(ctx, p, source) },
				Replies: r,
			}, nil
		case p.Broker == "disk" && s.Broker == "nats":
			mu.Lock()
			defer mu.Unlock()
			if disk == nil {
				if diskOpener == nil {
					return nil, fmt.Errorf("the disk backend is not built into this binary")
				}
				var err error
				if disk, err = diskOpener(filepath.Join(s.DataDir), log.With("component", "broker")); err != nil {
					return nil, err
				}
			}
			return &pipeline.Backend{Broker: disk, State: local}, nil
		}
		return nil, nil
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range registries {
			_ = r.Close()
		}
		for _, nb := range opened {
			_ = nb.Close()
		}
		if disk != nil {
			_ = disk.Close()
		}
	}, nil
}

// sharedState keeps sources' checkpoints in the nats bucket, where the
// agent that takes a source over finds them, and sinks' state in the local
// store: a sink's state describes its own work in progress (a file sink's
// unpublished files), which competing agents must not share.
func sharedState(nb *natsbroker.Broker, local func(p, component string) adapters.State) func(p, component string) adapters.State {
	return func(p, component string) adapters.State {
		if strings.HasPrefix(component, "source/") {
			return nb.State(p + "/" + component + "/")
		}
		return local(p, component)
	}
}

// ownServers reports whether a pipeline's nats block sets anything beyond
// its type, and so asks for a connection of its own.
func ownServers(c *adapters.Config) bool {
	if c == nil {
		return false
	}
	for _, f := range natsbroker.Spec.Fields {
		if c.IsSet(f.Name) {
			return true
		}
	}
	return false
}

// queueSource opens the broker that `sluice queues` works on: the disk
// broker of a data dir (default), or, with --broker nats, the nats servers
// of --nats-url and the nats block of --agent-config / SLUICE_NATS_*.
type queueSource struct{ v *viper.Viper }

// queuesNATSFlags adds the flags that select a nats broker.
func queuesNATSFlags(fs *pflag.FlagSet, v *viper.Viper) {
	fs.String("broker", "disk", "broker holding the queues: disk (the data dir) or nats (env SLUICE_BROKER)")
	fs.String("agent-config", "", "agent settings file whose nats block to use with --broker nats (env SLUICE_AGENT_CONFIG)")
	_ = v.BindPFlag("broker", fs.Lookup("broker"))
	_ = v.BindPFlag("agent_config", fs.Lookup("agent-config"))
	natsFlags(fs, v)
}

func (q *queueSource) nats() bool { return q.v.GetString("broker") == "nats" }

func (q *queueSource) openNATS() (broker.Broker, error) {
	file := q.v.GetString("agent_config")
	if file != "" {
		q.v.SetConfigFile(file)
		if err := q.v.ReadInConfig(); err != nil {
			return nil, exitCode(1, fmt.Errorf("agent config %s: %w", file, err))
		}
	}
	o, err := natsSettings(file, q.v)
	if err != nil {
		return nil, exitCode(2, err)
	}
	b, err := openNATS(o, quietLogger())
	if err != nil {
		return nil, exitCode(1, err)
	}
	return b, nil
}

func (q *queueSource) check() error {
	switch b := q.v.GetString("broker"); b {
	case "disk", "nats":
		return nil
	default:
		return &usageError{fmt.Errorf("--broker: want disk or nats, got %q", b)}
	}
}

// openRO opens the broker for reading (the disk broker without its lock).
func (q *queueSource) openRO() (broker.Broker, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if q.nats() {
		return q.openNATS()
	}
	return openRO(q.v.GetString("data_dir"))
}

// openRW opens the broker for changes (the disk broker locks its data dir;
// a nats broker is shared with the running agents).
func (q *queueSource) openRW() (broker.Broker, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if q.nats() {
		return q.openNATS()
	}
	return openRW(q.v.GetString("data_dir"))
}
