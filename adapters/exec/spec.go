package exec

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

func init() {
	adapters.RegisterSource("exec", sourceSpec, newSource)
	adapters.RegisterSink("exec", sinkSpec, newSink)
}

// commonFields are the options of both the source and the sink.
func commonFields() []adapters.Field {
	return []adapters.Field{
		{Name: "command", Type: adapters.TypeStrings, Description: "The program and its arguments, as a list (no shell is involved). A program name without a slash is looked up in PATH; a relative path is relative to `dir`.", Example: []any{"python3", "source.py"}},
		{Name: "dir", Type: adapters.TypeString, Default: "", Description: "Working directory of the program. Relative to the directory of the pipeline file; empty means that directory."},
		{Name: "env", Type: adapters.TypeStringMap, Optional: true, Secret: true, Description: "Environment variables added to the agent's (or replacing them, with `inherit_env: false`). Values are never logged; put credentials here, as `${VAR}` references, rather than in `config`.", Example: map[string]any{"QUEUE_DSN": "${QUEUE_DSN}"}},
		{Name: "inherit_env", Type: adapters.TypeBool, Default: true, Description: "Pass the agent's environment to the program."},
		{Name: "config", Type: adapters.TypeAny, Optional: true, Description: "Any value, passed to the program in the hello frame as `config`.", Example: map[string]any{"db": "orders.db", "poll_interval": 1}},
		{Name: "hello_timeout", Type: adapters.TypeDuration, Default: "10s", Description: "How long the program has to answer the hello after it starts."},
		{Name: "stop_timeout", Type: adapters.TypeDuration, Default: "5s", Description: "After its stdin closes, how long the program has to exit before SIGTERM, and then before SIGKILL."},
		{Name: "restart_backoff", Type: adapters.TypeObject, Default: map[string]any{}, Description: "Delay before a program that exited is started again. It doubles after each failure (an exit status other than 0, a crash, a protocol error) and is `initial` after a clean exit.", Fields: []adapters.Field{
			{Name: "initial", Type: adapters.TypeDuration, Default: "1s", Description: "Delay after a clean exit or a first failure."},
			{Name: "max", Type: adapters.TypeDuration, Default: "30s", Description: "Upper bound of the delay; a program that ran longer than this starts over at `initial`."},
		}},
		{Name: "stderr_level", Type: adapters.TypeString, Default: "info", Enum: []string{"debug", "info", "warn", "error"}, Description: "Log level of the lines the program writes to stderr."},
		{Name: "max_message_size", Type: adapters.TypeSize, Default: "16MiB", Description: "Longest line the program may write to stdout; a longer one is a protocol error."},
	}
}

var sourceSpec = &adapters.Spec{
	Summary: "Run a program in any language that emits messages over a JSON-lines protocol.",
	Description: `The exec source starts ` + "`command`" + ` as a child process and reads messages
it writes to stdout, one JSON object per line; see docs/exec-protocol.md. Once
the engine has durably enqueued a message, the program receives an ` + "`ack`" + `
with its id (a ` + "`nack`" + ` when it could not be enqueued), so a program backed by
a queue or a table deletes only what is safe.

When the program exits it is started again after ` + "`restart_backoff`" + `. Messages
it emitted and was not acked for are its to emit again: nothing is lost as
long as it deletes only what was acked. Message IDs are derived from the
program's ids, so a message emitted again keeps its ID.

The program ends the source by sending ` + "`{\"type\":\"end\"}`" + `; under ` + "`sluice run --once`" + `
an exit with status 0 also ends it.`,
	Fields: append(commonFields(),
		adapters.Field{Name: "batch_size", Type: adapters.TypeInt, Default: 256, Description: "Most messages handed to the engine at once.", Check: positive},
		adapters.Field{Name: "acks", Type: adapters.TypeBool, Default: true, Description: "Send ack and nack frames to the program. Turn off for a program that never reads its stdin after the hello."},
	),
	Example: `type: exec
command: [python3, sqlite_source.py]
config:
  db: orders.db
  poll_interval: 1
restart_backoff: {initial: 1s, max: 30s}`,
	Check: checkCommon,
}

