package podscrapereceiver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// A series over a label limit fails every scrape that exposes it (not just
// the first, when it is new), and the target recovers when it is gone.
func TestLabelLimitsFailEveryScrapeWithTheSeries(t *testing.T) {
	a := newAppender(labels.FromStrings("job", "fn", "instance", "10.1.2.3:9090"), false,
		scrapeLimits{honorTimestamps: true, labels: 5, nameLength: 20, valueLength: 40}, nil)
	fine := "# TYPE req counter\nreq_total{code=\"200\",path=\"/a\"} 3\n"
	wideHist := fine + "# TYPE lat histogram\nlat_bucket{code=\"200\",path=\"/a\",le=\"1\"} 1\nlat_bucket{code=\"200\",path=\"/a\",le=\"+Inf\"} 1\nlat_sum{code=\"200\",path=\"/a\"} 0.5\nlat_count{code=\"200\",path=\"/a\"} 1\n"
	now := time.Unix(1_800_000_000, 0)
	for i, tc := range []struct {
		body, reason string
	}{
		{fine, ""},
		// lat_bucket has __name__, code, path, le, job, instance: 6 labels.
		{wideHist, reasonLabelLimit},
		{wideHist, reasonLabelLimit},
		{fine + "x{a_very_long_label_name_x=\"1\"} 1\n", reasonNameLength},
		{fine + fmt.Sprintf("x{v=%q} 1\n", strings.Repeat("é", 21)), reasonValueLength}, // 42 bytes
		{fine, ""},
	} {
		md, _, err := scrapeBody(t, a, tc.body, ctText, now.Add(time.Duration(i)*15*time.Second))
		if tc.reason == "" {
			require.NoError(t, err, "scrape %d", i)
			assert.Equal(t, 3.0, flattenPdata(md)[`req_total{code="200",path="/a"}`], "scrape %d", i)
			continue
		}
		var se *scrapeError
		require.ErrorAs(t, err, &se, "scrape %d", i)
		assert.Equal(t, tc.reason, se.reason, "scrape %d: %v", i, err)
	}
}

// honor_timestamps: exposed timestamps are kept by default and replaced by
// the scrape time when false, as in Prometheus.
func TestHonorTimestamps(t *testing.T) {
	body := "# TYPE g gauge\ng{k=\"v\"} 7 1700000000123\nh 1\n"
	now := time.UnixMilli(1_800_000_000_456)
	for _, honor := range []bool{true, false} {
		a := newAppender(labels.FromStrings("job", "j", "instance", "i"), false, scrapeLimits{honorTimestamps: honor}, nil)
		md, _, err := scrapeBody(t, a, body, ctText, now)
		require.NoError(t, err)
		g, ok := findMetric(md, "g")
		require.True(t, ok)
		want := int64(1700000000123)
		if !honor {
			want = now.UnixMilli()
		}
		assert.Equal(t, want, g.Gauge().DataPoints().At(0).Timestamp().AsTime().UnixMilli(), "honor_timestamps=%v", honor)
		h, _ := findMetric(md, "h")
		assert.Equal(t, now.UnixMilli(), h.Gauge().DataPoints().At(0).Timestamp().AsTime().UnixMilli(), "no exposed timestamp: scrape time")
	}
}

