// Package weftstoretest starts real weft_store extensions for the tests of
// the components that use one (weft_query, weft_rules, the weft_store
// exporter and processor), alone or in a running collector. It is imported
// by _test.go files only.
package weftstoretest

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/weftest"
)

// ID is the store's component ID in the hosts this package builds.
var ID = component.MustNewID("weft_store")

// Start creates and starts a weft_store with the default configuration
// (metrics in memory) changed by mod (nil: none). It is shut down in
// t.Cleanup unless the test does it first (Shutdown is safe twice).
func Start(t testing.TB, mod func(*weftstoreextension.Config)) *weftstoreextension.Store {
	t.Helper()
	f := weftstoreextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*weftstoreextension.Config)
	if mod != nil {
		mod(cfg)
	}
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatalf("create weft_store: %v", err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start weft_store: %v", err)
	}
	t.Cleanup(func() {
		if err := ext.Shutdown(context.Background()); err != nil {
			t.Errorf("shut down weft_store: %v", err)
		}
	})
	return ext.(*weftstoreextension.Store)
}

// Host returns a host whose one extension is st, under ID.
func Host(st *weftstoreextension.Store) weftest.Host { return weftest.Host{ID: st} }

// Components are the factories of a collector RunCollector starts, besides
// the weft_store extension's.
type Components struct {
	Receivers  []receiver.Factory
	Processors []processor.Factory
	Exporters  []exporter.Factory
}

// RunCollector runs a collector (the one a weft binary runs, in process)
// with the YAML configuration cfg until the returned function stops it,
// which fails the test if the collector did not stop cleanly. It fails
// the test if the collector is not running within 20 s.
func RunCollector(t testing.TB, cfg string, c Components) (stop func()) {
	t.Helper()
	factories := func() (otelcol.Factories, error) {
		f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
		var err error
		if f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](weftstoreextension.NewFactory()); err != nil {
			return f, err
		}
		if f.Receivers, err = otelcol.MakeFactoryMap(c.Receivers...); err != nil {
			return f, err
		}
		if f.Processors, err = otelcol.MakeFactoryMap(c.Processors...); err != nil {
			return f, err
		}
		f.Exporters, err = otelcol.MakeFactoryMap(c.Exporters...)
		return f, err
	}
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.NewDefaultBuildInfo(),
		Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{"yaml:" + cfg},
			ProviderFactories: []confmap.ProviderFactory{yamlprovider.NewFactory()},
		}},
	})
	if err != nil {
		t.Fatalf("collector: %v", err)
	}
	var wg sync.WaitGroup
	var runErr error
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		runErr = col.Run(context.Background())
	})
	for deadline := time.Now().Add(20 * time.Second); col.GetState() != otelcol.StateRunning; time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("the collector stopped at start: %v", runErr)
		default:
		}
		if time.Now().After(deadline) {
			col.Shutdown()
			wg.Wait()
			t.Fatalf("the collector is not running after 20 s (state %v)", col.GetState())
		}
	}
	return func() {
		col.Shutdown()
		wg.Wait()
		if runErr != nil {
			t.Errorf("collector: %v", runErr)
		}
	}
}
