package weftpinsextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

// componentType is the extension's type name in the collector configuration.
var componentType = component.MustNewType("weft_pins")

const (
	defaultTTL    = 30 * time.Minute
	defaultMaxTTL = 6 * time.Hour
	// defaultMaxPins: a pin costs 65 bytes (measured: map entry, heap
	// entry, state ring), so 100k pins hold 6.5 MB; at one pin per error
	// trace that is 55 error traces a second kept for the default 30m.
	defaultMaxPins = 100_000

	defaultRejoinInterval    = time.Minute
	defaultGossipInterval    = 200 * time.Millisecond
	defaultPushPullInterval  = 30 * time.Second
	defaultRetransmitMult    = 4
	defaultStatePins         = 4096
	defaultPeerPinsPerSecond = 1000
	defaultLeaveTimeout      = 5 * time.Second
)

// NewFactory returns the factory of the weft_pins extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, createExtension, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	return &Config{
		TTL:     defaultTTL,
		MaxTTL:  defaultMaxTTL,
		MaxPins: defaultMaxPins,
		Gossip: GossipConfig{
			Enabled:           true,
			RejoinInterval:    defaultRejoinInterval,
			GossipInterval:    defaultGossipInterval,
			PushPullInterval:  defaultPushPullInterval,
			RetransmitMult:    defaultRetransmitMult,
			StatePins:         defaultStatePins,
			PeerPinsPerSecond: defaultPeerPinsPerSecond,
			LeaveTimeout:      defaultLeaveTimeout,
		},
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newPins(set, cfg.(*Config)), nil
}
