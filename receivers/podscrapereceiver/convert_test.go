package podscrapereceiver

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

const (
	ctText = "text/plain; version=0.0.4; charset=utf-8"
	ctOM   = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

func testAppender(honor bool, limit int, mr ...*relabel.Config) *appender {
	return newAppender(labels.FromStrings("job", "envoy", "instance", "10.0.0.1:15090"), honor, scrapeLimits{honorTimestamps: true, sample: limit}, mr)
}

// scrapeBody runs one scrape of body through a and returns its metrics.
func scrapeBody(t testing.TB, a *appender, body, ct string, now time.Time) (pmetric.Metrics, parseStats, error) {
	t.Helper()
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	st, err := a.appendBody([]byte(body), ct, now, ms)
	if err != nil {
		ms.RemoveIf(func(pmetric.Metric) bool { return true })
		a.fail(now, ms)
	}
	return md, st, err
}

func findMetric(md pmetric.Metrics, name string) (pmetric.Metric, bool) {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() == name {
					return ms.At(k), true
				}
			}
		}
	}
	return pmetric.Metric{}, false
}

func TestEnvoyRealdataMatchesReferenceParser(t *testing.T) {
	body := readFile(t, envoyFile)
	a := testAppender(false, 0)
	now := time.Unix(1700000000, 0)
	md, st, err := scrapeBody(t, a, string(body), ctText, now)
	require.NoError(t, err)
	assert.Equal(t, 461, st.scraped, "sample lines in the file")
	assert.Equal(t, 461, st.postRelabel)
	// Every sample, with its labels and value, equals what client_model's
	// independent text parser reads from the same bytes.
	want := flattenText(t, body, nil)
	got := flattenPdata(md)
	assertSamples(t, want, got)

	c, ok := findMetric(md, "istio_agent_go_memstats_alloc_bytes_total")
	require.True(t, ok)
	require.Equal(t, pmetric.MetricTypeSum, c.Type())
	assert.True(t, c.Sum().IsMonotonic())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, c.Sum().AggregationTemporality())
	dp := c.Sum().DataPoints().At(0)
	assert.Equal(t, 2.260668e+07, dp.DoubleValue())
	assert.Equal(t, pcommon.NewTimestampFromTime(now), dp.StartTimestamp(), "first sight of a counter starts it")
	assert.Equal(t, "Total number of bytes allocated, even if freed.", c.Description())

	s, ok := findMetric(md, "istio_agent_go_gc_duration_seconds")
	require.True(t, ok)
	require.Equal(t, pmetric.MetricTypeSummary, s.Type())
	assert.Equal(t, 5, s.Summary().DataPoints().At(0).QuantileValues().Len())
	assert.Equal(t, uint64(13), s.Summary().DataPoints().At(0).Count())

	hists := 0
	for _, m := range metricsOf(md) {
		if m.Type() == pmetric.MetricTypeHistogram {
			hists++
			assert.Equal(t, pmetric.AggregationTemporalityCumulative, m.Histogram().AggregationTemporality())
		}
	}
	assert.Equal(t, 11, hists)
}

func metricsOf(md pmetric.Metrics) []pmetric.Metric {
	var out []pmetric.Metric
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			for k := 0; k < sms.At(j).Metrics().Len(); k++ {
				out = append(out, sms.At(j).Metrics().At(k))
			}
		}
	}
	return out
}

