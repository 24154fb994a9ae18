package cli

import (
	"log/slog"
	"os"
)

// quietLogger logs warnings and errors to stderr, for the short commands.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
