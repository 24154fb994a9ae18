package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/pipeline"
)

func newValidateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate -c PATH",
		Short: "Check pipeline configs and report every problem",
		Long: `Validate loads a pipeline file, or every *.yaml file of a directory, and
checks everything that can be checked without connecting to anything: keys,
types, required fields, adapter and codec types, queue references,
expressions, ${VAR} references. It prints every problem at once, each with
its file, line and key path, and exits 1 when there is any.`,
		Example: `  sluice validate -c pipeline.yaml
  sluice validate -c /etc/sluice/pipelines/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(path, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			n := 0
			for _, p := range cfg.Pipelines {
				n += len(p.Sources) + len(p.Sinks)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d pipeline(s) in %d file(s)\n", len(cfg.Pipelines), len(cfg.Files))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "pipeline file or directory of *.yaml files (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// loadConfig loads pipelines and prints every problem to w; the returned
// error makes the command exit 1.
func loadConfig(path string, w io.Writer) (*pipeline.Config, error) {
	cfg, err := pipeline.Load(path, pipeline.LoadOptions{})
	if err == nil {
		return cfg, nil
	}
	var es adapters.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintln(w, e.Error())
		}
		return nil, exitCode(1, fmt.Errorf("%d problem(s) found", len(es)))
	}
	return nil, exitCode(1, err)
}