func TestOpenMetricsRealdataExemplarsAndCreated(t *testing.T) {
	body := readFile(t, omFile)
	a := testAppender(false, 0)
	md, _, err := scrapeBody(t, a, string(body), ctOM, time.Unix(1726839900, 0))
	require.NoError(t, err)

	created, ok := findMetric(md, "rpc_requests_created")
	require.True(t, ok, "_created samples are series, as Prometheus 2.x stores them, and start times")
	assert.Equal(t, pmetric.MetricTypeGauge, created.Type())
	assert.Equal(t, 3, created.Gauge().DataPoints().Len())
	c, ok := findMetric(md, "rpc_requests_total")
	require.True(t, ok)
	require.Equal(t, pmetric.MetricTypeSum, c.Type())
	require.Equal(t, 3, c.Sum().DataPoints().Len())
	for i := 0; i < 3; i++ {
		dp := c.Sum().DataPoints().At(i)
		svc, _ := dp.Attributes().Get("service")
		if svc.Str() == "exponential" {
			assert.Equal(t, 22.0, dp.DoubleValue())
			assert.Equal(t, int64(1726839813016), dp.StartTimestamp().AsTime().UnixMilli())
		}
	}

	h, ok := findMetric(md, "rpc_durations_histogram_seconds")
	require.True(t, ok)
	require.Equal(t, pmetric.MetricTypeHistogram, h.Type())
	dp := h.Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(15), dp.Count())
	assert.InDelta(t, -8.452185437166741e-05, dp.Sum(), 1e-18)
	assert.Equal(t, 20, dp.ExplicitBounds().Len())
	assert.Equal(t, 21, dp.BucketCounts().Len())
	assert.Equal(t, int64(1726839813016), dp.StartTimestamp().AsTime().UnixMilli())
	require.Equal(t, 6, dp.Exemplars().Len())
	ex := dp.Exemplars().At(0)
	assert.InDelta(t, -0.0003825067330956884, ex.DoubleValue(), 1e-18)
	id, _ := ex.FilteredAttributes().Get("dummyID")
	assert.Equal(t, "17783", id.Str())
	assert.Equal(t, int64(1726839814223), ex.Timestamp().AsTime().UnixMilli())
	assert.True(t, ex.TraceID().IsEmpty())

	s, ok := findMetric(md, "rpc_durations_seconds")
	require.True(t, ok)
	assert.Equal(t, 3, s.Summary().DataPoints().Len())
	g, ok := findMetric(md, "go_build_info")
	require.True(t, ok)
	assert.Equal(t, pmetric.MetricTypeGauge, g.Type())
}

func TestExemplarTraceAndSpanIDs(t *testing.T) {
	body := `# TYPE http_requests counter
http_requests_total{path="/"} 7 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 1 1700000000.5
# TYPE lat histogram
lat_bucket{le="0.1"} 1 # {trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331",user="x"} 0.05
lat_bucket{le="+Inf"} 2
lat_sum 0.3
lat_count 2
# EOF
`
	md, _, err := scrapeBody(t, testAppender(false, 0), body, ctOM, time.Unix(1700000001, 0))
	require.NoError(t, err)
	c, ok := findMetric(md, "http_requests_total")
	require.True(t, ok)
	ex := c.Sum().DataPoints().At(0).Exemplars().At(0)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", ex.TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", ex.SpanID().String())
	assert.Equal(t, 0, ex.FilteredAttributes().Len())
	assert.Equal(t, int64(1700000000500), ex.Timestamp().AsTime().UnixMilli())
	h, _ := findMetric(md, "lat")
	hex := h.Histogram().DataPoints().At(0).Exemplars().At(0)
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", hex.TraceID().String())
	assert.Equal(t, "b7ad6b7169203331", hex.SpanID().String())
	u, _ := hex.FilteredAttributes().Get("user")
	assert.Equal(t, "x", u.Str())
	assert.Equal(t, int64(1700000001000), hex.Timestamp().AsTime().UnixMilli(), "no exemplar timestamp: the scrape's")
	assert.Equal(t, []uint64{1, 1}, h.Histogram().DataPoints().At(0).BucketCounts().AsRaw())
}

func staleCount(md pmetric.Metrics, name string) (stale, live int) {
	m, ok := findMetric(md, name)
	if !ok {
		return 0, 0
	}
	var flags []pmetric.DataPointFlags
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for i := 0; i < m.Gauge().DataPoints().Len(); i++ {
			flags = append(flags, m.Gauge().DataPoints().At(i).Flags())
		}
	case pmetric.MetricTypeSum:
		for i := 0; i < m.Sum().DataPoints().Len(); i++ {
			flags = append(flags, m.Sum().DataPoints().At(i).Flags())
		}
	case pmetric.MetricTypeHistogram:
		for i := 0; i < m.Histogram().DataPoints().Len(); i++ {
			flags = append(flags, m.Histogram().DataPoints().At(i).Flags())
		}
	case pmetric.MetricTypeSummary:
		for i := 0; i < m.Summary().DataPoints().Len(); i++ {
			flags = append(flags, m.Summary().DataPoints().At(i).Flags())
		}
	}
	for _, f := range flags {
		if f.NoRecordedValue() {
			stale++
		} else {
			live++
		}
	}
	return stale, live
}

