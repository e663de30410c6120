package weftstoreextension

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

// newTestStore creates a store from the default config changed by mod and
// starts it; it is shut down in t.Cleanup.
func newTestStore(t testing.TB, mod func(*Config)) *Store {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	if mod != nil {
		mod(cfg)
	}
	st, err := newStore(componenttest.NewNopTelemetrySettings(), cfg)
	require.NoError(t, err)
	require.NoError(t, st.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
	return st
}

// key is the Pod of a simulated pod.
func key(p simtest.Pod) Pod { return Pod{Namespace: p.NS, Name: p.Name} }
