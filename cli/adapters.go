package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/docgen"
)

func init() { extraCommands = append(extraCommands, newAdaptersCmd) }

func newAdaptersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "adapters [KIND] [NAME]",
		Short: "List sources, sinks, codecs and stages, or describe one",
		Long: `Adapters lists every source, sink, codec and stage type this binary knows,
with a one-line summary. Given a name, it prints that type's fields (type,
default or required, secret, allowed values, example) and an example
configuration. When a name is both a source and a sink (file, exec), both
are printed unless a kind is given: source, sink, codec, stage or queue.
Secret fields' defaults and examples are never printed.`,
		Example: `  sluice adapters
  sluice adapters sinks
  sluice adapters csv
  sluice adapters source file
  sluice adapters queue`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			var kind docgen.Kind
			name := ""
			switch len(args) {
			case 0:
				return docgen.WriteList(out)
			case 1:
				if k, ok := docgen.ParseKind(args[0]); ok && k != docgen.Queue {
					return listKind(cmd, k)
				}
				name = args[0]
			case 2:
				k, ok := docgen.ParseKind(args[0])
				if !ok {
					return &usageError{fmt.Errorf("unknown kind %q (known: source, sink, codec, stage, queue)", args[0])}
				}
				kind, name = k, args[1]
			}
			entries := docgen.Find(kind, name)
			if len(entries) == 0 {
				what := "adapter, codec or stage"
				if kind != "" {
					what = string(kind)
				}
				return exitCode(1, fmt.Errorf("unknown %s %q (known: %s)", what, name, strings.Join(docgen.KnownNames(), ", ")))
			}
			for i, e := range entries {
				if i > 0 {
					fmt.Fprintln(out, "\n"+strings.Repeat("-", 72)+"\n")
				}
				if err := docgen.WriteText(out, e); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func listKind(cmd *cobra.Command, k docgen.Kind) error {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s:\n", k.Title())
	width := 0
	entries := docgen.Entries()
	for _, e := range entries {
		if e.Kind == k && len(e.Name) > width {
			width = len(e.Name)
		}
	}
	for _, e := range entries {
		if e.Kind == k {
			fmt.Fprintf(out, "  %-*s  %s\n", width, e.Name, e.Summary)
		}
	}
	return nil
}
