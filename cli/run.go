package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/admin"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/progress"
	"github.com/sluicehq/sluice/internal/reload"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/pipeline"
)

func newRunCmd() *cobra.Command {
	var path string
	var once, printConfig bool
	v := viper.New()
	cmd := &cobra.Command{
		Use:   "run -c PATH [--data-dir DIR]",
		Short: "Run pipelines until interrupted",
		Long: `Run starts every pipeline of a file, or of every *.yaml file in a directory,
and runs them until SIGINT or SIGTERM. It then drains: sources stop, batches
being enqueued finish, sinks finish the writes in progress, and what is still
queued stays on disk for the next start. The agent exits 0 within
shutdown_timeout. A second signal exits at once; acknowledged data is on
disk either way.

Edits to the config files are applied while running: the new config is
validated first; only the pipelines that changed are restarted (drained,
then started again, keeping their queues and checkpoints); an invalid edit is
logged and the running pipelines keep running. SIGHUP forces a reload.

The admin server (default ` + defaultAdminAddress + `) serves /healthz, /readyz,
/metrics and a JSON API for pipelines, queues and dead letters; see
docs/operations.md. On a terminal, a status line per pipeline shows
records/s in and out, queue depth and dead letters (--quiet hides it).

Queues and checkpoints live in the data dir; only one agent may use a data
dir at a time.`,
		Example: `  sluice run -c examples/quickstart/pipeline.yaml --data-dir /tmp/sluice
  SLUICE_DATA_DIR=/var/lib/sluice sluice run -c /etc/sluice/pipelines/
  sluice run -c nightly.yaml --once      # process what is there, then exit
  sluice run -c pipelines/ --print-config  # effective settings, secrets masked`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadSettings(cmd.Flags(), v)
			if err != nil {
				return exitCode(2, err)
			}
			if printConfig {
				return printEffectiveConfig(cmd, path, s)
			}
			return runAgent(cmd, path, s, once)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "pipeline file or directory of *.yaml files (required)")
	cmd.Flags().BoolVar(&once, "once", false, "process what is available now, deliver it and exit (non-zero when anything was dead-lettered)")
	cmd.Flags().BoolVar(&printConfig, "print-config", false, "print the effective agent settings and pipelines (secrets masked) and exit")
	_ = cmd.MarkFlagRequired("config")
	agentFlags(cmd.Flags(), v)
	return cmd
}

// printEffectiveConfig prints the settings and the validated pipelines as
// YAML, with every secret masked.
func printEffectiveConfig(cmd *cobra.Command, path string, s settings) error {
	cfg, err := loadConfig(path, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	ps := map[string]any{}
	for _, p := range cfg.Pipelines {
		sources, sinks := admin.PipelineConfig(p)
		queues := map[string]any{}
		for _, q := range p.Queues {
			o := q.Options
			queues[q.Name] = map[string]any{"max_bytes": o.MaxBytes, "max_messages": o.MaxMessages, "max_attempts": o.MaxAttempts,
				"backoff":            map[string]any{"initial": o.Backoff.Initial.String(), "max": o.Backoff.Max.String(), "multiplier": o.Backoff.Multiplier, "jitter": o.Backoff.Jitter},
				"visibility_timeout": o.VisibilityTimeout.String(), "segment_bytes": o.SegmentBytes, "inline_max": o.InlineMax}
		}
		ps[p.Name] = map[string]any{"file": p.File, "config_hash": p.Hash, "sources": sources, "stages": len(p.Stages), "queues": queues, "sinks": sinks}
	}
	var doc any
	b, err := json.Marshal(map[string]any{"agent": s.printable(), "pipelines": ps})
	if err != nil {
		return exitCode(1, err)
	}
	if err := json.Unmarshal(b, &doc); err != nil { // plain maps, so YAML uses the JSON names
		return exitCode(1, err)
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return exitCode(1, err)
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// exit ends the process; tests replace it.
var exit = os.Exit

func runAgent(cmd *cobra.Command, path string, s settings, once bool) error {
	stderr := cmd.ErrOrStderr()
	var prog *progress.Progress
	logOut := stderr
	if !s.Quiet && isTerminal(stderr) {
		prog = progress.New(stderr, time.Second)
		logOut = prog.Writer()
	}
	log, err := newLogger(logOut, s)
	if err != nil {
		return exitCode(2, err)
	}
	for _, w := range s.Warnings {
		log.Warn(w)
	}
	cfg, err := loadConfig(path, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.DataDir, 0o750); err != nil {
		return exitCode(1, fmt.Errorf("data dir: %w", err))
	}

	m := metrics.New(metrics.Options{Version: versionString()})
	diskCommitHook = m.ObserveCommit
	defer func() { diskCommitHook = nil }()
	b, err := openBroker(s, log.With("component", "broker"))
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
	warnMemory(log, cfg)

	popts := pipeline.Options{
		Broker: b,
		Memory: mem,
		State: func(p, component string) adapters.State {
			return store.Namespace(p + "/" + component + "/")
		},
		Logger:       log,
		Once:         once,
		DrainTimeout: s.ShutdownTimeout,
		Hooks:        m.Hooks(),
	}
	closeShared, err := shareWork(&popts, s, b, log)
	if err != nil {
		return exitCode(1, err)
	}
	defer closeShared()
	agent := pipeline.NewAgent(popts)
	m.SetAgent(agent)

	// Signals are caught before anything starts, so that none is missed.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ctx := cmd.Context()
	if _, err := agent.Apply(ctx, cfg); err != nil {
		_ = agent.Stop(context.Background())
		return exitCode(1, err)
	}
	agentLog := log.With("component", "agent")
	agentLog.Info("sluice running", "pipelines", len(cfg.Pipelines), "data_dir", s.DataDir, "broker", s.Broker, "once", once)

	// Everything below runs until shutdown; bg is cancelled then, and wg
	// waits for the reloader to finish a reload in progress.
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	var wg sync.WaitGroup
	var rl *reload.Reloader
	if !once {
		rl = reload.New(reload.Options{Path: path, Apply: agent.Apply, Logger: log, OnReload: m.ObserveReload})
		if s.Watch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := rl.Run(bg); err != nil {
					agentLog.Error("config changes are not watched; SIGHUP still reloads", "error", err)
				}
			}()
		}
	}
	var srv *admin.Server
	if s.AdminAddress != adminOff {
		var reloadAPI func(context.Context) (pipeline.Change, error)
		if rl != nil {
			reloadAPI = rl.Reload
		}
		srv = admin.New(admin.Options{Agent: agent, Metrics: m.Handler(), Token: s.AdminToken, Reload: reloadAPI, Logger: log})
		if _, err := srv.Start(s.AdminAddress); err != nil {
			if !once {
				stopBG()
				wg.Wait()
				_ = agent.Stop(context.Background())
				return exitCode(1, err)
			}
			// a batch run beside a running agent finds the port taken
			agentLog.Warn("no admin server for this run", "error", err)
			srv = nil
		}
	}
	if prog != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prog.Run(bg, agent)
		}()
	}

	// In once mode the agent ends by itself when everything was delivered.
	// Otherwise it never does: pipelines end only on Stop or when a reload
	// replaces them.
	var finished chan struct{}
	if once {
		finished = make(chan struct{})
		go func() {
			if agent.Wait(bg) == nil {
				close(finished)
			}
		}()
	}
	shutdown := make(chan struct{})
	defer close(shutdown)
	var deadline time.Time
wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if rl == nil {
					agentLog.Info("SIGHUP ignored: --once does not reload")
					continue
				}
				agentLog.Info("SIGHUP: reloading the config")
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _ = rl.Reload(bg)
				}()
				continue
			}
			deadline = time.Now().Add(s.ShutdownTimeout)
			agentLog.Info("signal received; draining (send it again to exit at once)", "signal", sig.String(), "timeout", s.ShutdownTimeout)
			go secondSignal(sigs, shutdown, agentLog)
			break wait
		case <-finished:
			break wait
		case <-ctx.Done():
			deadline = time.Now().Add(s.ShutdownTimeout)
			go secondSignal(sigs, shutdown, agentLog)
			break wait
		}
	}
	if deadline.IsZero() { // --once: everything was delivered
		deadline = time.Now().Add(s.ShutdownTimeout)
	}
	// A drain that hangs (an adapter ignoring its context) must not keep
	// the agent alive past the timeout; acknowledged data is safe anyway.
	watchdog := time.AfterFunc(time.Until(deadline)+10*time.Second, func() {
		agentLog.Error("shutdown did not finish in time; exiting without waiting further (acknowledged data is on disk)")
		exit(1)
	})
	defer watchdog.Stop()
	if srv != nil {
		srv.SetDraining()
	}
	stopBG()
	wg.Wait()
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := agent.Stop(sctx); err != nil {
		agentLog.Warn("drain incomplete; what was in flight stays queued or is read again", "error", err)
	}
	if srv != nil {
		hctx, hcancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.Shutdown(hctx)
		hcancel()
	}
	if once {
		return onceSummary(cmd, agent)
	}
	agentLog.Info("sluice stopped")
	return nil
}

// secondSignal exits at once on another SIGINT or SIGTERM while the agent
// drains, until done is closed. Acknowledged data is durable when it is
// acknowledged (the broker and the checkpoint store sync before they
// return), so nothing is lost: batches in flight are read again or stay
// queued.
func secondSignal(sigs <-chan os.Signal, done <-chan struct{}, log *slog.Logger) {
	for {
		select {
		case <-done:
			return
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				continue
			}
			log.Warn("second signal: exiting now; acknowledged data is on disk", "signal", sig.String())
			exit(1)
			return
		}
	}
}

func warnMemory(log *slog.Logger, cfg *pipeline.Config) {
	for _, p := range cfg.Pipelines {
		if p.Broker == "memory" {
			log.Warn("pipeline uses the memory broker: queued messages are lost on restart", "pipeline", p.Name)
		}
	}
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
	case "nats":
		return openNATS(s.NATS, log)
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
