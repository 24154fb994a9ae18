// Package reload applies pipeline configuration changes to a running agent:
// it watches the config file or directory, validates every change, and
// restarts only the pipelines whose configuration changed. An invalid change
// is logged, problem by problem, and the running pipelines keep running.
//
// It watches with fsnotify rather than viper's WatchConfig: viper watches one
// config file, while a pipeline config is often a directory of files, and
// pipeline files are not read through viper (see docs/design.md). The
// directory is watched, not the files: editors save by writing a new file and
// renaming it over the old one, and Kubernetes swaps a ConfigMap's files by
// replacing a symlink, both of which end a watch on the file itself.
package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/pipeline"
)

// Results of a reload, as OnReload receives them.
const (
	Success = "success" // the config was valid and applied
	Invalid = "invalid" // the config did not validate; nothing changed
	Failed  = "error"   // the config was valid but a pipeline failed to start
)

// Options configure New.
type Options struct {
	// Path is the pipeline file or directory the agent runs.
	Path string
	// Load validates the configuration at Path; nil means pipeline.Load.
	Load func(path string) (*pipeline.Config, error)
	// Apply makes the agent run cfg: usually (*pipeline.Agent).Apply.
	Apply func(ctx context.Context, cfg *pipeline.Config) (pipeline.Change, error)
	// Logger receives what changed and every problem; nil discards.
	Logger *slog.Logger
	// Debounce is how long the files must stay quiet before a reload, so
	// that an editor's burst of writes gives one reload (default 500ms).
	Debounce time.Duration
	// OnReload, when set, is told the result of every reload (metrics).
	OnReload func(result string, ch pipeline.Change)
}

// Reloader watches a pipeline configuration and applies its changes.
type Reloader struct {
	opts    Options
	log     *slog.Logger
	trigger chan struct{}
	ready   chan struct{}

	mu          sync.Mutex // serialises reloads; guards the fields below
	closed      bool
	lastInvalid string // problems of the last invalid config, to log them once
}

// New returns a reloader; Run starts watching.
func New(opts Options) *Reloader {
	if opts.Load == nil {
		opts.Load = func(path string) (*pipeline.Config, error) { return pipeline.Load(path, pipeline.LoadOptions{}) }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 500 * time.Millisecond
	}
	return &Reloader{opts: opts, log: opts.Logger.With("component", "reload"), trigger: make(chan struct{}, 1), ready: make(chan struct{})}
}

// Trigger asks Run for a reload now, whether or not a file changed (SIGHUP).
// It does not wait; triggers that arrive during a reload are merged.
func (r *Reloader) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Ready is closed once Run watches the configuration: edits made before
// may be missed.
func (r *Reloader) Ready() <-chan struct{} { return r.ready }

// Run watches the configuration until ctx is done, reloading after every
// change; it is called once. It returns once a reload in progress has finished (its drains are
// not cut short by ctx), so the caller may stop the agent afterwards.
func (r *Reloader) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	defer w.Close()
	dir, file := r.opts.Path, ""
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("watch config %s: %w", dir, err)
	} else if !st.IsDir() {
		dir, file = filepath.Dir(dir), filepath.Base(dir)
	}
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch config %s: %w", dir, err)
	}
	r.log.Info("watching the pipeline config for changes", "path", r.opts.Path)
	defer r.close()
	close(r.ready)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if relevant(ev, file) {
				r.log.Debug("config file event", "file", ev.Name, "op", ev.Op.String())
				timer.Reset(r.opts.Debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Warn("config watch error; edits may be missed until the next one (SIGHUP forces a reload)", "error", err)
		case <-timer.C:
			r.reload(false)
		case <-r.trigger:
			timer.Stop()
			r.reload(true)
		}
	}
}

// relevant reports whether a file event may change the configuration. In a
// watched directory, any YAML file counts, and so do hidden entries, which
// is how Kubernetes swaps a ConfigMap (..data); with one config file, its
// name counts and so do hidden entries, for the same reason. Extra events
// are cheap: a reload that changes nothing is logged at debug level only.
func relevant(ev fsnotify.Event, file string) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	base := filepath.Base(ev.Name)
	switch {
	case strings.HasPrefix(base, "..") || base == file:
		return true
	case file != "":
		return false
	}
	return !strings.HasPrefix(base, ".") && (strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml"))
}

func (r *Reloader) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// ErrClosed is returned by Reload once Run has returned.
var ErrClosed = errors.New("the agent is shutting down; the config is no longer reloaded")

// Reload reloads the configuration now and returns what changed, or the
// problems of an invalid config (adapters.Errors). It is for the admin API;
// it waits for a reload in progress.
func (r *Reloader) Reload(ctx context.Context) (pipeline.Change, error) {
	return r.reloadLocked(ctx, true)
}

func (r *Reloader) reload(forced bool) {
	_, _ = r.reloadLocked(context.Background(), forced)
}

func (r *Reloader) reloadLocked(ctx context.Context, forced bool) (pipeline.Change, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return pipeline.Change{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return pipeline.Change{}, err
	}
	cfg, err := r.opts.Load(r.opts.Path)
	if err != nil {
		r.invalid(err, forced)
		r.report(Invalid, pipeline.Change{})
		return pipeline.Change{}, err
	}
	r.lastInvalid = ""
	// Drains finish even when the caller goes away: a half-stopped pipeline
	// would only be restarted by the next reload.
	ch, err := r.opts.Apply(context.WithoutCancel(ctx), cfg)
	changed := len(ch.Started)+len(ch.Restarted)+len(ch.Stopped) > 0
	switch {
	case err != nil:
		r.log.Error("config reloaded, but not every pipeline could be (re)started", "error", err,
			"started", ch.Started, "restarted", ch.Restarted, "stopped", ch.Stopped, "unchanged", ch.Unchanged)
		r.report(Failed, ch)
		return ch, err
	case changed:
		r.log.Info("config reloaded", "started", ch.Started, "restarted", ch.Restarted, "stopped", ch.Stopped, "unchanged", len(ch.Unchanged))
	case forced:
		r.log.Info("config reloaded; no pipeline changed", "pipelines", len(ch.Unchanged))
	default:
		r.log.Debug("config files touched; no pipeline changed")
	}
	r.report(Success, ch)
	return ch, nil
}

// invalid logs every problem of a config that did not validate, one line
// each as `sluice validate` prints them, once per distinct set of problems.
func (r *Reloader) invalid(err error, forced bool) {
	text := err.Error()
	if text == r.lastInvalid && !forced {
		r.log.Debug("config still invalid", "problems", text)
		return
	}
	r.lastInvalid = text
	var es adapters.Errors
	if !errors.As(err, &es) {
		r.log.Error("config not reloaded; the running pipelines keep running", "error", err)
		return
	}
	for _, e := range es {
		r.log.Error("config problem", "problem", e.Error())
	}
	r.log.Error("config not reloaded; the running pipelines keep running", "problems", len(es))
}

func (r *Reloader) report(result string, ch pipeline.Change) {
	if r.opts.OnReload != nil {
		r.opts.OnReload(result, ch)
	}
}
