package main

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"
)

// defaultConfigURI names the embedded DaemonSet profile. It can be combined
// with files: `weft --config weft:default --config overrides.yaml`.
const defaultConfigURI = "weft:default"

//go:embed config/default.yaml
var defaultConfig []byte

// embeddedProvider serves configurations compiled into the binary under the
// "weft" scheme. The first retrieval logs which profile runs and how to read
// it, once per process (a SIGHUP reload retrieves again, silently).
type embeddedProvider struct {
	logger *zap.Logger
	once   *sync.Once
}

func embeddedProviderFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(func(set confmap.ProviderSettings) confmap.Provider {
		logger := set.Logger
		if logger == nil {
			logger = zap.NewNop()
		}
		return embeddedProvider{logger: logger, once: new(sync.Once)}
	})
}

func (p embeddedProvider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	name, ok := strings.CutPrefix(uri, "weft:")
	if !ok || name != "default" {
		return nil, fmt.Errorf("unknown embedded configuration %q: weft has one, %q", uri, defaultConfigURI)
	}
	p.once.Do(func() {
		p.logger.Info("Running the embedded DaemonSet profile; print it with `weft default-config`, replace it with --config FILE",
			zap.String("config", defaultConfigURI))
	})
	return confmap.NewRetrievedFromYAML(defaultConfig)
}

func (embeddedProvider) Scheme() string { return "weft" }

func (embeddedProvider) Shutdown(context.Context) error { return nil }

// newDefaultConfigCommand prints the embedded DaemonSet profile, the
// configuration weft runs without --config.
func newDefaultConfigCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "default-config",
		Short: "Print the embedded DaemonSet profile (what weft runs without --config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(defaultConfig)
			return err
		},
	}
}
