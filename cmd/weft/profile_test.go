package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pipeline"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftrulesextension"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/processors/evidencesamplingprocessor"
)

// The node's external labels are stated four times in the shipped profile
// (the store's StoreAPI edge, the rules' alerts, both remote-write
// exporters) and must agree, or the same data would carry different
// identities in Thanos Query, Alertmanager and the remote store. The
// DaemonSet's overrides must not set them apart either.
func TestProfileExternalLabelsAgree(t *testing.T) {
	var profile struct {
		Extensions map[string]struct {
			ExternalLabels map[string]string `yaml:"external_labels"`
		} `yaml:"extensions"`
		Exporters map[string]struct {
			ExternalLabels map[string]string `yaml:"external_labels"`
		} `yaml:"exporters"`
	}
	require.NoError(t, yaml.Unmarshal(defaultConfig, &profile))
	want := profile.Extensions["weft_store"].ExternalLabels
	require.Contains(t, want, "node", "weft_store external_labels name the node")
	assert.Equal(t, "${env:NODE_NAME:-unknown}", want["node"])
	assert.Equal(t, want, profile.Extensions["weft_rules"].ExternalLabels, "weft_rules")
	assert.Equal(t, want, profile.Extensions["weft_remote_write"].ExternalLabels, "weft_remote_write")
	remoteWrite := 0
	for id, exp := range profile.Exporters {
		if id == "prometheus_remote_write" || strings.HasPrefix(id, "prometheus_remote_write/") {
			remoteWrite++
			assert.Equal(t, want, exp.ExternalLabels, id)
		}
	}
	assert.Equal(t, 1, remoteWrite, "the remote-write exporter (OTLP-origin metrics) checked")

	overrides, err := os.ReadFile("../../deploy/base/config/agent.yaml")
	require.NoError(t, err)
	assert.NotContains(t, string(overrides), "external_labels", "the DaemonSet keeps the profile's external labels (change them there, all four)")
}

// loadConfig resolves the configuration at uris as `weft` does (its
// providers, merge order and factories) and validates it as the collector
// does before it starts anything.
func loadConfig(t *testing.T, uris ...string) *otelcol.Config {
	t.Helper()
	set := collectorSettings(uris...)
	factories, err := set.Factories()
	require.NoError(t, err)
	ps := set.ConfigProviderSettings
	ps.ResolverSettings.ProviderSettings = confmap.ProviderSettings{Logger: zap.NewNop()}
	ps.ResolverSettings.ConverterSettings = confmap.ConverterSettings{Logger: zap.NewNop()}
	provider, err := otelcol.NewConfigProvider(ps)
	require.NoError(t, err)
	cfg, err := provider.Get(t.Context(), factories)
	require.NoError(t, err)
	require.NoError(t, provider.Shutdown(t.Context()))
	require.NoError(t, cfg.Validate())
	return cfg
}

var (
	pinsID     = component.MustNewID("weft_pins")
	samplingID = component.MustNewID("evidence_sampling")
)

// upstreamProcessors returns the processors data passes through before it
// leaves pipeline p's processors: p's own and, through every connector
// among p's receivers, those of the pipelines that feed it.
func upstreamProcessors(cfg *otelcol.Config, p pipeline.ID) []component.ID {
	seen := map[pipeline.ID]bool{}
	var out []component.ID
	var walk func(pipeline.ID)
	walk = func(p pipeline.ID) {
		if seen[p] {
			return
		}
		seen[p] = true
		pl := cfg.Service.Pipelines[p]
		out = append(out, pl.Processors...)
		for _, r := range pl.Receivers {
			if _, ok := cfg.Connectors[r]; !ok {
				continue
			}
			for q, ql := range cfg.Service.Pipelines {
				if slices.Contains(ql.Exporters, r) {
					walk(q)
				}
			}
		}
	}
	walk(p)
	return out
}

