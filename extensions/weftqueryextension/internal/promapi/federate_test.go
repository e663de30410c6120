package promapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

// fedFixture is the API over a store with external labels node=node-1
// and sensor=ext, querytest's data ending 30 s before now, and series
// written for the federation cases (fedSeries), answering at a fixed now.
type fedFixture struct {
	url string
	now time.Time
}

// fedSample is one sample written by fedSeries; stale writes a
// staleness marker.
type fedSample struct {
	lset  labels.Labels
	at    time.Duration // from now
	v     float64
	stale bool
}

// fedSeries are the federation cases, all named fed_*.
var fedSeries = []fedSample{
	// Newest sample a staleness marker: left out.
	{lset: labels.FromStrings("__name__", "fed_stale", "case", "stale"), at: -90 * time.Second, v: 1},
	{lset: labels.FromStrings("__name__", "fed_stale", "case", "stale"), at: -60 * time.Second, stale: true},
	// A staleness marker followed by a sample: answered.
	{lset: labels.FromStrings("__name__", "fed_stale", "case", "revived"), at: -90 * time.Second, stale: true},
	{lset: labels.FromStrings("__name__", "fed_stale", "case", "revived"), at: -60 * time.Second, v: 2},
	// Exactly the lookback old: out (the window is left-open, as PromQL's).
	{lset: labels.FromStrings("__name__", "fed_window", "case", "old"), at: -5 * time.Minute, v: 3},
	// Just inside the lookback: answered.
	{lset: labels.FromStrings("__name__", "fed_window", "case", "edge"), at: -5*time.Minute + time.Millisecond, v: 4},
	// A sample after now is not the newest at now.
	{lset: labels.FromStrings("__name__", "fed_window", "case", "future"), at: -time.Minute, v: 5},
	{lset: labels.FromStrings("__name__", "fed_window", "case", "future"), at: time.Minute, v: 6},
	// The series' own node label wins over the external one.
	{lset: labels.FromStrings("__name__", "fed_node", "node", "own"), at: -10 * time.Second, v: 7},
}

func newFedFixture(t testing.TB, fed Federation) *fedFixture {
	t.Helper()
	st := weftstoretest.Start(t, func(c *weftstoreextension.Config) {
		c.ExternalLabels = map[string]string{"node": "node-1", "sensor": "ext"}
	})
	now := time.Now().UTC().Truncate(time.Second)
	querytest.Fill(t, st, now.Add(-5*time.Minute-30*time.Second))
	app := st.Appendable().Appender(t.Context())
	for _, s := range fedSeries {
		v := s.v
		if s.stale {
			v = math.Float64frombits(value.StaleNaN)
		}
		_, err := app.Append(0, s.lset, now.Add(s.at).UnixMilli(), v)
		require.NoError(t, err, "append %s", s.lset)
	}
	require.NoError(t, app.Commit())

	fed.ExternalLabels = st.ExternalLabels()
	api := &API{
		Engine: st.Engine(), Parser: limits.NewParser(parser.NewParser(parser.Options{}), 16<<10, 1000),
		Queryable: st.Queryable(), Exemplars: st.ExemplarQueryable(), Now: func() time.Time { return now },
		Gate:       func(h http.HandlerFunc) http.HandlerFunc { return h },
		FormError:  func(err error) *Error { return BadData(err) },
		Observe:    func(*Error) {},
		Federation: fed,
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fedFixture{url: srv.URL, now: now}
}

// federate GETs /federate with the selectors and an optional Accept
// header and returns status, content type and body.
func (f *fedFixture) federate(t testing.TB, accept string, match ...string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, f.url+"/federate?"+url.Values{"match[]": match}.Encode(), nil)
	require.NoError(t, err)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// federateText federates match, checks the answer is text 0.0.4 that
// expfmt parses, and returns its families.
func (f *fedFixture) federateText(t testing.TB, match ...string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	code, ctype, body := f.federate(t, "", match...)
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.True(t, strings.HasPrefix(ctype, "text/plain; version=0.0.4"), "content type %q", ctype)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, "%s", body)
	return mfs, body
}

// fedPoint is a federated series' sample.
type fedPoint struct {
	v  float64
	ts int64
}

