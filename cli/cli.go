// Package cli holds Sluice's command-line interface. cmd/sluice is a thin
// main around Main; a custom binary that registers its own adapters calls
// Main the same way and gets every built-in command with its types added.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode returns an error that makes the process exit with code after
// printing err (when not nil).
func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

// Main runs the CLI with os.Args and exits the process with its status.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGPIPE)
	defer stop()
	os.Exit(Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Execute runs the CLI with args and returns the exit status: 0 on success,
// 1 when the command failed (invalid config, a run that dead-lettered
// messages in --once mode), 2 on usage errors.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "sluice:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "sluice:", err)
	if isUsage(err) {
		fmt.Fprintln(stderr, "Run 'sluice --help' for usage.")
		return 2
	}
	return 1
}

type usageError struct{ error }

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Move data out of legacy systems, reliably",
		Long: `Sluice runs YAML pipelines beside legacy systems: sources (files, SFTP,
MySQL/MariaDB, ...) feed stages (map, filter, route) that feed durable
on-disk queues that feed sinks. Nothing acknowledged is ever lost.`,
		Example: `  sluice validate -c pipelines/
  sluice run -c pipelines/ --data-dir /var/lib/sluice
  sluice queues list --data-dir /var/lib/sluice`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newRunCmd(), newValidateCmd(), newVersionCmd())
	for _, f := range extraCommands {
		root.AddCommand(f())
	}
	return root
}

// extraCommands are added by other files of this package (queues, adapters,
// schema, test), so each command lives in a file of its own.
var extraCommands []func() *cobra.Command
