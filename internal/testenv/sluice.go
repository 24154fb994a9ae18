package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var sluiceBin struct {
	once sync.Once
	path string
	err  error
}

// SluiceBinary builds ./cmd/sluice once per test process, without -race, and
// returns its path. Every package that uses it shares one build in Go's
// cache. The binary is left in a temp dir for the process's lifetime.
func SluiceBinary(t testing.TB) string {
	t.Helper()
	sluiceBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin")
		if err != nil {
			sluiceBin.err = err
			return
		}
		sluiceBin.path = filepath.Join(dir, "sluice")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", sluiceBin.path, "github.com/sluicehq/sluice/cmd/sluice").CombinedOutput()
		if err != nil {
			sluiceBin.err = fmt.Errorf("go build ./cmd/sluice: %w\n%s", err, out)
		}
	})
	if sluiceBin.err != nil {
		t.Fatal(sluiceBin.err)
	}
	return sluiceBin.path
}