// The defaults and overrides of the limits reach each job.
func TestJobLimitsAndTimeoutDefaults(t *testing.T) {
	off := false
	cfg := createDefaultConfig().(*Config)
	cfg.ScrapeInterval = 5 * time.Second // shorter than Prometheus's 10s timeout
	cfg.SampleLimit, cfg.LabelLimit, cfg.LabelNameLengthLimit, cfg.LabelValueLengthLimit = 100, 30, 128, 512
	cfg.ScrapeConfigs = []ScrapeConfig{
		{JobName: "inherits", StaticConfigs: []StaticConfig{{Targets: []string{"127.0.0.1:1"}}}},
		{JobName: "own", ScrapeInterval: 30 * time.Second, HonorTimestamps: &off, SampleLimit: 7, LabelLimit: 9,
			LabelNameLengthLimit: 11, LabelValueLengthLimit: 13, StaticConfigs: []StaticConfig{{Targets: []string{"127.0.0.1:1"}}}},
	}
	cfg.IstioSidecars = true
	require.NoError(t, cfg.Validate(), "scrape_timeout unset with a 5s interval is valid, as in Prometheus")
	jobs, err := buildJobs(cfg)
	require.NoError(t, err)
	byName := map[string]*job{}
	for _, j := range jobs {
		byName[j.name] = j
	}
	assert.Equal(t, 5*time.Second, byName["inherits"].timeout, "min(10s, scrape_interval)")
	assert.Equal(t, scrapeLimits{honorTimestamps: true, sample: 100, labels: 30, nameLength: 128, valueLength: 512}, byName["inherits"].limits)
	assert.Equal(t, 5*time.Second, byName["own"].timeout, "a job's interval does not raise the global timeout")
	assert.Equal(t, scrapeLimits{honorTimestamps: false, sample: 7, labels: 9, nameLength: 11, valueLength: 13}, byName["own"].limits)
	assert.Equal(t, cfg.limits(), byName[istioJob].limits, "presets take the receiver's limits")
	assert.Equal(t, 5*time.Second, byName[istioJob].timeout)

	cfg.ScrapeInterval = time.Minute
	jobs, err = buildJobs(cfg)
	require.NoError(t, err)
	assert.Equal(t, 10*time.Second, jobs[0].timeout, "Prometheus's default timeout when the interval is longer")

	cfg.LabelValueLengthLimit = -1
	cfg.ScrapeConfigs[1].LabelLimit = -2
	err = cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "label_value_length_limit: must not be negative")
	assert.Contains(t, err.Error(), "scrape_configs[1].label_limit: must not be negative")
}

