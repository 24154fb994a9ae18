// Command sluice-spool is Sluice with two more adapters: a "spool" source
// that reads a legacy system's print-spool files page by page, and a
// "maildir" sink that drops each message as a file into a maildir-style
// pickup directory. Every built-in command and adapter is there too:
//
//	sluice-spool adapters spool
//	sluice-spool run -c pipeline.yaml --once
package main

import (
	"github.com/sluicehq/sluice/cli"

	_ "github.com/sluicehq/sluice/adapters/all" // the built-in adapters and codecs

	_ "example.com/sluice-spool/maildir" // registers the maildir sink
	_ "example.com/sluice-spool/spool"   // registers the spool source
)

func main() { cli.Main() }
