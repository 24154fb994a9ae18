package cli

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/docgen"
)

func init() { extraCommands = append(extraCommands, newSchemaCmd) }

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of pipeline files",
		Long: `Schema prints a JSON Schema (draft 2020-12) of pipeline files, generated from
the specs of every source, sink, codec and stage this binary knows, so an
editor can complete and check pipeline YAML. Every scalar also accepts a
${VAR} reference. The schema checks structure and types; 'sluice validate'
checks the rest (expressions, queue references, relations between fields).`,
		Example: `  sluice schema > sluice.schema.json
  # VS Code (YAML extension): "yaml.schemas": {"./sluice.schema.json": "pipelines/*.yaml"}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(docgen.Schema())
		},
	}
}