// samplingBefore returns the share of data that reaches exporter (or
// connector) exp in the pipelines that export to it, after every
// evidence_sampling upstream: 1 when nothing samples.
func samplingBefore(t *testing.T, cfg *otelcol.Config, exp component.ID) float64 {
	t.Helper()
	share, found := 1.0, false
	for p, pl := range cfg.Service.Pipelines {
		if !slices.Contains(pl.Exporters, exp) {
			continue
		}
		found = true
		share *= sampled(cfg, upstreamProcessors(cfg, p))
	}
	require.True(t, found, "no pipeline exports to %s", exp)
	return share
}

// sampled is the share of data that passes the evidence_sampling
// processors among procs.
func sampled(cfg *otelcol.Config, procs []component.ID) float64 {
	share := 1.0
	for _, proc := range procs {
		if proc.Type() == samplingID.Type() {
			share *= cfg.Processors[proc].(*evidencesamplingprocessor.Config).SamplingPercentage / 100
		}
	}
	return share
}

// storeLast checks that the traces and logs pipelines end in the weft_store
// processor (no copy of each batch for the exporters) and returns the
// share of their data it sees.
func storeLast(t *testing.T, cfg *otelcol.Config, p pipeline.ID) float64 {
	t.Helper()
	procs := cfg.Service.Pipelines[p].Processors
	require.NotEmpty(t, procs, p)
	assert.Equal(t, component.MustNewID("weft_store"), procs[len(procs)-1], "%s: weft_store is the last processor", p)
	assert.NotContains(t, cfg.Service.Pipelines[p].Exporters, component.MustNewID("weft_store"), "%s: and not an exporter as well", p)
	return sampled(cfg, upstreamProcessors(cfg, p))
}

// The embedded profile, as a laptop runs it (no key, no peers): weft_pins
// without gossip, which needs no key and opens no port; weft_store and
// weft_rules use it; evidence_sampling pins error spans and error log lines
// (after trace_context) at 100 %, so nothing anywhere is sampled.
// TestEmbeddedDefaultStartsCleanly starts this profile without a key.
func TestProfilePinsWithoutGossip(t *testing.T) {
	cfg := loadConfig(t, defaultConfigURI)
	pins, ok := cfg.Extensions[pinsID].(*weftpinsextension.Config)
	require.True(t, ok, "extensions::weft_pins")
	assert.False(t, pins.Gossip.Enabled, "gossip off: a bare run has no key")
	assert.Empty(t, pins.Gossip.SecretKeyFile)
	exts := cfg.Service.Extensions
	require.Contains(t, exts, pinsID, "service::extensions runs weft_pins")
	assert.Less(t, slices.Index(exts, pinsID), slices.Index(exts, component.MustNewID("weft_store")), "weft_pins starts before weft_store")
	assert.Equal(t, "weft_pins", cfg.Extensions[component.MustNewID("weft_store")].(*weftstoreextension.Config).Pins)
	assert.Equal(t, "weft_pins", cfg.Extensions[component.MustNewID("weft_rules")].(*weftrulesextension.Config).Pins)

	sampling := cfg.Processors[samplingID].(*evidencesamplingprocessor.Config)
	assert.Equal(t, "weft_pins", sampling.Pins)
	assert.Equal(t, 100.0, sampling.SamplingPercentage, "the profile pins; it never samples")
	assert.Equal(t, "ERROR", sampling.PinLogSeverity)
	for _, p := range []pipeline.ID{pipeline.NewID(pipeline.SignalTraces), pipeline.NewID(pipeline.SignalLogs)} {
		procs := cfg.Service.Pipelines[p].Processors
		i := slices.Index(procs, samplingID)
		require.GreaterOrEqual(t, i, 0, "%s runs evidence_sampling: %v", p, procs)
		if p.Signal() == pipeline.SignalLogs {
			assert.Greater(t, i, slices.Index(procs, component.MustNewID("trace_context")), "logs: trace IDs and severities first")
		}
	}
	for _, exp := range []string{"weft_store", "span_metrics", "otlp_grpc/jaeger", "fluent_forward"} {
		assert.Equal(t, 1.0, samplingBefore(t, cfg, idOf(t, exp)), exp)
	}
	for _, p := range []pipeline.ID{pipeline.NewID(pipeline.SignalTraces), pipeline.NewID(pipeline.SignalLogs)} {
		assert.Equal(t, 1.0, storeLast(t, cfg, p), p)
	}
	// Without a processor of their own, the export pipelines take the
	// connector's batches as they are (no copy for a data-changing consumer).
	for _, p := range []string{"traces/export", "logs/export"} {
		var id pipeline.ID
		require.NoError(t, id.UnmarshalText([]byte(p)))
		assert.Empty(t, cfg.Service.Pipelines[id].Processors, p)
	}
}

