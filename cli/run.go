package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/pipeline"
)

func newRunCmd() *cobra.Command {
	var path string
	var once bool
	v := viper.New()
	cmd := &cobra.Command{
		Use:   "run -c PATH [--data-dir DIR]",
		Short: "Run pipelines until interrupted",
		Long: `Run starts every pipeline of a file, or of every *.yaml file in a directory,
and runs them until SIGINT or SIGTERM. It then drains: sources stop, batches
being enqueued finish, sinks finish the writes in progress, and what is still
queued stays on disk for the next start. A second signal exits at once;
acknowledged data is on disk either way.

Queues and checkpoints live in the data dir; only one agent may use a data
dir at a time.`,
		Example: `  sluice run -c examples/quickstart/pipeline.yaml --data-dir /tmp/sluice
  SLUICE_DATA_DIR=/var/lib/sluice sluice run -c /etc/sluice/pipelines/
  sluice run -c nightly.yaml --once      # process what is there, then exit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadSettings(cmd.Flags(), v)
			if err != nil {
				return exitCode(2, err)
			}
			return runAgent(cmd, path, s, once)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "pipeline file or directory of *.yaml files (required)")
	cmd.Flags().BoolVar(&once, "once", false, "process what is available now, deliver it and exit (non-zero when anything was dead-lettered)")
	_ = cmd.MarkFlagRequired("config")
	agentFlags(cmd.Flags(), v)
	return cmd
}

func runAgent(cmd *cobra.Command, path string, s settings, once bool) error {
	log, err := newLogger(cmd.ErrOrStderr(), s.LogLevel, s.LogFormat)
	if err != nil {
		return exitCode(2, err)
	}
	cfg, err := loadConfig(path, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.DataDir, 0o750); err != nil {
		return exitCode(1, fmt.Errorf("data dir: %w", err))
	}
	b, err := openBroker(s, log)
	if err != nil {
		return exitCode(1, err)
	}
	defer b.Close()
	store, err := statestore.Open(filepath.Join(s.DataDir, "state"))
	if err != nil {
		return exitCode(1, err)
	}
	defer store.Close()
	mem := broker.NewMemory()
	defer mem.Close()
	for _, p := range cfg.Pipelines {
		if p.Broker == "memory" {
			log.Warn("pipeline uses the memory broker: queued messages are lost on restart", "pipeline", p.Name)
		}
	}

	agent := pipeline.NewAgent(pipeline.Options{
		Broker: b,
		Memory: mem,
		State: func(p, component string) adapters.State {
			return store.Namespace(p + "/" + component + "/")
		},
		Logger:       log,
		Once:         once,
		DrainTimeout: s.ShutdownTimeout,
	})

	ctx := cmd.Context()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	if _, err := agent.Apply(ctx, cfg); err != nil {
		_ = agent.Stop(context.Background())
		return exitCode(1, err)
	}
	log.Info("sluice running", "pipelines", len(cfg.Pipelines), "data_dir", s.DataDir, "broker", s.Broker)

	finished := make(chan struct{})
	go func() {
		_ = agent.Wait(context.Background())
		close(finished)
	}()
	select {
	case sig := <-sigs:
		log.Info("signal received; draining (send it again to exit at once)", "signal", sig.String(), "timeout", s.ShutdownTimeout)
		go func() {
			<-sigs
			log.Warn("second signal: exiting now; acknowledged data is on disk")
			os.Exit(1)
		}()
	case <-finished:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout+5*time.Second)
	defer cancel()
	if err := agent.Stop(sctx); err != nil {
		log.Warn("drain incomplete", "error", err)
	}
	if once {
		return onceSummary(cmd, agent)
	}
	log.Info("sluice stopped")
	return nil
}

func onceSummary(cmd *cobra.Command, agent *pipeline.Agent) error {
	var dead int64
	for _, rt := range agent.Runtimes() {
		c := rt.Counters()
		fmt.Fprintf(cmd.ErrOrStderr(), "pipeline %s: read %d, written %d, dropped %d, rejected %d, dead-lettered %d\n",
			rt.Name(), c.Read, c.Written, c.Dropped, c.Rejected, c.DeadLettered)
		dead += c.Rejected + c.DeadLettered
	}
	if dead > 0 {
		return exitCode(1, fmt.Errorf("%d message(s) went to dead-letter queues; see 'sluice queues list'", dead))
	}
	return nil
}

// openBroker opens the agent's broker in the data dir.
func openBroker(s settings, log interface{ Warn(string, ...any) }) (broker.Broker, error) {
	switch s.Broker {
	case "memory":
		log.Warn("broker: memory — nothing is durable; queued messages are lost on restart")
		return broker.NewMemory(), nil
	default:
		if diskOpener == nil {
			log.Warn("broker: the disk backend is not built into this binary; using memory — nothing is durable")
			return broker.NewMemory(), nil
		}
		return diskOpener(filepath.Join(s.DataDir), log)
	}
}

// diskOpener opens the disk broker; set by disk.go once the backend exists.
var diskOpener func(dir string, log interface{ Warn(string, ...any) }) (broker.Broker, error)
