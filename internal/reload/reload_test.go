package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/testkit"
	"github.com/sluicehq/sluice/pipeline"
)

// writeFile replaces a file the way editors do: a hidden temporary file
// renamed over the old one.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type result struct {
	kind string
	ch   pipeline.Change
}

// watch starts a reloader on path for agent and returns the channel of its
// results. It stops with the test.
func watch(t *testing.T, path string, agent *pipeline.Agent, log *slog.Logger) (*Reloader, chan result) {
	t.Helper()
	results := make(chan result, 100)
	r := New(Options{Path: path, Apply: agent.Apply, Logger: log, Debounce: 30 * time.Millisecond,
		Load: func(path string) (*pipeline.Config, error) {
			testkit.Register()
			return pipeline.Load(path, pipeline.LoadOptions{})
		},
		OnReload: func(kind string, ch pipeline.Change) { results <- result{kind, ch} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return r, results
}

// await waits for a reload whose result satisfies ok, skipping others (a
// burst of events may give an extra reload).
func await(t *testing.T, results chan result, what string, ok func(result) bool) result {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case res := <-results:
			if ok(res) {
				return res
			}
		case <-deadline:
			t.Fatalf("timed out waiting for a reload: %s", what)
		}
	}
}

func steadyYAML(count int) string {
	return fmt.Sprintf(`pipelines:
  steady:
    sources: [{name: gen, type: kit_gen, count: %d, batch: 500}]
    queues: {q: {}}
    sinks: [{name: out, type: kit_sink, batch_size: 1000}]
`, count)
}

func editedYAML(count int, tag string) string {
	return fmt.Sprintf(`pipelines:
  edited:
    sources: [{name: gen, type: kit_gen, count: %d, batch: 500}]
    stages:
      - map: {tag: '"%s"'}
    queues: {q: {}}
    sinks: [{name: out, type: kit_sink, batch_size: 1000}]
`, count, tag)
}

// TestReloadUnderLoad edits the config ten times, valid and invalid edits,
// while 500k records flow through two pipelines: every record arrives, the
// pipeline that did not change is never restarted, the other is restarted
// once per valid change and resumes from its checkpoint.
func TestReloadUnderLoad(t *testing.T) {
	const perPipeline = 250_000
	dir := t.TempDir()
	steady, edited := filepath.Join(dir, "steady.yaml"), filepath.Join(dir, "edited.yaml")
	writeFile(t, steady, steadyYAML(perPipeline))
	writeFile(t, edited, editedYAML(perPipeline, "v0"))
	agent := startAgent(t, dir)
	steadyRT := agent.Runtime("steady")
	_, results := watch(t, dir, agent, nil)

	type edit struct {
		file, text string
		want       func(result) bool
	}
	restarted := func(res result) bool {
		return res.kind == Success && fmt.Sprint(res.ch.Restarted) == "[edited]" && fmt.Sprint(res.ch.Unchanged) == "[steady]"
	}
	unchanged := func(res result) bool {
		return res.kind == Success && len(res.ch.Restarted)+len(res.ch.Started)+len(res.ch.Stopped) == 0
	}
	invalid := func(res result) bool { return res.kind == Invalid }
	edits := []edit{
		{edited, editedYAML(perPipeline, "v1"), restarted},
		{edited, strings.Replace(editedYAML(perPipeline, "v2"), "kit_sink", "kit_sinkk", 1), invalid},
		{edited, editedYAML(perPipeline, "v2"), restarted},
		{steady, "# a comment changes no pipeline\n" + steadyYAML(perPipeline), unchanged},
		{steady, "pipelines: [", invalid},
		{steady, steadyYAML(perPipeline), unchanged},
		{edited, strings.Replace(editedYAML(perPipeline, "v3"), "map: {tag:", "map: {tag: record.(", 1), invalid},
		{edited, editedYAML(perPipeline, "v3"), restarted},
		{edited, strings.Replace(editedYAML(perPipeline, "v4"), "batch: 500", "batch: many", 1), invalid},
		{edited, editedYAML(perPipeline, "v4"), restarted},
	}
	for i, e := range edits {
		writeFile(t, e.file, e.text)
		await(t, results, fmt.Sprintf("edit %d", i+1), e.want)
		if agent.Runtime("steady") != steadyRT {
			t.Fatalf("edit %d restarted the unchanged pipeline", i+1)
		}
	}
	if n := testkit.Sink("edited/out").Distinct(); n >= perPipeline {
		t.Logf("note: the edited pipeline had delivered everything (%d) before the last edit; the edits did not overlap the flow", n)
	}
	deadline := time.Now().Add(60 * time.Second)
	for testkit.Sink("steady/out").Distinct() != perPipeline || testkit.Sink("edited/out").Distinct() != perPipeline {
		if time.Now().After(deadline) {
			t.Fatalf("not every record arrived: steady %d, edited %d of %d each (edited counters %+v, missing %v)",
				testkit.Sink("steady/out").Distinct(), testkit.Sink("edited/out").Distinct(), perPipeline,
				agent.Runtime("edited").Counters(), testkit.Sink("edited/out").Missing(perPipeline, 5))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := testkit.Sink("edited/out").Missing(perPipeline, 5); len(m) > 0 {
		t.Fatalf("missing records %v", m)
	}
	if n := testkit.Starts("steady/gen"); n != 1 {
		t.Fatalf("the unchanged pipeline was started %d times", n)
	}
	if n := testkit.Starts("edited/gen"); n != 5 {
		t.Fatalf("the edited pipeline was started %d times, want 5 (start + 4 valid changes)", n)
	}
	t.Logf("deliveries: steady %d, edited %d (duplicates after restarts: %d)",
		testkit.Sink("steady/out").Total(), testkit.Sink("edited/out").Total(), testkit.Sink("edited/out").Total()-perPipeline)
}

// An invalid edit logs each problem as `sluice validate` prints it, once,
// and the running pipeline keeps running.
func TestInvalidEditLogsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	writeFile(t, path, steadyYAML(10))
	agent := startAgent(t, path)
	rt := agent.Runtime("steady")
	var buf testkit.Buffer
	r, results := watch(t, path, agent, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))

	bad := strings.Replace(strings.Replace(steadyYAML(10), "kit_sink", "kit_snk", 1), "count: 10", "count: ten", 1)
	writeFile(t, path, bad)
	await(t, results, "invalid", func(res result) bool { return res.kind == Invalid })
	_, want := pipeline.Load(path, pipeline.LoadOptions{})
	var es adapters.Errors
	if !errors.As(want, &es) || len(es) != 2 {
		t.Fatalf("want two problems, got %v", want)
	}
	// the same invalid content again (a touch) is not logged again
	writeFile(t, path, bad)
	await(t, results, "invalid again", func(res result) bool { return res.kind == Invalid })

	var problems []string
	summaries := 0
	for _, l := range testkit.JSONLines(t, buf.String()) {
		if p, ok := l["problem"].(string); ok {
			problems = append(problems, p)
		}
		if l["msg"] == "config not reloaded; the running pipelines keep running" {
			summaries++
		}
	}
	if len(problems) != 2 || problems[0] != es[0].Error() || problems[1] != es[1].Error() || summaries != 1 {
		t.Fatalf("logged problems %q (summaries %d), want %q once", problems, summaries, es)
	}
	if agent.Runtime("steady") != rt {
		t.Fatal("an invalid edit restarted the pipeline")
	}

	// a forced reload (SIGHUP) logs the problems again; the admin API's
	// Reload returns them
	r.Trigger()
	await(t, results, "forced", func(res result) bool { return res.kind == Invalid })
	if _, err := r.Reload(context.Background()); !errors.As(err, &es) {
		t.Fatalf("Reload = %v", err)
	}
	<-results
	// fixed: the pipeline is unchanged (same hash as before the bad edit)
	writeFile(t, path, steadyYAML(10))
	res := await(t, results, "fixed", func(res result) bool { return res.kind == Success })
	if fmt.Sprint(res.ch.Unchanged) != "[steady]" || agent.Runtime("steady") != rt {
		t.Fatalf("after the fix: %+v", res.ch)
	}
}

// SIGHUP reloads without any file change; with one config file, edits made
// by renaming over it are seen; pipelines are started and stopped.
func TestTriggerAndSingleFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	writeFile(t, path, steadyYAML(10))
	agent := startAgent(t, path)
	r, results := watch(t, path, agent, nil)
	r.Trigger()
	if res := await(t, results, "trigger", func(result) bool { return true }); res.kind != Success || fmt.Sprint(res.ch.Unchanged) != "[steady]" {
		t.Fatalf("trigger: %+v", res)
	}
	// another YAML file in the directory is not part of the config
	writeFile(t, filepath.Join(dir, "other.yaml"), "pipelines: [")
	writeFile(t, path, editedYAML(10, "x"))
	res := await(t, results, "swap", func(res result) bool { return res.kind != Success || len(res.ch.Started) > 0 })
	if res.kind != Success || fmt.Sprint(res.ch.Started) != "[edited]" || fmt.Sprint(res.ch.Stopped) != "[steady]" {
		t.Fatalf("swap: %+v", res)
	}
	testkit.Eventually(t, "delivery", func() bool { return testkit.Sink("edited/out").Distinct() == 10 })
}

