package disk

import (
	"io"
	"log/slog"
	"testing"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openForTest(t *testing.T, dir string) broker.Broker {
	t.Helper()
	b, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) { brokertest.Run(t, openForTest) }

func TestConformanceDurable(t *testing.T) { brokertest.RunDurable(t, openForTest) }
