package podscrapereceiver

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// realdata is the repository's testdata/: real samples (read-only), see its
// SOURCES.md.
const realdata = "../../testdata"

var (
	envoyFile   = filepath.Join(realdata, "envoy-stats-istio-proxy-merged-1.11.4.txt")
	omFile      = filepath.Join(realdata, "openmetrics-exemplars-prometheus-omtestdata.txt")
	knativeFile = filepath.Join(realdata, "pod-knative-queue-proxy-event-display.json")
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err, "real samples live in the repository's testdata/")
	return b
}

// seriesKey formats a Prometheus sample name and labels canonically; le and
// quantile values are normalised through float parsing.
func seriesKey(name string, lbls map[string]string) string {
	keys := make([]string, 0, len(lbls))
	for k := range lbls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range keys {
		v := lbls[k]
		if k == model.BucketLabel || k == model.QuantileLabel {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				v = fmtFloat(f)
			}
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, v)
	}
	b.WriteByte('}')
	return b.String()
}

func fmtFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func with(attrs map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(attrs)+1)
	for a, b := range attrs {
		out[a] = b
	}
	out[k] = v
	return out
}

var selfMetricNames = map[string]bool{
	"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true,
	"scrape_samples_post_metric_relabeling": true, "scrape_series_added": true, failuresMetricName: true,
}

// flattenPdata turns pdata back into Prometheus samples (skipping stale
// points and the per-target self metrics).
func flattenPdata(md pmetric.Metrics) map[string]float64 {
	out := map[string]float64{}
	attrsOf := func(m pcommon.Map) map[string]string {
		r := map[string]string{}
		m.Range(func(k string, v pcommon.Value) bool { r[k] = v.AsString(); return true })
		return r
	}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if selfMetricNames[m.Name()] {
					continue
				}
				switch m.Type() {
				case pmetric.MetricTypeGauge, pmetric.MetricTypeSum:
					var dps pmetric.NumberDataPointSlice
					if m.Type() == pmetric.MetricTypeSum {
						dps = m.Sum().DataPoints()
					} else {
						dps = m.Gauge().DataPoints()
					}
					for p := 0; p < dps.Len(); p++ {
						dp := dps.At(p)
						if dp.Flags().NoRecordedValue() {
							continue
						}
						out[seriesKey(m.Name(), attrsOf(dp.Attributes()))] = dp.DoubleValue()
					}
				case pmetric.MetricTypeHistogram:
					dps := m.Histogram().DataPoints()
					for p := 0; p < dps.Len(); p++ {
						dp := dps.At(p)
						if dp.Flags().NoRecordedValue() {
							continue
						}
						a := attrsOf(dp.Attributes())
						cum := 0.0
						for b := 0; b < dp.BucketCounts().Len(); b++ {
							cum += float64(dp.BucketCounts().At(b))
							le := "+Inf"
							if b < dp.ExplicitBounds().Len() {
								le = fmtFloat(dp.ExplicitBounds().At(b))
							}
							out[seriesKey(m.Name()+"_bucket", with(a, "le", le))] = cum
						}
						out[seriesKey(m.Name()+"_sum", a)] = dp.Sum()
						out[seriesKey(m.Name()+"_count", a)] = float64(dp.Count())
					}
				case pmetric.MetricTypeSummary:
					dps := m.Summary().DataPoints()
					for p := 0; p < dps.Len(); p++ {
						dp := dps.At(p)
						if dp.Flags().NoRecordedValue() {
							continue
						}
						a := attrsOf(dp.Attributes())
						for q := 0; q < dp.QuantileValues().Len(); q++ {
							qv := dp.QuantileValues().At(q)
							out[seriesKey(m.Name(), with(a, "quantile", fmtFloat(qv.Quantile())))] = qv.Value()
						}
						out[seriesKey(m.Name()+"_sum", a)] = dp.Sum()
						out[seriesKey(m.Name()+"_count", a)] = float64(dp.Count())
					}
				}
			}
		}
	}
	return out
}

// flattenText parses the text format with client_model's reference parser
// (independent of Prometheus's textparse) into samples, adding extra
// labels to each.
func flattenText(t testing.TB, body []byte, extra map[string]string) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(strings.TrimRight(string(body), "\n") + "\n"))
	require.NoError(t, err)
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			a := map[string]string{}
			for k, v := range extra {
				a[k] = v
			}
			for _, l := range m.GetLabel() {
				if l.GetValue() != "" { // empty means absent in Prometheus
					a[l.GetName()] = l.GetValue()
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[seriesKey(name, a)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[seriesKey(name, a)] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[seriesKey(name, a)] = m.GetUntyped().GetValue()
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					out[seriesKey(name, with(a, "quantile", fmtFloat(q.GetQuantile())))] = q.GetValue()
				}
				out[seriesKey(name+"_sum", a)] = m.GetSummary().GetSampleSum()
				out[seriesKey(name+"_count", a)] = float64(m.GetSummary().GetSampleCount())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out[seriesKey(name+"_bucket", with(a, "le", fmtFloat(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
				out[seriesKey(name+"_bucket", with(a, "le", "+Inf"))] = float64(h.GetSampleCount())
				out[seriesKey(name+"_sum", a)] = h.GetSampleSum()
				out[seriesKey(name+"_count", a)] = float64(h.GetSampleCount())
			}
		}
	}
	return out
}

// assertSamples compares two flattened sample sets and reports a short
// difference.
func assertSamples(t testing.TB, want, got map[string]float64) {
	t.Helper()
	var missing, extra, differ []string
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case !(g == v || math.IsNaN(g) && math.IsNaN(v)):
			differ = append(differ, fmt.Sprintf("%s: want %v got %v", k, v, g))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(differ)
	short := func(s []string) []string {
		if len(s) > 5 {
			return s[:5]
		}
		return s
	}
	if len(missing)+len(extra)+len(differ) > 0 {
		t.Errorf("samples differ: %d missing, %d extra, %d with other values (of %d wanted)\nmissing: %v\nextra: %v\ndiffer: %v",
			len(missing), len(extra), len(differ), len(want), short(missing), short(extra), short(differ))
	}
}