func TestRunFailsOnMissingPath(t *testing.T) {
	r := New(Options{Path: filepath.Join(t.TempDir(), "nope"), Apply: func(context.Context, *pipeline.Config) (pipeline.Change, error) {
		return pipeline.Change{}, nil
	}})
	if err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("Run = %v", err)
	}
}

func TestRelevant(t *testing.T) {
	cases := []struct {
		name, file string
		op         string
		want       bool
	}{
		{"/c/orders.yaml", "", "write", true},
		{"/c/orders.yml", "", "create", true},
		{"/c/.orders.yaml.swp", "", "write", false},
		{"/c/..data", "", "create", true},
		{"/c/notes.txt", "", "write", false},
		{"/c/orders.yaml", "", "chmod", false},
		{"/c/p.yaml", "p.yaml", "rename", true},
		{"/c/q.yaml", "p.yaml", "write", false},
		{"/c/..2024_01_01", "p.yaml", "create", true},
	}
	for _, c := range cases {
		ev := fsEvent(c.name, c.op)
		if got := relevant(ev, c.file); got != c.want {
			t.Errorf("relevant(%s %s, %q) = %v, want %v", c.op, c.name, c.file, got, c.want)
		}
	}
}

// startAgent starts an agent on the pipeline config at path.
func startAgent(t *testing.T, path string) *pipeline.Agent {
	t.Helper()
	testkit.Register()
	cfg, err := pipeline.Load(path, pipeline.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	agent, _ := testkit.Agent(t, cfg, nil)
	return agent
}

func fsEvent(name, op string) fsnotify.Event {
	ops := map[string]fsnotify.Op{"write": fsnotify.Write, "create": fsnotify.Create, "rename": fsnotify.Rename, "chmod": fsnotify.Chmod}
	return fsnotify.Event{Name: name, Op: ops[op]}
}