// points maps each series of mf (labels in the exposition's notation) to
// its sample.
func points(t testing.TB, mf *dto.MetricFamily) map[string]fedPoint {
	t.Helper()
	require.NotNil(t, mf)
	assert.Equal(t, dto.MetricType_UNTYPED, mf.GetType(), "family %s", mf.GetName())
	out := map[string]fedPoint{}
	for _, m := range mf.GetMetric() {
		b := labels.NewScratchBuilder(len(m.GetLabel()))
		for _, lp := range m.GetLabel() {
			b.Add(lp.GetName(), lp.GetValue())
		}
		b.Sort()
		out[b.Labels().String()] = fedPoint{v: m.GetUntyped().GetValue(), ts: m.GetTimestampMs()}
	}
	return out
}

func TestFederateDeduplicates(t *testing.T) {
	f := newFedFixture(t, Federation{})
	mfs, body := f.federateText(t, `node_temp_celsius{sensor="a"}`, `{__name__=~"node_temp.*"}`, `node_temp_celsius`)
	require.Len(t, mfs, 1, "%s", body)
	got := points(t, mfs["node_temp_celsius"])
	require.Len(t, got, 2, "each series once, though three selectors match sensor a: %s", body)
	newest := f.now.Add(-30 * time.Second).UnixMilli()
	for sensor, v := range map[string]float64{"a": 20, "b": 40} {
		var found bool
		for ls, p := range got {
			if strings.Contains(ls, `sensor="`+sensor+`"`) {
				found = true
				assert.Equal(t, fedPoint{v: v, ts: newest}, p, "sensor %s", sensor)
			}
		}
		assert.True(t, found, "sensor %s missing: %s", sensor, body)
	}
	assert.Equal(t, 1, bytes.Count(body, []byte("# TYPE node_temp_celsius untyped\n")), "%s", body)
}

func TestFederateStalenessAndLookback(t *testing.T) {
	f := newFedFixture(t, Federation{})
	mfs, body := f.federateText(t, `{__name__=~"fed_.*"}`)
	at := func(d time.Duration) int64 { return f.now.Add(d).UnixMilli() }
	want := map[string]map[string]fedPoint{
		"fed_stale": {
			`{case="revived", node="node-1", sensor="ext"}`: {v: 2, ts: at(-60 * time.Second)},
		},
		"fed_window": {
			`{case="edge", node="node-1", sensor="ext"}`:   {v: 4, ts: at(-5*time.Minute + time.Millisecond)},
			`{case="future", node="node-1", sensor="ext"}`: {v: 5, ts: at(-time.Minute)},
		},
		"fed_node": {
			`{node="own", sensor="ext"}`: {v: 7, ts: at(-10 * time.Second)},
		},
	}
	require.Len(t, mfs, len(want), "%s", body)
	for name, series := range want {
		assert.Equal(t, series, points(t, mfs[name]), "family %s: %s", name, body)
	}

	// A lookback of 45 s keeps only the series with a sample within it.
	f = newFedFixture(t, Federation{Lookback: 45 * time.Second})
	mfs, body = f.federateText(t, `{__name__=~"fed_.*|node_temp_celsius"}`)
	assert.Len(t, mfs, 2, "%s", body)
	assert.Len(t, points(t, mfs["fed_node"]), 1, "%s", body)
	assert.Len(t, points(t, mfs["node_temp_celsius"]), 2, "%s", body)
}

