package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/disk"
)

func init() { extraCommands = append(extraCommands, newQueuesCmd) }

func newQueuesCmd() *cobra.Command {
	v := viper.New()
	cmd := &cobra.Command{
		Use:   "queues",
		Short: "Inspect and manage the queues in a data dir",
		Long: `Queues are named PIPELINE/QUEUE; each has a dead-letter queue PIPELINE/QUEUE.dlq,
and each pipeline has its own dead-letter queue PIPELINE/dlq for records that
failed before reaching a queue.

list, stats, peek and dlq only read: they work while an agent runs on the
data dir. replay and purge change the queues: they need the data dir to
themselves (stop the agent, or use the agent's admin API).`,
		Example: `  sluice queues list --data-dir /var/lib/sluice
  sluice queues peek orders/large -n 5
  sluice queues dlq orders/large
  sluice queues replay orders/large.dlq
  sluice queues purge orders/dlq --yes`,
	}
	cmd.PersistentFlags().String("data-dir", "./sluice-data", "data dir of the agent (env SLUICE_DATA_DIR)")
	_ = v.BindPFlag("data_dir", cmd.PersistentFlags().Lookup("data-dir"))
	v.SetEnvPrefix("SLUICE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	src := &queueSource{v: v}
	queuesNATSFlags(cmd.PersistentFlags(), v)
	cmd.AddCommand(queuesList(src), queuesStats(src), queuesPeek(src), queuesDLQ(src),
		queuesReplay(src), queuesPurge(src))
	return cmd
}

func openRO(dir string) (*disk.Broker, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, exitCode(1, fmt.Errorf("data dir %s: %w", dir, errors.Unwrap(err)))
	}
	b, err := disk.OpenReadOnly(dir, disk.Options{Logger: quietLogger()})
	if err != nil {
		return nil, exitCode(1, err)
	}
	return b, nil
}

func openRW(dir string) (*disk.Broker, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, exitCode(1, fmt.Errorf("data dir %s: %w", dir, errors.Unwrap(err)))
	}
	b, err := disk.Open(dir, disk.Options{Logger: quietLogger()})
	if errors.Is(err, broker.ErrLocked) {
		return nil, exitCode(1, fmt.Errorf("%v\nan agent is running on this data dir: stop it, or use its admin API (POST /api/v1/queues/...)", err))
	}
	if err != nil {
		return nil, exitCode(1, err)
	}
	return b, nil
}

func queueExists(b broker.Broker, name string) error {
	names, err := b.List()
	if err != nil {
		return exitCode(1, err)
	}
	for _, n := range names {
		if n == name {
			return nil
		}
	}
	return exitCode(1, fmt.Errorf("no queue %q (queues: %s)", name, strings.Join(names, ", ")))
}

func queuesList(src *queueSource) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List queues with their depth, size and dead letters",
		Example: "  sluice queues list --data-dir /var/lib/sluice",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := src.openRO()
			if err != nil {
				return err
			}
			defer b.Close()
			names, err := b.List()
			if err != nil {
				return exitCode(1, err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "QUEUE\tMESSAGES\tBYTES\tOLDEST\tCONSUMERS (pending)")
			for _, n := range names {
				q, err := b.Open(n, broker.Options{})
				if err != nil {
					fmt.Fprintf(w, "%s\t?\t?\t?\t%v\n", n, err)
					continue
				}
				st := q.Stats()
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", n, st.Messages, humanBytes(st.Bytes), humanAge(st.OldestAge, st.Messages), groupsLine(st.Groups))
			}
			return w.Flush()
		},
	}
}

