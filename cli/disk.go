package cli

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/disk"
)

// diskCommitHook, when set (by the metrics wiring), observes every commit of
// the disk broker: latency, records and bytes.
var diskCommitHook func(latency time.Duration, records, bytes int)

// exitFatal is the exit status after a fatal storage error (a failed write
// or fsync of the data dir).
const exitFatal = 3

func init() {
	diskOpener = func(dir string, log interface{ Warn(string, ...any) }) (broker.Broker, error) {
		logger, _ := log.(*slog.Logger)
		return disk.Open(dir, disk.Options{
			Logger: logger,
			// A failed fsync cannot be retried safely (the kernel may have
			// dropped the dirty pages): stop at once. Everything already
			// acknowledged is on disk; what was not is read again.
			OnFatal: func(err error) {
				msg := fmt.Sprintf("fatal storage error in data dir %s: %v; stopping (acknowledged data is safe)", dir, err)
				if logger != nil {
					logger.Error(msg)
				} else {
					fmt.Fprintln(os.Stderr, "sluice:", msg)
				}
				os.Exit(exitFatal)
			},
			OnCommit: func(latency time.Duration, records, bytes int) {
				if h := diskCommitHook; h != nil {
					h(latency, records, bytes)
				}
			},
		})
	}
}
