// Command sluice runs Sluice pipelines. See `sluice --help`.
package main

import (
	"github.com/sluicehq/sluice/cli"

	_ "github.com/sluicehq/sluice/adapters/all" // the built-in adapters and codecs
)

func main() { cli.Main() }