func TestStalenessAndCounterResets(t *testing.T) {
	a := testAppender(false, 0)
	t0 := time.Unix(1700000000, 0)
	full := "# TYPE c counter\nc{k=\"a\"} 10\nc{k=\"b\"} 5\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"
	md, _, err := scrapeBody(t, a, full, ctText, t0)
	require.NoError(t, err)
	stale, live := staleCount(md, "c")
	assert.Equal(t, [2]int{0, 2}, [2]int{stale, live})

	// Series b and the histogram vanish; a resets.
	t1 := t0.Add(15 * time.Second)
	md, st, err := scrapeBody(t, a, "# TYPE c counter\nc{k=\"a\"} 3\n", ctText, t1)
	require.NoError(t, err)
	assert.Equal(t, 2, st.staleEmitted)
	stale, live = staleCount(md, "c")
	assert.Equal(t, [2]int{1, 1}, [2]int{stale, live})
	stale, live = staleCount(md, "h")
	assert.Equal(t, [2]int{1, 0}, [2]int{stale, live})
	h, _ := findMetric(md, "h")
	sh := h.Histogram().DataPoints().At(0)
	assert.Equal(t, []float64{1}, sh.ExplicitBounds().AsRaw(), "the marker repeats the buckets so each _bucket series ends")
	assert.Equal(t, 2, sh.BucketCounts().Len())
	assert.True(t, sh.HasSum())
	c, _ := findMetric(md, "c")
	for i := 0; i < c.Sum().DataPoints().Len(); i++ {
		dp := c.Sum().DataPoints().At(i)
		k, _ := dp.Attributes().Get("k")
		if k.Str() == "a" {
			assert.Equal(t, pcommon.NewTimestampFromTime(t0), dp.StartTimestamp(), "reset: started after the previous scrape")
		} else {
			assert.True(t, dp.Flags().NoRecordedValue())
		}
	}

	// Ended once only.
	md, st, err = scrapeBody(t, a, "# TYPE c counter\nc{k=\"a\"} 4\n", ctText, t1.Add(15*time.Second))
	require.NoError(t, err)
	assert.Equal(t, 0, st.staleEmitted)
	stale, live = staleCount(md, "c")
	assert.Equal(t, [2]int{0, 1}, [2]int{stale, live})
	c, _ = findMetric(md, "c")
	assert.Equal(t, pcommon.NewTimestampFromTime(t0), c.Sum().DataPoints().At(0).StartTimestamp(), "no reset, same start")
	assert.Len(t, a.points, 1, "state of vanished series is freed")
	assert.Len(t, a.series, 1)

	// A failed scrape ends everything of the last good one.
	md, _, err = scrapeBody(t, a, "c{k=\"a\" 1\n", ctText, t1.Add(30*time.Second))
	require.Error(t, err)
	stale, live = staleCount(md, "c")
	assert.Equal(t, [2]int{1, 0}, [2]int{stale, live})
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ct     string
		limit  int
		reason string
	}{
		{"malformed labels", "a{b=\"c\" 1\n", ctText, 0, reasonParse},
		{"malformed value", "a 1x\n", ctText, 0, reasonParse},
		{"an HTML error page", "<html><body>oops</body></html>\n", ctText, 0, reasonParse},
		{"duplicate series", "a{b=\"1\"} 1\na{b=\"1\"} 2\n", ctText, 0, reasonDuplicate},
		{"duplicate with other label order", "a{b=\"1\",c=\"2\"} 1\na{c=\"2\",b=\"1\"} 2\n", ctText, 0, reasonDuplicate},
		{"sample limit", "a 1\nb 2\nc 3\n", ctText, 2, reasonSampleLimit},
		{"openmetrics without EOF", "# TYPE a gauge\na 1\n", ctOM, 0, reasonParse},
		{"unknown content type falls back to text and fails", "{\"json\": 1}", "application/json", 0, reasonParse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := scrapeBody(t, testAppender(false, tt.limit), tt.body, tt.ct, time.Now())
			require.Error(t, err)
			var se *scrapeError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.reason, se.reason, err.Error())
		})
	}
}

func TestNaNAndInfAreValues(t *testing.T) {
	md, st, err := scrapeBody(t, testAppender(false, 0), "a NaN\nb +Inf\nc -Inf\n", ctText, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 3, st.scraped)
	a, _ := findMetric(md, "a")
	assert.True(t, math.IsNaN(a.Gauge().DataPoints().At(0).DoubleValue()))
	assert.False(t, a.Gauge().DataPoints().At(0).Flags().NoRecordedValue(), "a NaN sample is not a stale marker")
	b, _ := findMetric(md, "b")
	assert.True(t, math.IsInf(b.Gauge().DataPoints().At(0).DoubleValue(), 1))
}