// Native histogram samples are not federated: a series whose newest
// sample is one is left out, one whose newest is a float is answered.
func TestFederateSkipsNativeHistograms(t *testing.T) {
	st := weftstoretest.Start(t, nil)
	now := time.Now().UTC().Truncate(time.Second)
	app := st.Appendable().Appender(t.Context())
	h := &histogram.Histogram{Count: 1, Sum: 1, ZeroCount: 1, ZeroThreshold: 0.001}
	hist := labels.FromStrings("__name__", "fed_hist", "case", "histogram")
	flt := labels.FromStrings("__name__", "fed_hist", "case", "float")
	_, err := app.Append(0, hist, now.Add(-2*time.Minute).UnixMilli(), 1)
	require.NoError(t, err)
	_, err = app.AppendHistogram(0, hist, now.Add(-time.Minute).UnixMilli(), h, nil)
	require.NoError(t, err)
	_, err = app.Append(0, flt, now.Add(-time.Minute).UnixMilli(), 2)
	require.NoError(t, err)
	require.NoError(t, app.Commit())
	api := &API{
		Parser: limits.NewParser(parser.NewParser(parser.Options{}), 16<<10, 1000), Queryable: st.Queryable(),
		Now: func() time.Time { return now }, Gate: func(h http.HandlerFunc) http.HandlerFunc { return h },
		FormError: func(err error) *Error { return BadData(err) }, Observe: func(*Error) {},
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f := &fedFixture{url: srv.URL, now: now}
	mfs, body := f.federateText(t, `fed_hist`)
	assert.Equal(t, map[string]fedPoint{`{case="float"}`: {v: 2, ts: now.Add(-time.Minute).UnixMilli()}}, points(t, mfs["fed_hist"]), "%s", body)
}

func TestFederateExternalLabels(t *testing.T) {
	f := newFedFixture(t, Federation{})
	mfs, body := f.federateText(t, `node_temp_celsius`, `http_requests_total`, `fed_node`)
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				_, dup := got[lp.GetName()]
				require.False(t, dup, "%s: label %s twice", name, lp.GetName())
				got[lp.GetName()] = lp.GetValue()
			}
			switch name {
			case "node_temp_celsius":
				assert.Equal(t, "node-1", got["node"], "added")
				assert.Contains(t, []string{"a", "b"}, got["sensor"], "the series' own sensor kept")
			case "http_requests_total":
				assert.Equal(t, "node-1", got["node"], "added")
				assert.Equal(t, "ext", got["sensor"], "added")
			case "fed_node":
				assert.Equal(t, "own", got["node"], "the series' own node kept")
			default:
				t.Errorf("unexpected family %s", name)
			}
		}
	}
	require.Len(t, mfs, 3, "%s", body)
}

// The answer is grouped by metric name: every family's series follow its
// one TYPE line, none after another family began.
func TestFederateGroupsByName(t *testing.T) {
	f := newFedFixture(t, Federation{})
	_, body := f.federateText(t, `{__name__=~".+"}`)
	var order []string
	done := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ = strings.Cut(name, " ")
			require.False(t, done[name], "second TYPE line of %s: %s", name, body)
			if len(order) > 0 {
				done[order[len(order)-1]] = true
			}
			order = append(order, name)
			require.True(t, strings.HasSuffix(line, " untyped"), line)
			continue
		}
		require.NotEmpty(t, order, "sample before any TYPE line: %s", line)
		name, _, _ := strings.Cut(line, "{")
		require.Equal(t, order[len(order)-1], name, "sample of another family: %s", line)
	}
	assert.Equal(t, []string{"fed_node", "fed_stale", "fed_window", "http_requests_total", "node_temp_celsius"}, order)
}