// idOf parses a component ID ("type" or "type/name").
func idOf(t *testing.T, s string) component.ID {
	t.Helper()
	var id component.ID
	require.NoError(t, id.UnmarshalText([]byte(s)))
	return id
}

// The DaemonSet's configuration with deploy/components/export-sampling,
// merged and validated by the collector's own loader in the order the
// DaemonSet passes the files: Jaeger and Fluentd get 10 % plus pinned
// traces, through one processor for both signals, while weft_store and
// span_metrics still get every span and log line; the exporters sit only
// in the export pipelines, so nothing reaches them around the sampler.
func TestProfileExportSamplingComponent(t *testing.T) {
	t.Setenv("POD_IP", "10.244.1.17")
	t.Setenv("NODE_NAME", "node-a")
	cfg := loadConfig(t, defaultConfigURI,
		"file:../../deploy/base/config/agent.yaml",
		"file:../../deploy/components/export-sampling/export-sampling.yaml")
	export := idOf(t, "evidence_sampling/export")
	es, ok := cfg.Processors[export].(*evidencesamplingprocessor.Config)
	require.True(t, ok, "processors::evidence_sampling/export")
	assert.Equal(t, 10.0, es.SamplingPercentage)
	assert.Equal(t, 10*time.Second, es.DecisionWait)
	assert.Empty(t, es.Pins, "the first weft_pins: the one gossip spreads")

	for _, c := range []struct{ exp, pipeline string }{
		{"otlp_grpc/jaeger", "traces/export"},
		{"fluent_forward", "logs/export"},
	} {
		id := idOf(t, c.exp)
		var feeding []string
		for p, pl := range cfg.Service.Pipelines {
			if slices.Contains(pl.Exporters, id) {
				feeding = append(feeding, p.String())
			}
		}
		assert.Equal(t, []string{c.pipeline}, feeding, "%s only in %s", c.exp, c.pipeline)
		assert.InDelta(t, 0.1, samplingBefore(t, cfg, id), 1e-9, c.exp)
		var p pipeline.ID
		require.NoError(t, p.UnmarshalText([]byte(c.pipeline)))
		assert.Equal(t, []component.ID{export}, cfg.Service.Pipelines[p].Processors, c.pipeline)
	}
	for _, sink := range []string{"weft_store", "span_metrics"} {
		assert.Equal(t, 1.0, samplingBefore(t, cfg, idOf(t, sink)), "%s sees everything", sink)
	}
	// The data the export pipelines sample is what the store got: the
	// traces and logs pipelines store it (their last processor) and hand
	// it over through the connector.
	fwd := idOf(t, "forward")
	for _, id := range []pipeline.ID{pipeline.NewID(pipeline.SignalTraces), pipeline.NewID(pipeline.SignalLogs)} {
		assert.Contains(t, cfg.Service.Pipelines[id].Exporters, fwd, id)
		assert.Equal(t, 1.0, storeLast(t, cfg, id), "the store sees all of %s", id)
	}

	// Gossip as the DaemonSet runs it, validated by weft_pins itself.
	pins := cfg.Extensions[pinsID].(*weftpinsextension.Config)
	assert.True(t, pins.Gossip.Enabled)
	assert.Equal(t, "10.244.1.17:7946", pins.Gossip.Bind)
	assert.Equal(t, "/etc/weft/gossip/key", pins.Gossip.SecretKeyFile)
}