func TestTargetLabelsHonorAndMetricRelabel(t *testing.T) {
	body := "a{job=\"app\",x=\"1\"} 1\nenvoy_drop_me 2\n"
	drop, err := (&RelabelConfig{SourceLabels: []string{"__name__"}, Regex: ptr("envoy_drop_.*"), Action: "drop"}).build()
	require.NoError(t, err)

	md, st, err := scrapeBody(t, testAppender(false, 0, drop), body, ctText, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 2, st.scraped)
	assert.Equal(t, 1, st.postRelabel)
	got := flattenPdata(md)
	assert.Equal(t, map[string]float64{`a{exported_job="app",x="1"}`: 1}, got,
		"target's job wins, the exposed one is kept as exported_job; job/instance live on the resource")

	md, _, err = scrapeBody(t, testAppender(true, 0), body, ctText, time.Now())
	require.NoError(t, err)
	got = flattenPdata(md)
	assert.Equal(t, 1.0, got[`a{job="app",x="1"}`], "honor_labels keeps the exposed job")
}

func ptr[T any](v T) *T { return &v }

func TestUntypedAfterTypedFamilyIsGauge(t *testing.T) {
	body := "# TYPE c counter\nc 1\nother_total 2\n# TYPE h histogram\nh_bucket{le=\"x\"} 1\n"
	md, _, err := scrapeBody(t, testAppender(false, 0), body, ctText, time.Now())
	require.NoError(t, err)
	o, _ := findMetric(md, "other_total")
	assert.Equal(t, pmetric.MetricTypeGauge, o.Type())
	hb, ok := findMetric(md, "h_bucket")
	require.True(t, ok, "a bucket with an unusable le is kept as a gauge")
	assert.Equal(t, pmetric.MetricTypeGauge, hb.Type())
	assert.True(t, strings.HasPrefix(hb.Name(), "h_"))
}

func TestReorderedAndChangedExposition(t *testing.T) {
	a := testAppender(false, 0)
	t0 := time.Unix(1700000000, 0)
	bodies := []string{
		"a{k=\"1\"} 1\na{k=\"2\"} 2\nb 3\n",
		"b 30\na{k=\"2\"} 20\na{k=\"1\"} 10\n",
		"a{k=\"1\"} 100\nc 5\nb 300\n",
		"a{k=\"1\"} 101\nc 6\n",
		"a{k=\"1\"} 102\nc 7\n",
		"a{k=\"1\"} 103\nc 8\nd 1\n",
		"a{k=\"1\"} 104\nc 9\nd 2\n",
	}
	wants := []map[string]float64{
		{`a{k="1"}`: 1, `a{k="2"}`: 2, `b{}`: 3},
		{`a{k="1"}`: 10, `a{k="2"}`: 20, `b{}`: 30},
		{`a{k="1"}`: 100, `b{}`: 300, `c{}`: 5},
		{`a{k="1"}`: 101, `c{}`: 6},
		{`a{k="1"}`: 102, `c{}`: 7},
		{`a{k="1"}`: 103, `c{}`: 8, `d{}`: 1},
		{`a{k="1"}`: 104, `c{}`: 9, `d{}`: 2},
	}
	for i, body := range bodies {
		md, _, err := scrapeBody(t, a, body, ctText, t0.Add(time.Duration(i)*15*time.Second))
		require.NoError(t, err)
		assert.Equal(t, wants[i], flattenPdata(md), "scrape %d", i)
		assert.Len(t, a.order, len(wants[i]), "scrape %d: position data", i)
		for j, ent := range a.order {
			assert.Same(t, a.series[ent.key], ent, "scrape %d: series %d's key finds it", i, j)
		}
	}
}

// TestSeriesEntrySize: the entry every exposed series keeps stays in the
// 64-byte size class (the native path keeps nothing else per series but
// its labels and refs); what only pdata needs hangs off pd.
func TestSeriesEntrySize(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(seriesEntry{}), uintptr(64))
}

// TestTextKeysSeededPerTarget: a series' key depends on its target's own
// seeds (a target cannot precompute texts that collide in another's, or
// in a later process's, cache); within a target it is stable and tells
// texts apart.
func TestTextKeysSeededPerTarget(t *testing.T) {
	lbls := labels.FromStrings("job", "j", "instance", "i:1")
	a, b := newAppender(lbls, false, scrapeLimits{}, nil), newAppender(lbls, false, scrapeLimits{}, nil)
	text := []byte(`envoy_cluster_upstream_rq{cluster_name="outbound|9080||reviews.default.svc.cluster.local",response_code="200"}`)
	assert.Equal(t, a.keyOf(text), a.keyOf(bytes.Clone(text)))
	assert.NotEqual(t, a.keyOf(text), b.keyOf(text), "two targets key the same text alike")
	other := bytes.Replace(text, []byte("200"), []byte("503"), 1)
	assert.NotEqual(t, a.keyOf(text), a.keyOf(other))
	k := a.keyOf(text)
	assert.NotEqual(t, k[0], k[1], "the two halves use different seeds")
}