func groupsLine(gs []broker.GroupStats) string {
	var parts []string
	for _, g := range gs {
		if g.Name == broker.ReplayGroup {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", g.Name, g.Pending))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func humanAge(d time.Duration, n int64) string {
	if n == 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}

func queuesStats(src *queueSource) *cobra.Command {
	return &cobra.Command{
		Use:     "stats QUEUE",
		Short:   "Print a queue's statistics as JSON",
		Example: "  sluice queues stats orders/large",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := src.openRO()
			if err != nil {
				return err
			}
			defer b.Close()
			if err := queueExists(b, args[0]); err != nil {
				return err
			}
			q, err := b.Open(args[0], broker.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(q.Stats())
		},
	}
}

// printable is a message as the CLI and the admin API print it.
type printable struct {
	ID      string            `json:"id"`
	Time    time.Time         `json:"time"`
	Meta    map[string]string `json:"meta,omitempty"`
	Record  adapters.Record   `json:"record,omitempty"`
	Raw     string            `json:"raw,omitempty"`
	RawSize int               `json:"raw_bytes,omitempty"`
}

func toPrintable(m adapters.Message) printable {
	p := printable{ID: m.ID, Time: m.Time, Meta: m.Meta, Record: m.Record}
	if len(m.Raw) > 0 {
		p.RawSize = len(m.Raw)
		raw := m.Raw
		if len(raw) > 4096 {
			raw = raw[:4096]
		}
		p.Raw = base64.StdEncoding.EncodeToString(raw)
	}
	return p
}

func peekCmd(use, short, example string, src *queueSource, dlq bool) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if dlq && !broker.IsDLQ(name) {
				name += broker.DLQSuffix
			}
			b, err := src.openRO()
			if err != nil {
				return err
			}
			defer b.Close()
			if err := queueExists(b, name); err != nil {
				return err
			}
			q, err := b.Open(name, broker.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			msgs, err := q.Peek(cmd.Context(), n)
			if err != nil {
				return exitCode(1, err)
			}
			out := cmd.OutOrStdout()
			if dlq {
				return printDeadLetters(out, msgs)
			}
			enc := json.NewEncoder(out)
			for _, m := range msgs {
				if err := enc.Encode(toPrintable(m)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&n, "n", "n", 10, "how many messages to show, from the oldest")
	return cmd
}

func queuesPeek(src *queueSource) *cobra.Command {
	return peekCmd("peek QUEUE [-n N]", "Show the oldest messages of a queue as JSON lines, without consuming them",
		"  sluice queues peek orders/orders -n 3", src, false)
}

func queuesDLQ(src *queueSource) *cobra.Command {
	return peekCmd("dlq QUEUE [-n N]", "List a queue's dead letters with their errors",
		"  sluice queues dlq orders/large      # reads orders/large.dlq\n  sluice queues dlq orders/dlq        # the pipeline's own", src, true)
}

func printDeadLetters(w io.Writer, msgs []adapters.Message) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFAILED\tATTEMPTS\tSINK\tERROR")
	for _, m := range msgs {
		failed := m.Meta[adapters.MetaLastErr]
		if failed == "" {
			failed = m.Time.UTC().Format(time.RFC3339)
		}
		sink := m.Meta[adapters.MetaGroup]
		if sink == "" {
			sink = "(" + m.Meta["reason"] + ")"
		}
		attempts := m.Meta[adapters.MetaAttempts]
		if attempts == "" {
			attempts = "-"
		}
		errText := strings.ReplaceAll(m.Meta[adapters.MetaError], "\n", " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.ID, failed, attempts, sink, errText)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d dead letter(s) shown\n", len(msgs))
	return nil
}

func queuesReplay(src *queueSource) *cobra.Command {
	var to string
	var n int
	cmd := &cobra.Command{
		Use:   "replay DLQ [--to QUEUE] [-n N]",
		Short: "Move dead letters back to their queue",
		Long: `Replay moves messages from a dead-letter queue back to the queue they came from
(PIPELINE/QUEUE.dlq → PIPELINE/QUEUE), for the sink that failed them only: the
other sinks of that queue, which delivered them, do not get them again. The
pipeline's own dead-letter queue PIPELINE/dlq holds records that never
reached a queue: give --to QUEUE to send them to one. Each message is
enqueued before it leaves the dead-letter queue, so a crash in between
duplicates it rather than losing it.`,
		Example: `  sluice queues replay orders/large.dlq
  sluice queues replay orders/dlq --to orders/orders -n 100`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			from := args[0]
			if !broker.IsDLQ(from) {
				return &usageError{fmt.Errorf("%s is not a dead-letter queue (PIPELINE/QUEUE.dlq or PIPELINE/dlq)", from)}
			}
			target := to
			if target == "" {
				if !strings.HasSuffix(from, broker.DLQSuffix) {
					return &usageError{fmt.Errorf("%s holds records that never reached a queue: say where they go with --to PIPELINE/QUEUE", from)}
				}
				target = strings.TrimSuffix(from, broker.DLQSuffix)
			}
			b, err := src.openRW()
			if err != nil {
				return err
			}
			defer b.Close()
			for _, name := range []string{from, target} {
				if err := queueExists(b, name); err != nil {
					return err
				}
			}
			dq, err := b.Open(from, broker.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			tq, err := b.Open(target, broker.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			moved, err := broker.Replay(cmd.Context(), dq, tq, n)
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d message(s) from %s to %s\n", moved, from, target)
			if err != nil {
				return exitCode(1, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target queue PIPELINE/QUEUE (default: the queue the dead-letter queue belongs to)")
	cmd.Flags().IntVarP(&n, "n", "n", 0, "move at most N messages (default: all)")
	return cmd
}

func queuesPurge(src *queueSource) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge QUEUE [--yes]",
		Short: "Delete every message of a queue",
		Long: `Purge deletes every message of a queue, for every sink reading it. It asks
for confirmation (type the queue's name) unless --yes is given; without a
terminal to ask on, --yes is required.`,
		Example: "  sluice queues purge orders/dlq --yes",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			b, err := src.openRW()
			if err != nil {
				return err
			}
			defer b.Close()
			if err := queueExists(b, name); err != nil {
				return err
			}
			q, err := b.Open(name, broker.Options{})
			if err != nil {
				return exitCode(1, err)
			}
			if !yes {
				fmt.Fprintf(cmd.ErrOrStderr(), "Purge %d message(s) from %s? Type the queue name to confirm: ", q.Stats().Messages, name)
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(answer) != name {
					return exitCode(1, errors.New("not confirmed; nothing purged (use --yes to skip the question)"))
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			n, err := q.Purge(ctx)
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged %d message(s) from %s\n", n, name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}
