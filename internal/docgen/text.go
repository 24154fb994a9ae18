package docgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sluicehq/sluice/adapters"
)

// WriteList prints every source, sink, codec and stage with its summary,
// grouped by kind.
func WriteList(w io.Writer) error {
	entries := Entries()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, k := range Kinds {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%s:\n", k.Title())
		n := 0
		for _, e := range entries {
			if e.Kind != k {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\n", e.Name, e.Summary)
			n++
		}
		if k == Codec {
			fmt.Fprintf(tw, "  %s\t%s\n", "none", "Do not decode: the whole input is one message, in Raw.")
			n++
		}
		if n == 0 {
			fmt.Fprintln(tw, "  (none registered)")
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "Run 'sluice adapters NAME' for the fields of one; 'sluice adapters queue' for queue options.")
	return tw.Flush()
}

// WriteText prints one entry for a terminal: summary, description, fields
// with type, default or required, secret, allowed values and example, and
// the example configuration. Secret fields' defaults and examples are never
// printed, and secret values in the example are redacted.
func WriteText(w io.Writer, e Entry) error {
	if e.Kind == Queue {
		fmt.Fprintf(w, "queue options: %s\n", e.Summary)
	} else {
		fmt.Fprintf(w, "%s %s: %s\n", e.Kind, e.Name, e.Summary)
	}
	if e.Description != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(e.Description))
	}
	if e.Kind == Stage {
		if e.Schema != nil {
			b, err := json.MarshalIndent(e.Schema, "  ", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "\nValue (JSON Schema):\n  %s\n", b)
		}
	} else {
		fields := append(EngineFields(e.Kind), e.Fields...)
		if e.Kind == Codec {
			fmt.Fprintf(w, "\nWritten as `codec: %s` or `codec: {type: %s, ...}` with these fields:\n", e.Name, e.Name)
		} else {
			fmt.Fprintln(w, "\nFields:")
		}
		if len(fields) == 0 {
			fmt.Fprintln(w, "  (none)")
		}
		flatFields("", fields, func(path string, f adapters.Field, depth int) {
			ind := strings.Repeat("  ", depth+1)
			facts := append([]string{typeLabel(f)}, fieldFacts(f)...)
			fmt.Fprintf(w, "%s%s  (%s)\n", ind, path, strings.Join(facts, ", "))
			if d := strings.TrimSpace(f.Description); d != "" {
				fmt.Fprintf(w, "%s    %s\n", ind, strings.ReplaceAll(d, "\n", "\n"+ind+"    "))
			}
			if len(f.Enum) > 0 {
				fmt.Fprintf(w, "%s    Allowed: %s\n", ind, strings.Join(f.Enum, ", "))
			}
			if f.Example != nil && !f.Secret {
				fmt.Fprintf(w, "%s    Example: %s\n", ind, formatValue(f.Example))
			}
		})
	}
	if ex := strings.TrimRight(redactExample(e.Example, e.Fields), "\n"); ex != "" {
		fmt.Fprintf(w, "\nExample:\n  %s\n", strings.ReplaceAll(ex, "\n", "\n  "))
	}
	return nil
}
