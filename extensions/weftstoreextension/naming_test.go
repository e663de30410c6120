package weftstoreextension

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/translate"
)

// Scraped metrics (pod_scrape's scope) are stored under the names, label
// names and bucket bounds a Prometheus scraping the same target stores;
// the same pdata under another scope gets the OTel translation.
func TestScrapedMetricsKeepExposedNames(t *testing.T) {
	st := newTestStore(t, nil)
	ts := time.Now().Add(-time.Minute).Truncate(time.Second)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr("service.name", "istio-sidecars")
	res.PutStr("service.instance.id", "10.1.2.3:15090")
	res.PutStr("k8s.pod.name", "reviews-v1-abc")
	fill := func(sm pmetric.ScopeMetrics) {
		ms := sm.Metrics()
		c := ms.AppendEmpty()
		c.SetName("envoy_cluster_upstream_rq") // a counter exposed without _total
		s := c.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		p := s.DataPoints().AppendEmpty()
		p.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		p.SetDoubleValue(7)
		p.Attributes().PutStr("response_code__class", "2xx")
		h := ms.AppendEmpty()
		h.SetName("istio_agent_xds_config_size_bytes")
		h.SetUnit("By")
		hh := h.SetEmptyHistogram()
		hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		hp := hh.DataPoints().AppendEmpty()
		hp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
		hp.ExplicitBounds().FromRaw([]float64{1e-05, 0.00011, 1e6})
		hp.BucketCounts().FromRaw([]uint64{1, 1, 1, 1})
		hp.SetCount(4)
		hp.SetSum(9)
	}
	scraped := rm.ScopeMetrics().AppendEmpty()
	scraped.Scope().SetName(translate.ScrapedScope)
	fill(scraped)
	// pod_scrape saw 1e+06 exposed as 1000000 (as Envoy writes it).
	scraped.Metrics().At(1).Metadata().PutEmptyMap(translate.ExposedBoundsKey).PutStr("1e+06", "1000000")
	otel := rm.ScopeMetrics().AppendEmpty()
	otel.Scope().SetName("some.otlp.library")
	fill(otel)
	require.NoError(t, st.AppendMetrics(context.Background(), md))

	at := ts.Add(time.Second)
	for expr, want := range map[string]float64{
		// As exposed: no _total, __ kept, le as the exposer wrote it, no k8s_* labels.
		`envoy_cluster_upstream_rq{job="istio-sidecars",instance="10.1.2.3:15090",response_code__class="2xx",k8s_pod_name=""}`: 7,
		`istio_agent_xds_config_size_bytes_bucket{le="1e-05",k8s_pod_name=""}`:                                                 1,
		`istio_agent_xds_config_size_bytes_bucket{le="0.00011",k8s_pod_name=""}`:                                               2,
		`istio_agent_xds_config_size_bytes_bucket{le="1000000",k8s_pod_name=""}`:                                               3,
		`istio_agent_xds_config_size_bytes_count{k8s_pod_name=""}`:                                                             4,
		// OTel translation for the other scope.
		`envoy_cluster_upstream_rq_total{response_code_class="2xx",k8s_pod_name="reviews-v1-abc"}`: 7,
		`istio_agent_xds_config_size_bytes_bucket{le="1000000",k8s_pod_name="reviews-v1-abc"}`:     3,
	} {
		v := instant(t, st.Queryable(), expr, at)
		if assert.Len(t, v, 1, expr) {
			assert.Equal(t, want, v[0].F, expr)
		}
	}
}

// A scraped exemplar keeps every label it was exposed with, and one
// without a trace ID is stored (Prometheus stores it); the same exemplar
// from an OTLP source still needs a trace ID.
func TestScrapedExemplarsKeepTheirLabels(t *testing.T) {
	st := newTestStore(t, nil)
	ts := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	for _, scope := range []string{translate.ScrapedScope, "some.otlp.library"} {
		md := counter("jobs_done", ts, time.Second, 1)
		sm := md.ResourceMetrics().At(0).ScopeMetrics().At(0)
		sm.Scope().SetName(scope)
		m := sm.Metrics().At(0)
		m.SetName("jobs_done_" + strings.ReplaceAll(scope, ".", "_"))
		dp := m.Sum().DataPoints().At(0)
		plain := dp.Exemplars().AppendEmpty()
		plain.SetDoubleValue(0.5)
		plain.FilteredAttributes().PutStr("dummyID", "17783")
		traced := dp.Exemplars().AppendEmpty()
		traced.SetDoubleValue(0.7)
		traced.SetTraceID(pcommon.TraceID{1, 2, 3})
		traced.FilteredAttributes().PutStr("region", "eu")
		require.NoError(t, st.AppendMetrics(context.Background(), md))
	}
	eq, err := st.ExemplarQueryable().ExemplarQuerier(context.Background())
	require.NoError(t, err)
	got := map[string][]string{}
	for _, name := range []string{"jobs_done_" + strings.ReplaceAll(translate.ScrapedScope, ".", "_"), "jobs_done_some_otlp_library_total"} {
		res, err := eq.Select(ts.Add(-time.Minute).UnixMilli(), time.Now().UnixMilli(), []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, name)})
		require.NoError(t, err)
		for _, r := range res {
			for _, ex := range r.Exemplars {
				got[name] = append(got[name], ex.Labels.String())
			}
		}
	}
	assert.ElementsMatch(t, []string{`{dummyID="17783"}`, `{region="eu", trace_id="01020300000000000000000000000000"}`},
		got["jobs_done_"+strings.ReplaceAll(translate.ScrapedScope, ".", "_")], "scraped: labels as exposed")
	assert.Equal(t, []string{`{trace_id="01020300000000000000000000000000"}`}, got["jobs_done_some_otlp_library_total"], "OTLP: trace ID only")
	assert.Equal(t, int64(1), st.Stats().RejectedExemplars[translate.ReasonNoTraceID])
}
