package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/weftobs/weft/processors/evidencesamplingprocessor"
)

// exportSamplingExample renders the production overlay with the
// export-sampling component (deploy/components/export-sampling).
const exportSamplingExample = "examples/export-sampling"

// pipelineGraph is the service::pipelines section of a merged
// configuration: which processors each pipeline runs, and which pipelines
// feed it through connectors.
type pipelineGraph struct {
	conf      *confmap.Conf
	pipelines map[string]pipeline
}

// pipeline is one entry of service::pipelines.
type pipeline struct {
	Receivers  []string `mapstructure:"receivers"`
	Processors []string `mapstructure:"processors"`
	Exporters  []string `mapstructure:"exporters"`
}

func graphOf(t testing.TB, conf *confmap.Conf) pipelineGraph {
	t.Helper()
	g := pipelineGraph{conf: conf}
	sub, err := conf.Sub("service::pipelines")
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(&g.pipelines))
	require.NotEmpty(t, g.pipelines)
	return g
}

// upstream returns the processors data passes through on its way to
// pipeline p, its own and those of every pipeline that feeds it through a
// connector, in no particular order.
func (g pipelineGraph) upstream(p string) []string {
	return g.upstreamOf(p, len(g.pipelines[p].Processors))
}

// upstreamOf is upstream with only the first n processors of p itself:
// what data passed before it reaches p's processor n.
func (g pipelineGraph) upstreamOf(p string, n int) []string {
	seen := map[string]bool{}
	var procs []string
	var walk func(string)
	walk = func(q string) {
		if seen[q] {
			return
		}
		seen[q] = true
		pl := g.pipelines[q]
		if q == p {
			procs = append(procs, pl.Processors[:n]...)
		} else {
			procs = append(procs, pl.Processors...)
		}
		for q, ql := range g.pipelines {
			for _, r := range pl.Receivers {
				if g.conf.IsSet("connectors::"+r) && slices.Contains(ql.Exporters, r) {
					walk(q)
				}
			}
		}
	}
	walk(p)
	return procs
}

