// Command gendocs writes Sluice's Markdown reference (docs/reference) from
// the specs of every built-in source, sink, codec and stage. Run it with
// `go generate ./internal/docgen`.
package main

import (
	"flag"
	"fmt"
	"os"

	_ "github.com/sluicehq/sluice/adapters/all" // the built-in adapters and codecs
	"github.com/sluicehq/sluice/internal/docgen"
)

func main() {
	out := flag.String("out", "docs/reference", "directory to write the reference to")
	flag.Parse()
	if err := docgen.WriteReference(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
