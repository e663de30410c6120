package main

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// defaultConfigURI names the embedded DaemonSet profile. It can be combined
// with files: `weft --config weft:default --config overrides.yaml`.
const defaultConfigURI = "weft:default"

//go:embed config/default.yaml
var defaultConfig []byte

// embeddedProvider serves configurations compiled into the binary under the
// "weft" scheme.
type embeddedProvider struct{}

func embeddedProviderFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(func(confmap.ProviderSettings) confmap.Provider {
		return embeddedProvider{}
	})
}

func (embeddedProvider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	name, ok := strings.CutPrefix(uri, "weft:")
	if !ok || name != "default" {
		return nil, fmt.Errorf("unknown embedded configuration %q: weft has one, %q", uri, defaultConfigURI)
	}
	return confmap.NewRetrievedFromYAML(defaultConfig)
}

func (embeddedProvider) Scheme() string { return "weft" }

func (embeddedProvider) Shutdown(context.Context) error { return nil }
