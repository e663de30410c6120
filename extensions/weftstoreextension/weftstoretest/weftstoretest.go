// Package weftstoretest starts real weft_store extensions for the tests of
// the components that use one (weft_query, weft_rules, the weft_store
// exporter). It is imported by _test.go files only.
package weftstoretest

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

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