var sinkSpec = &adapters.Spec{
	Summary: "Hand messages to a program in any language over a JSON-lines protocol.",
	Description: `The exec sink starts ` + "`command`" + ` as a child process and writes each
message to its stdin, one JSON object per line, followed by a ` + "`flush`" + ` frame at
the end of each batch; see docs/exec-protocol.md. The program answers every
message with an ` + "`ack`" + ` once it is safely written, or a ` + "`nack`" + ` with an error
and its kind (` + "`transient`" + `, ` + "`permanent`" + `, ` + "`unavailable`" + `).

A message the program did not answer within ` + "`write_timeout`" + `, or before it
exited, fails transiently and is delivered again; the program is restarted.
Batches are handed to the program one at a time, so ` + "`workers`" + ` above 1 adds
no parallelism.`,
	Fields: append(commonFields(),
		adapters.Field{Name: "write_timeout", Type: adapters.TypeDuration, Default: "30s", Description: "How long the program has to answer every message of a batch; then the rest fail (transiently) and the program is restarted."},
	),
	Example: `type: exec
command: [python3, file_sink.py]
config: {path: out/orders.jsonl}
write_timeout: 30s`,
	Check: checkCommon,
}

func positive(v any) error {
	if n, _ := v.(int64); n < 1 {
		return fmt.Errorf("must be 1 or more, got %d", n)
	}
	return nil
}

func checkCommon(c *adapters.Config) error {
	cmd := c.Strings("command")
	if len(cmd) == 0 || strings.TrimSpace(cmd[0]) == "" {
		return c.Errorf("command", "must name a program, like [python3, source.py]")
	}
	b := c.Object("restart_backoff")
	if b.Duration("initial") <= 0 {
		return b.Errorf("initial", "must be positive")
	}
	if b.Duration("max") < b.Duration("initial") {
		return b.Errorf("max", "must be at least initial (%s)", b.Duration("initial"))
	}
	for _, f := range []string{"hello_timeout", "stop_timeout"} {
		if c.Duration(f) <= 0 {
			return c.Errorf(f, "must be positive")
		}
	}
	if c.Has("write_timeout") && c.Duration("write_timeout") <= 0 {
		return c.Errorf("write_timeout", "must be positive")
	}
	if n := c.Size("max_message_size"); n < 1024 {
		return c.Errorf("max_message_size", "must be at least 1KiB, got %d", n)
	}
	return nil
}

// options are the decoded settings shared by the source and the sink.
type options struct {
	role         string
	pc           procConfig
	config       any
	helloTimeout time.Duration
	stopTimeout  time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
}

func decodeOptions(role string, c *adapters.Config, res adapters.Resources) (*options, error) {
	log := res.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := c.String("dir")
	if base := c.File(); base != "" && !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(base), dir)
	}
	env := []string{} // not nil: a nil Env would inherit the agent's
	if c.Bool("inherit_env") {
		env = os.Environ()
	}
	for k, v := range c.StringMap("env") {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, c.Errorf("env", "invalid variable name %q", k)
		}
		env = append(env, k+"="+v)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("stderr_level"))); err != nil {
		return nil, c.Errorf("stderr_level", "%v", err)
	}
	var config any
	if c.Has("config") {
		config = c.Any("config")
	}
	b := c.Object("restart_backoff")
	o := &options{
		role: role,
		pc: procConfig{
			command:     c.Strings("command"),
			dir:         dir,
			env:         env,
			maxLine:     int(min(c.Size("max_message_size"), 1<<30)),
			stderrLevel: level,
			log:         log.With("program", c.Strings("command")[0]),
		},
		config:       config,
		helloTimeout: c.Duration("hello_timeout"),
		stopTimeout:  c.Duration("stop_timeout"),
		backoffMin:   b.Duration("initial"),
		backoffMax:   b.Duration("max"),
	}
	if len(o.pc.command) == 0 {
		return nil, errors.New("exec: command is empty")
	}
	return o, nil
}
