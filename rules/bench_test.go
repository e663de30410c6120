package rules

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

const (
	benchSeries = 50_000
	benchRules  = 200
	benchGroups = 10
	benchStep   = 15 * time.Second
)

// BenchmarkEvaluate200RulesOver50kSeries: one op is one evaluation cycle
// (every group once) of 200 alerting rules that together read 50k counter
// series, each over a 5m window of 15 s samples. %core@15s is the share of
// one core this costs when the cycle runs every 15 s.
func BenchmarkEvaluate200RulesOver50kSeries(b *testing.B) {
	st := weftstoretest.Start(b, nil)

	// 50k series: shard (one per rule) × 250 pods; 6 minutes of samples.
	now := time.Now().Truncate(benchStep)
	start := now.Add(-6 * time.Minute)
	series := make([]labels.Labels, 0, benchSeries)
	for i := range benchSeries {
		series = append(series, labels.FromStrings("__name__", "http_requests_total",
			"shard", strconv.Itoa(i%benchRules), "pod", "pod-"+strconv.Itoa(i/benchRules), "status", "500"))
	}
	for ts := start; !ts.After(now); ts = ts.Add(benchStep) {
		app := st.Appendable().Appender(context.Background())
		for i, ls := range series {
			_, err := app.Append(0, ls, ts.UnixMilli(), float64(ts.Sub(start)/benchStep)*float64(i%7))
			require.NoError(b, err)
		}
		require.NoError(b, app.Commit())
	}

	var sb strings.Builder
	sb.WriteString("groups:\n")
	for g := range benchGroups {
		fmt.Fprintf(&sb, "- name: g%d\n  rules:\n", g)
		for r := g; r < benchRules; r += benchGroups {
			fmt.Fprintf(&sb, "  - alert: A%d\n    expr: rate(http_requests_total{shard=\"%d\",status=~\"5..\"}[5m]) > 0.2\n    for: 2m\n", r, r)
		}
	}
	dir := b.TempDir()
	path := dir + "/bench.yaml"
	require.NoError(b, writeBenchFile(path, sb.String()))
	_, groups := benchEngine(b, st, path)
	require.Len(b, groups, benchGroups)

	b.ReportAllocs()
	b.SetBytes(benchSeries * 20 * 16) // samples read per cycle × (timestamp, value)
	b.ResetTimer()
	begin := time.Now()
	for i := 0; b.Loop(); i++ {
		ts := now.Add(time.Duration(i) * time.Millisecond) // at the data's end, moving forward
		for _, g := range groups {
			g.Eval(context.Background(), ts)
		}
	}
	b.StopTimer()
	perCycle := time.Since(begin) / time.Duration(b.N)
	b.ReportMetric(float64(perCycle)/float64(benchStep)*100, "%core@15s")
	var alerts int
	for _, g := range groups {
		for _, r := range g.AlertingRules() {
			alerts += len(r.ActiveAlerts())
		}
	}
	require.Positive(b, alerts, "the rules select data")
}

// BenchmarkEvidenceLookup: one op is the evidence lookup of one new
// firing alert (exemplar query over the alert's series, then log lines
// and links of three traces), over a store with 2000 exemplar-carrying
// series and 2000 failing traces with logs.
func BenchmarkEvidenceLookup(b *testing.B) {
	st := weftstoretest.Start(b, nil)
	now := time.Now()
	for i := range 2000 {
		id := traceID(byte(i))
		id[2], id[3] = byte(i>>8), byte(i)
		ls := labels.FromStrings("__name__", "http_requests_total", "status", "500", "k8s_namespace_name", "bookinfo", "k8s_pod_name", "pod-"+strconv.Itoa(i%100))
		appendSample(b, st, ls, now.Add(time.Duration(i)*time.Millisecond-time.Minute), float64(i), id.String())
		appendFailingSpan(b, st, "reviews", "bookinfo", "pod-"+strconv.Itoa(i%100), id, now.Add(-time.Minute), "upstream reset")
	}
	ev, err := newEvidenceFinder(st, e2eParser(), EvidenceConfig{MaxTraces: 3, MaxLogLines: 3, Timeout: time.Second, LinkTemplate: "http://j/trace/{{ .TraceID }}"})
	require.NoError(b, err)
	alert := labels.FromStrings("alertname", "HighErrorRate", "k8s_namespace_name", "bookinfo", "k8s_pod_name", "pod-7", "status", "500")
	b.ReportAllocs()
	for b.Loop() {
		e := ev.collect(context.Background(), `rate(http_requests_total{status=~"5.."}[5m]) > 0.01`, alertRef{labels: alert, activeAt: now.Add(-time.Minute), at: now})
		if len(e.traceIDs) != 3 || e.source != "exemplars" {
			b.Fatalf("evidence %+v", e)
		}
	}
}
