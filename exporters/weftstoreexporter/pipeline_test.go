package weftstoreexporter

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/loopback"
)

// TestCollectorPipeline runs a real collector (in process) with
// `exporters: {weft_store: {}}` and the extension writing its WAL to a
// directory, sends OTLP metrics to it, stops it, and reads the samples back
// from a store reopened on that directory.
func TestCollectorPipeline(t *testing.T) {
	addrs, err := loopback.FreeAddrs(1)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "store")
	cfg := fmt.Sprintf(`
extensions:
  weft_store: {directory: %q, metrics_retention: 30m}
receivers:
  otlp: {protocols: {grpc: {endpoint: %q}}}
exporters:
  weft_store: {}
service:
  telemetry: {metrics: {level: none}, logs: {level: warn}}
  extensions: [weft_store]
  pipelines:
    metrics: {receivers: [otlp], exporters: [weft_store]}
    traces: {receivers: [otlp], exporters: [weft_store]}
    logs: {receivers: [otlp], exporters: [weft_store]}
`, dir, addrs[0])

	stop := weftstoretest.RunCollector(t, cfg, weftstoretest.Components{
		Receivers: []receiver.Factory{otlpreceiver.NewFactory()},
		Exporters: []exporter.Factory{NewFactory()},
	})

	conn, err := grpc.NewClient(addrs[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	client := pmetricotlp.NewGRPCClient(conn)
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	for i := range 5 {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "reviews")
		rm.Resource().Attributes().PutStr("k8s.pod.name", "reviews-v2-abc")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("http.server.requests")
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := s.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * 15 * time.Second)))
		dp.SetIntValue(int64(30 * i))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := client.Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
		cancel()
		require.NoError(t, err)
	}
	require.NoError(t, conn.Close())
	stop()

	f := weftstoreextension.NewFactory()
	scfg := f.CreateDefaultConfig().(*weftstoreextension.Config)
	scfg.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), scfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })

	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q, err := eng.NewInstantQuery(context.Background(), ext.(*weftstoreextension.Store).Queryable(), nil,
		`rate(http_server_requests_total{job="reviews",k8s_pod_name="reviews-v2-abc"}[1m])`, start.Add(time.Minute))
	require.NoError(t, err)
	defer q.Close()
	res := q.Exec(context.Background())
	require.NoError(t, res.Err)
	v, err := res.Vector()
	require.NoError(t, err)
	require.Len(t, v, 1)
	assert.InDelta(t, 2.0, v[0].F, 1e-9, "30 requests per 15 s")
}
