package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/pipeline"
)

func init() { extraCommands = append(extraCommands, newTestCmd) }

func newTestCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "test -c PATH",
		Short: "Run pipeline unit tests (*.test.yaml) without touching any system",
		Long: `Test runs the unit tests written beside pipelines: for a pipeline file
NAME.yaml, the tests live in NAME.test.yaml. Each test feeds input — records,
or raw bytes decoded by a source's codec — into the pipeline's stages and
checks which records reach each queue, how many a filter dropped and what
goes to the dead-letter queue. No source or sink runs.

  tests:
    - name: big orders go to the large queue
      input:
        - record: {ORDER_NO: "42", AMT: "1500000"}
        - raw: "ORDER_NO;AMT\n43;100\n"      # decoded by the source's codec
      expect:
        queues:
          large: [{order_id: 42}]              # only the fields given are compared
          orders: [{order_id: 43}]
        dropped: 0
        dlq: []                                 # or [{error: "substring"}]

PATH is a test file, a pipeline file (its NAME.test.yaml is run) or a
directory searched recursively. Exit status 1 when any test fails.`,
		Example: `  sluice test -c examples/quickstart/pipeline.yaml
  sluice test -c examples/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := pipeline.FindTestFiles(path)
			if err != nil {
				return exitCode(1, err)
			}
			if len(files) == 0 {
				return exitCode(1, fmt.Errorf("no *.test.yaml files under %s", path))
			}
			out := cmd.OutOrStdout()
			passed, failed := 0, 0
			for _, f := range files {
				results, err := pipeline.RunTestFile(f, pipeline.LoadOptions{})
				if err != nil {
					fmt.Fprintf(out, "ERROR %s\n%v\n", f, err)
					failed++
					continue
				}
				for _, r := range results {
					if r.Passed() {
						passed++
						fmt.Fprintf(out, "ok    %s: %s\n", r.File, r.Name)
						continue
					}
					failed++
					fmt.Fprintf(out, "FAIL  %s: %s\n", r.File, r.Name)
					for _, f := range r.Failures {
						fmt.Fprintf(out, "      %s\n", f)
					}
				}
			}
			fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
			if failed > 0 {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "test file, pipeline file or directory (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
