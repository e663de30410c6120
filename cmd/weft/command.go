package main

import (
	"github.com/spf13/cobra"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/httpprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
	"go.uber.org/zap"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func buildInfo() component.BuildInfo {
	return component.BuildInfo{
		Command:     "weft",
		Description: "weft node agent: logs, metrics and traces of a Kubernetes node, tied together by trace ID",
		Version:     version,
	}
}

// collectorSettings returns the settings weft runs the collector with. uris
// are the configuration sources used when no --config flag is given; weft
// passes its embedded DaemonSet profile.
func collectorSettings(uris ...string) otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo:      buildInfo(),
		Factories:      components,
		LoggingOptions: []zap.Option{quietShutdown()},
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				URIs: uris,
				ProviderFactories: []confmap.ProviderFactory{
					embeddedProviderFactory(),
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
					httpprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
	}
}

// newCommand is the weft command line: the collector's own command (run,
// components, featuregate) with the embedded default configuration when
// --config is absent; validate, which also loads weft_rules' rule files;
// `weft default-config`. The demo is a separate program, cmd/weft-demo.
func newCommand() *cobra.Command {
	cmd := otelcol.NewCommand(collectorSettings(defaultConfigURI))
	cmd.Long = "weft runs the node agent. Without --config it runs the embedded DaemonSet profile (" +
		defaultConfigURI + ", printed by `weft default-config`); --config FILE replaces it, several --config flags are merged in order."
	cmd.AddCommand(newDefaultConfigCommand())
	// weft rules split (rules_split.go)
	cmd.AddCommand(newRulesCommand())
	withRuleValidation(cmd) // validate also loads the weft_rules rule files
	return cmd
}
