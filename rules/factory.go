package rules

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

var componentType = component.MustNewType("weft_rules")

// NewFactory returns the factory of the weft_rules extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, createExtension, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	return &Config{
		Store:              component.MustNewID("weft_store"),
		NameValidation:     nameValidationUTF8,
		EvaluationInterval: 15 * time.Second,
		ReloadInterval:     30 * time.Second,
		ResendDelay:        time.Minute,
		ForGracePeriod:     10 * time.Minute,
		OutageTolerance:    time.Hour,
		Evidence: EvidenceConfig{
			MaxTraces:   3,
			MaxLogLines: 3,
			Timeout:     100 * time.Millisecond,
		},
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	e, err := newExtension(set.TelemetrySettings, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	e.id, e.lastGood = set.ID, processSets
	return e, nil
}