// In a cluster, an empty node_name would make every agent watch every pod of
// the cluster: Start refuses with an error naming the key and the fix.
func TestEmptyNodeNameRefusedInCluster(t *testing.T) {
	api := newFakeAPI(t)
	cfg := presetConfig(api.URL())
	cfg.NodeName = ""
	require.NoError(t, cfg.Validate())
	r, err := newReceiver(receivertest.NewNopSettings(component.MustNewType(typeStr)), cfg, new(consumertest.MetricsSink))
	require.NoError(t, err)
	err = r.Start(t.Context(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node_name is empty")
	assert.Contains(t, err.Error(), "NODE_NAME")
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Empty(t, runningTargets(r), "nothing was started")
}

// One target over its limits gets up=0 and a reason; the other targets of
// the node keep delivering.
func TestTargetOverLimitDoesNotStopOthers(t *testing.T) {
	var noisy strings.Builder
	for i := range 500 {
		fmt.Fprintf(&noisy, "noise{i=\"%d\"} 1\n", i)
	}
	quiet := serveText(t, []byte("# TYPE ok_total counter\nok_total 5\n"))
	loud := serveText(t, []byte(noisy.String()))
	cfg := createDefaultConfig().(*Config)
	cfg.ScrapeInterval = time.Hour
	cfg.SampleLimit = 100
	cfg.ScrapeConfigs = []ScrapeConfig{{JobName: "node", StaticConfigs: []StaticConfig{{Targets: []string{quiet, loud}}}}}
	_, sink, _ := startReceiver(t, cfg)
	mds := waitBatches(t, sink, 2)
	byInstance := map[string]pmetric.Metrics{}
	for _, md := range mds {
		inst, _ := md.ResourceMetrics().At(0).Resource().Attributes().Get("service.instance.id")
		byInstance[inst.AsString()] = md
	}
	require.Len(t, byInstance, 2)
	assert.Equal(t, 1.0, gaugeValue(t, byInstance[quiet], "up"))
	assert.Equal(t, 5.0, flattenPdata(byInstance[quiet])["ok_total{}"])
	assert.Equal(t, 0.0, gaugeValue(t, byInstance[loud], "up"))
	assert.Equal(t, reasonSampleLimit, failureReason(t, byInstance[loud]))
}

// OpenMetrics _created lines are series of their own, as Prometheus 2.x
// stores them, and still give their counter its start time;
// scrape_series_added counts the series a scrape saw first.
func TestCreatedSeriesAndSeriesAdded(t *testing.T) {
	body := "# TYPE jobs counter\njobs_total{q=\"a\"} 4\njobs_created{q=\"a\"} 1700000000.5\n# TYPE w histogram\nw_bucket{le=\"1\"} 1\nw_bucket{le=\"+Inf\"} 2\nw_sum 3\nw_count 2\nw_created 1700000001\n# EOF\n"
	a := newAppender(labels.FromStrings("job", "j", "instance", "i"), false, scrapeLimits{honorTimestamps: true}, nil)
	now := time.Unix(1_800_000_000, 0)
	md, st, err := scrapeBody(t, a, body, ctOM, now)
	require.NoError(t, err)
	got := flattenPdata(md)
	assert.Equal(t, 1700000000.5, got[`jobs_created{q="a"}`])
	assert.Equal(t, 1700000001.0, got[`w_created{}`])
	jobs, ok := findMetric(md, "jobs_total")
	require.True(t, ok)
	assert.Equal(t, int64(1700000000500), jobs.Sum().DataPoints().At(0).StartTimestamp().AsTime().UnixMilli(), "start time from _created")
	assert.Equal(t, 7, st.scraped)
	assert.Equal(t, 7, st.added, "every series is new, each bucket one as in Prometheus")

	_, st, err = scrapeBody(t, a, strings.Replace(body, "jobs_total{q=\"a\"} 4", "jobs_total{q=\"a\"} 5\njobs_total{q=\"b\"} 1", 1), ctOM, now.Add(15*time.Second))
	require.NoError(t, err)
	assert.Equal(t, 1, st.added, "only jobs_total{q=b} is new")
}

// Bounds exposed in another form than Go's 'g' one travel in the metric's
// metadata, with every scrape's metric and with the stale markers.
func TestExposedBoundTexts(t *testing.T) {
	body := "# TYPE d histogram\nd_bucket{le=\"0.5\"} 1\nd_bucket{le=\"1800000\"} 2\nd_bucket{le=\"1e+06\"} 2\nd_bucket{le=\"+Inf\"} 3\nd_sum 9\nd_count 3\n# TYPE s summary\ns{quantile=\"0.50\"} 1\ns_sum 1\ns_count 1\n"
	a := newAppender(labels.FromStrings("job", "j", "instance", "i"), false, scrapeLimits{honorTimestamps: true}, nil)
	now := time.Unix(1_800_000_000, 0)
	texts := func(md pmetric.Metrics, name string) map[string]any {
		m, ok := findMetric(md, name)
		require.True(t, ok, name)
		v, ok := m.Metadata().Get(ExposedBoundsKey)
		if !ok {
			return nil
		}
		return v.Map().AsRaw()
	}
	md, _, err := scrapeBody(t, a, body, ctText, now)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"1.8e+06": "1800000"}, texts(md, "d"), "1e+06 and 0.5 are 'g' already")
	assert.Equal(t, map[string]any{"0.5": "0.50"}, texts(md, "s"))
	md, _, err = scrapeBody(t, a, body, ctText, now.Add(15*time.Second))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"1.8e+06": "1800000"}, texts(md, "d"), "every scrape's metric carries them")
	md, _, err = scrapeBody(t, a, "other 1\n", ctText, now.Add(30*time.Second))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"1.8e+06": "1800000"}, texts(md, "d"), "the stale markers too")
}
