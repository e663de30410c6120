package weftrulesextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/weftobs/weft/rules"
)

var componentType = component.MustNewType("weft_rules")

// NewFactory returns the factory of the weft_rules extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(componentType, createDefaultConfig, createExtension, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	return &Config{
		Store:  component.MustNewID("weft_store"),
		Config: rules.DefaultConfig(),
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(set, cfg.(*Config), processSets), nil
}

// processSets is the process's store of last good rule sets. It is the
// one package-level variable of weft_rules, and has to be: the collector
// calls NewFactory again on every reload (otelcol.CollectorSettings.Factories
// runs per reload), so nothing held by a factory or an instance survives.
var processSets = &rules.LastGood{}
