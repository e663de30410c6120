// Package containerlogs implements the container_logs receiver: it tails
// Kubernetes container log files (CRI and docker json-file), reassembles
// partial lines, attaches pod metadata from the path and checkpoints file
// offsets only after the next consumer accepted the data.
package containerlogsreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

const typeStr = "container_logs"

// NewFactory returns the factory of the container_logs receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		component.MustNewType(typeStr),
		createDefaultConfig,
		receiver.WithLogs(createLogs, component.StabilityLevelAlpha),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Include:              []string{"/var/log/pods/*/*/*.log"},
		StartAt:              startAtEnd,
		PollInterval:         200 * time.Millisecond,
		FallbackPollInterval: 10 * time.Second,
		MinReadInterval:      200 * time.Millisecond,
		RescanInterval:       500 * time.Millisecond,
		FullRescanInterval:   time.Minute,
		MaxLogSize:           1 << 20,
		FlushTimeout:         5 * time.Second,
		MaxBatchRecords:      1000,
		MaxBatchBytes:        1 << 20,
		MaxInFlightBytes:     64 << 20,
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(set, cfg.(*Config), next)
}