func TestFederateProtobuf(t *testing.T) {
	f := newFedFixture(t, Federation{})
	textMFs, _ := f.federateText(t, `{__name__=~"fed_.*|node_temp_celsius"}`)
	accept := `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3`
	code, ctype, body := f.federate(t, accept, `{__name__=~"fed_.*|node_temp_celsius"}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.Equal(t, expfmt.TypeProtoDelim, expfmt.Format(ctype).FormatType(), "content type %q", ctype)
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.Format(ctype))
	got := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got[mf.GetName()] = mf
	}
	require.Len(t, got, len(textMFs))
	for name, mf := range textMFs {
		assert.Equal(t, points(t, mf), points(t, got[name]), "family %s", name)
	}
}

func TestFederateBadMatch(t *testing.T) {
	f := newFedFixture(t, Federation{})
	tests := []struct {
		name  string
		match []string
		want  []string // in the error
	}{
		{"none", nil, []string{"no match[] parameter provided"}},
		{"unparsable", []string{`node_temp_celsius{sensor="a"`}, []string{`match[]`, strconv.Quote(`node_temp_celsius{sensor="a"`)}},
		{"bad among good", []string{`node_temp_celsius`, `rate(x[1m])`}, []string{`match[]`, strconv.Quote(`rate(x[1m])`)}},
		{"matches everything", []string{`node_temp_celsius`, `{sensor=~".*"}`}, []string{`match[]`, strconv.Quote(`{sensor=~".*"}`), "empty string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ctype, body := f.federate(t, "", tt.match...)
			require.Equal(t, http.StatusBadRequest, code, "%s", body)
			assert.Equal(t, "application/json", ctype)
			var env promEnvelope
			require.NoError(t, json.Unmarshal(body, &env), "%s", body)
			assert.Equal(t, "bad_data", env.ErrorType)
			for _, w := range tt.want {
				assert.Contains(t, env.Error, w)
			}
		})
	}
}

// Over max series the request fails whole, naming the bound; at it, it
// is answered.
func TestFederateMaxSeries(t *testing.T) {
	f := newFedFixture(t, Federation{MaxSeries: 2})
	code, _, body := f.federate(t, "", `node_temp_celsius`, `fed_node`)
	require.Equal(t, http.StatusUnprocessableEntity, code, "%s", body)
	var env promEnvelope
	require.NoError(t, json.Unmarshal(body, &env), "%s", body)
	assert.Equal(t, "execution", env.ErrorType)
	assert.Contains(t, env.Error, "more than 2 series")
	assert.Contains(t, env.Error, "match[]")

	mfs, body := f.federateText(t, `node_temp_celsius`)
	assert.Len(t, points(t, mfs["node_temp_celsius"]), 2, "%s", body)
}

// A request whose context is done ends with the context's error.
func TestFederateCanceled(t *testing.T) {
	st := weftstoretest.Start(t, nil)
	querytest.Fill(t, st, time.Now().Add(-6*time.Minute))
	api := &API{
		Parser: limits.NewParser(parser.NewParser(parser.Options{}), 16<<10, 1000), Queryable: st.Queryable(), Now: time.Now,
		Gate: func(h http.HandlerFunc) http.HandlerFunc { return h }, FormError: func(err error) *Error { return BadData(err) },
	}
	var seen *Error
	api.Observe = func(e *Error) { seen = e }
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/federate?match[]=node_temp_celsius", nil)
	rec := httptest.NewRecorder()
	api.federate(rec, req)
	assert.Equal(t, 499, rec.Code, rec.Body.String())
	require.NotNil(t, seen)
	assert.Equal(t, ErrorCanceled, seen.Type)
}

// BenchmarkFederate federates 10,000 series of 20 samples each (5 min at
// 15 s), with 8 labels and two external labels: one op is one answer.
func BenchmarkFederate(b *testing.B) {
	const nSeries, nSamples = 10_000, 20
	st := weftstoretest.Start(b, func(c *weftstoreextension.Config) {
		c.ExternalLabels = map[string]string{"cluster": "bench", "node": "node-1"}
	})
	now := time.Now().UTC().Truncate(time.Second)
	app := st.Appendable().Appender(context.Background())
	for i := range nSeries {
		ls := labels.FromStrings("__name__", "envoy_cluster_upstream_rq_"+strconv.Itoa(i%50),
			"envoy_cluster_name", "outbound|9080||reviews.bookinfo.svc.cluster.local", "job", "envoy-stats",
			"k8s_namespace_name", "bookinfo", "k8s_pod_name", "reviews-v2-7f5c9c8b6f-"+strconv.Itoa(i/50),
			"response_code", "200", "series", strconv.Itoa(i), "service", "reviews")
		for j := range nSamples {
			_, err := app.Append(0, ls, now.Add(-time.Duration(nSamples-j)*15*time.Second).UnixMilli(), float64(i*j))
			require.NoError(b, err)
		}
	}
	require.NoError(b, app.Commit())
	api := &API{
		Parser: limits.NewParser(parser.NewParser(parser.Options{}), 16<<10, 1000), Queryable: st.Queryable(),
		Now: func() time.Time { return now }, Observe: func(*Error) {}, FormError: func(err error) *Error { return BadData(err) },
		Federation: Federation{ExternalLabels: st.ExternalLabels()},
	}
	req := httptest.NewRequest(http.MethodGet, "/federate?match[]="+url.QueryEscape(`{__name__=~"envoy_.+"}`), nil)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		api.federate(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		size = rec.Body.Len()
	}
	b.SetBytes(int64(size))
	b.ReportMetric(float64(size)/nSeries, "answer_B/series")
}
