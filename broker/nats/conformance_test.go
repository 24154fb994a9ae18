package natsbroker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
	natsbroker "github.com/sluicehq/sluice/broker/nats"
	"github.com/sluicehq/sluice/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperAgent())
	}
	testenv.NATSMain(m)
}

// testOptions are the options of a broker private to one test: names of its
// own, removed when the test ends.
func testOptions(t *testing.T, url, prefix string) natsbroker.Options {
	t.Helper()
	o := natsbroker.Options{URL: url, Prefix: prefix, SubjectPrefix: strings.ToLower(prefix), LeaseTTL: time.Second}
	if os.Getenv("SLUICE_NATS_TEST_DEBUG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

// connect opens a broker and removes every stream and bucket of its prefix
// when the test ends.
func connect(t *testing.T, o natsbroker.Options) *natsbroker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := natsbroker.Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanup(t, o) })
	return b
}

// cleanup deletes the streams and buckets of o.Prefix.
func cleanup(t *testing.T, o natsbroker.Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := natsbroker.Connect(ctx, o)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer b.Close()
	if err := b.DeleteAll(ctx); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

func TestConformance(t *testing.T) {
	url := testenv.NATS(t)
	open := func(t *testing.T, dir string) broker.Broker {
		// the same dir (a reopen) gets the same names
		sum := sha256.Sum256([]byte(dir))
		prefix := "C" + strings.ToUpper(hex.EncodeToString(sum[:5]))
		return connect(t, testOptions(t, url, prefix))
	}
	t.Run("Run", func(t *testing.T) { brokertest.Run(t, open) })
	t.Run("Durable", func(t *testing.T) { brokertest.RunDurable(t, open) })
}
