//go:build integration

package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/backends"
	"github.com/weftobs/weft/internal/loopback"
	"github.com/weftobs/weft/internal/simnode"
)

const pullConfig = `
extensions:
  health_check:
    endpoint: {{.Health}}
receivers:
  pod_scrape:
    scrape_interval: 1s
    scrape_timeout: 900ms
    scrape_configs:
      - job_name: envoy
        metrics_path: /stats/prometheus
        static_configs:
          - targets: [{{.Target}}]
exporters:
  prometheus:
    endpoint: {{.Export}}
    enable_open_metrics: true
    metric_expiration: 5m
service:
  extensions: [health_check]
  pipelines:
    metrics:
      receivers: [pod_scrape]
      exporters: [prometheus]
  telemetry:
    metrics:
      level: none
`

// TestPrometheusPullsScrapedMetrics: weft scrapes a simulated Envoy sidecar
// and offers the result on its prometheus exporter endpoint; a real
// Prometheus scraping that endpoint sees the sidecar's request counts.
func TestPrometheusPullsScrapedMetrics(t *testing.T) {
	node, err := simnode.Start(simnode.Options{Dir: t.TempDir(), Seed: 5})
	require.NoError(t, err)
	t.Cleanup(func() { _ = node.Close() })
	var envoy *url.URL
	for _, e := range node.Endpoints() {
		if e.Container == "istio-proxy" && e.Pod == "reviews-v2-7bf8c9648f-4xhzk" {
			envoy, err = url.Parse(e.URL)
			require.NoError(t, err)
		}
	}
	require.NotNil(t, envoy)
	runCtx, stopRun := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- node.Run(runCtx, 0) }()
	t.Cleanup(func() { stopRun(); <-runDone })

	addrs, err := loopback.FreeAddrs(2)
	require.NoError(t, err)
	cfg := struct{ Health, Target, Export string }{addrs[0], envoy.Host, addrs[1]}
	cfgPath := filepath.Join(t.TempDir(), "weft.yaml")
	require.NoError(t, os.WriteFile(cfgPath, renderTemplate(t, pullConfig, cfg), 0o600))
	agentCtx, stopAgent := context.WithCancel(context.Background())
	done, err := startAgent(agentCtx, "file:"+cfgPath)
	require.NoError(t, err)
	t.Cleanup(func() { stopAgent(); <-done })
	require.NoError(t, waitHTTP(t.Context(), "http://"+cfg.Health+"/", done))

	bin, err := backends.FindPrometheus()
	require.NoError(t, err)
	scrape := fmt.Sprintf("scrape_configs:\n  - job_name: weft\n    scrape_interval: 1s\n    static_configs:\n      - targets: [%q]\n", cfg.Export)
	prom, err := backends.StartPrometheus(t.Context(), bin, t.TempDir(), scrape, testLogWriter{t})
	require.NoError(t, err)
	t.Cleanup(prom.Stop)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var r promResult
		q := `sum(istio_requests_total{reporter="destination",destination_workload="reviews-v2"})`
		_, err := getJSON(t.Context(), prom.URL()+"/api/v1/query?query="+url.QueryEscape(q), &r)
		require.NoError(c, err)
		require.Len(c, r.Data.Result, 1)
		assert.NotEqual(c, "0", r.Data.Result[0].Value[1])
	}, 60*time.Second, 500*time.Millisecond)
}
