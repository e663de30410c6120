package weftstoreprocessor

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver"

	"github.com/weftobs/weft/exporters/weftstoreexporter"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/weftest"
)

// TestCollectorCopies runs the collector itself with the store beside an
// exporter that changes data (as every batching exporter declares) and
// with the store as the pipeline's last processor: beside it, the
// collector hands the exporter a deep copy of each batch; as a processor,
// the batch itself.
func TestCollectorCopies(t *testing.T) {
	for _, tc := range []struct {
		name, pipeline string
		copied         bool
	}{
		{"exporter beside", "{receivers: [handoff], exporters: [weft_store, keeper]}", true},
		{"processor", "{receivers: [handoff], processors: [weft_store], exporters: [keeper]}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &handoff{ready: make(chan consumer.Logs, 1)}
			k := &keeper{}
			dir := filepath.Join(t.TempDir(), "store")
			cfg := fmt.Sprintf(`
extensions:
  weft_store: {directory: %q}
receivers: {handoff: {}}
processors: {weft_store: {}}
exporters: {weft_store: {}, keeper: {}}
service:
  telemetry: {metrics: {level: none}, logs: {level: warn}}
  extensions: [weft_store]
  pipelines:
    logs: %s
`, dir, tc.pipeline)
			stop := weftstoretest.RunCollector(t, cfg, weftstoretest.Components{
				Receivers:  []receiver.Factory{h.factory()},
				Processors: []processor.Factory{NewFactory()},
				Exporters:  []exporter.Factory{weftstoreexporter.NewFactory(), k.factory()},
			})
			next := <-h.ready

			tid := weftest.TraceID(t, "4bf92f3577b34da6a3ce929d0e0e4736")
			ld := logBatch(tid, "upstream connect error")
			require.NoError(t, next.ConsumeLogs(context.Background(), ld))
			got := k.batches()
			require.Len(t, got, 1)
			bodyOf(got[0]).SetStr("changed by the exporter")
			assert.Equal(t, tc.copied, bodyOf(ld).Str() == "upstream connect error", "the exporter got a copy")
			stop()
		})
	}
}

// handoff is a logs receiver that gives the test the pipeline's consumer.
type handoff struct{ ready chan consumer.Logs }

func (h *handoff) factory() receiver.Factory {
	return receiver.NewFactory(component.MustNewType("handoff"), func() component.Config { return &struct{}{} },
		receiver.WithLogs(func(_ context.Context, _ receiver.Settings, _ component.Config, next consumer.Logs) (receiver.Logs, error) {
			return startFunc(func() { h.ready <- next }), nil
		}, component.StabilityLevelDevelopment))
}

type startFunc func()

func (f startFunc) Start(context.Context, component.Host) error { f(); return nil }
func (startFunc) Shutdown(context.Context) error                { return nil }

// keeper is a logs exporter that keeps what it gets and declares that it
// changes data, as exporters that batch in their sending queue do.
type keeper struct {
	mu   sync.Mutex
	kept []plog.Logs
}

func (k *keeper) factory() exporter.Factory {
	return exporter.NewFactory(component.MustNewType("keeper"), func() component.Config { return &struct{}{} },
		exporter.WithLogs(func(context.Context, exporter.Settings, component.Config) (exporter.Logs, error) {
			c, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
				k.mu.Lock()
				defer k.mu.Unlock()
				k.kept = append(k.kept, ld)
				return nil
			}, consumer.WithCapabilities(consumer.Capabilities{MutatesData: true}))
			return struct {
				startFunc
				consumer.Logs
			}{func() {}, c}, err
		}, component.StabilityLevelDevelopment))
}

func (k *keeper) batches() []plog.Logs {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kept
}
