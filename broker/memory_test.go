package broker_test

import (
	"testing"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/brokertest"
)

func TestMemoryConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, dir string) broker.Broker { return broker.NewMemory() })
}