// feeding returns the pipelines that export to exporter id.
func (g pipelineGraph) feeding(id string) []string {
	var out []string
	for p, pl := range g.pipelines {
		if slices.Contains(pl.Exporters, id) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// samplingPercentage is the sampling_percentage processor id runs with
// (100 for processors that are not evidence_sampling), after the
// processor's own validation.
func (g pipelineGraph) samplingPercentage(t testing.TB, id string) float64 {
	t.Helper()
	typ, _, _ := strings.Cut(id, "/")
	if typ != "evidence_sampling" {
		return 100
	}
	cfg := evidencesamplingprocessor.NewFactory().CreateDefaultConfig().(*evidencesamplingprocessor.Config)
	if g.conf.IsSet("processors::" + id) {
		sub, err := g.conf.Sub("processors::" + id)
		require.NoError(t, err)
		require.NoError(t, sub.Unmarshal(cfg))
	}
	require.NoError(t, cfg.Validate(), id)
	return cfg.SamplingPercentage
}

// storeViolations says where data reaches weft_store (an exporter, or a
// processor) or span_metrics after a processor that samples: they must see
// every span and log line.
func (g pipelineGraph) storeViolations(t testing.TB) []string {
	var v []string
	for _, sink := range []string{"weft_store", "span_metrics"} {
		feeding := g.feeding(sink)
		if len(feeding) == 0 {
			v = append(v, "nothing exports to "+sink)
		}
		for _, p := range feeding {
			v = append(v, g.sampledBefore(t, sink, p, g.upstream(p))...)
		}
	}
	for p, pl := range g.pipelines {
		if i := slices.Index(pl.Processors, "weft_store"); i >= 0 {
			v = append(v, g.sampledBefore(t, "weft_store", p, g.upstreamOf(p, i))...)
		}
	}
	return v
}

// sampledBefore names the processors among procs that sample pipeline p's
// data before sink gets it.
func (g pipelineGraph) sampledBefore(t testing.TB, sink, p string, procs []string) []string {
	var v []string
	for _, proc := range procs {
		if pct := g.samplingPercentage(t, proc); pct < 100 {
			v = append(v, fmt.Sprintf("%s gets pipeline %s's data after %s (sampling_percentage %v)", sink, p, proc, pct))
		}
	}
	return v
}

// exportShare is the share of the data sent to exporter id went
// through: the product over the sampling processors upstream (1 = all).
func (g pipelineGraph) exportShare(t testing.TB, id string) (share float64, where []string) {
	share = 1
	feeding := g.feeding(id)
	require.NotEmpty(t, feeding, "nothing exports to %s", id)
	for _, p := range feeding {
		for _, proc := range g.upstream(p) {
			if pct := g.samplingPercentage(t, proc); pct < 100 {
				share *= pct / 100
				where = append(where, p+": "+proc)
			}
		}
	}
	return share, where
}

// In every overlay weft_store and span_metrics get every span and log
// line; Jaeger and Fluentd get them unsampled too, except in the
// export-sampling variant, where both exports go through one
// evidence_sampling processor that keeps less than all.
func TestExportSamplingOnlyOffTheNode(t *testing.T) {
	env := map[string]string{"POD_IP": testPodIP, "NODE_NAME": "node-a"}
	for _, dir := range append([]string{"base"}, overlays...) {
		t.Run(dir, func(t *testing.T) {
			g := graphOf(t, mergedConfig(t, configOf(t, mustBundle(t, dir)), env))
			assert.Empty(t, g.storeViolations(t))
			for _, exp := range []string{"otlp_grpc/jaeger", "fluent_forward"} {
				share, where := g.exportShare(t, exp)
				if dir != exportSamplingExample {
					assert.Equal(t, 1.0, share, "%s sampled by %v", exp, where)
					continue
				}
				assert.Less(t, share, 1.0, "%s is sampled", exp)
				assert.Equal(t, []string{g.feeding(exp)[0] + ": evidence_sampling/export"}, where, exp)
			}
			// The data of a trace is pinned before it is stored: the
			// traces and logs pipelines run evidence_sampling (at 100 %),
			// the logs one after trace_context.
			for _, p := range []string{"traces", "logs"} {
				procs := g.pipelines[p].Processors
				i := slices.Index(procs, "evidence_sampling")
				require.GreaterOrEqual(t, i, 0, "%s runs evidence_sampling: %v", p, procs)
				if p == "logs" {
					assert.Greater(t, i, slices.Index(procs, "trace_context"), "logs: evidence_sampling after trace_context")
				}
				// The store is the pipeline's last processor (no copy of
				// each batch for the exporters: processors/weftstoreprocessor).
				assert.Equal(t, "weft_store", procs[len(procs)-1], p)
			}
		})
	}
}

// The checks above fail on a configuration that samples before the store,
// or that samples Jaeger and Fluentd apart.
func TestExportSamplingChecksFail(t *testing.T) {
	env := map[string]string{"POD_IP": testPodIP, "NODE_NAME": "node-a"}
	ac := configOf(t, mustBundle(t, exportSamplingExample))
	conf := mergedConfig(t, ac, env)
	require.NoError(t, conf.Merge(confmap.NewFromStringMap(map[string]any{
		"service": map[string]any{"pipelines": map[string]any{
			"traces": map[string]any{"processors": []any{"memory_limiter", "evidence_sampling/export", "weft_store"}},
		}},
	})))
	g := graphOf(t, conf)
	v := g.storeViolations(t)
	assert.Contains(t, strings.Join(v, "\n"), "weft_store gets pipeline traces's data after evidence_sampling/export")
	assert.Contains(t, strings.Join(v, "\n"), "span_metrics gets pipeline traces's data after evidence_sampling/export")

	conf = mergedConfig(t, ac, env)
	require.NoError(t, conf.Merge(confmap.NewFromStringMap(map[string]any{
		"service": map[string]any{"pipelines": map[string]any{
			"logs/export": map[string]any{"processors": []any{}},
		}},
	})))
	share, _ := graphOf(t, conf).exportShare(t, "fluent_forward")
	assert.Equal(t, 1.0, share, "logs/export without the processor sends everything")
}

// The component's file only adds: the export pipelines of the embedded
// profile have no processors of their own, so the lists it sets (lists
// replace) drop nothing; and it is loaded after agent.yaml.
func TestExportSamplingComponentAddsOnly(t *testing.T) {
	base := graphOf(t, mergedConfig(t, configOf(t, mustBundle(t, "overlays/prod")), nil))
	ac := configOf(t, mustBundle(t, exportSamplingExample))
	withComponent := graphOf(t, mergedConfig(t, ac, nil))
	for _, p := range []string{"traces/export", "logs/export"} {
		assert.Empty(t, base.pipelines[p].Processors, "%s of the embedded profile has processors the component's list would drop", p)
		assert.Equal(t, []string{"evidence_sampling/export"}, withComponent.pipelines[p].Processors, p)
	}
	for p, pl := range base.pipelines {
		if p != "traces/export" && p != "logs/export" {
			assert.Equal(t, pl, withComponent.pipelines[p], "the component changes pipeline %s", p)
		}
	}
	files := ac.configFiles()
	require.Len(t, files, 3)
	assert.Equal(t, []string{"weft:default", configDir + "/agent.yaml", configDir + "/export-sampling.yaml"}, files)
	assert.Equal(t, 10.0, withComponent.samplingPercentage(t, "evidence_sampling/export"))
}
