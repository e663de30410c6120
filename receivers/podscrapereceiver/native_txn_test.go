package podscrapereceiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap/zaptest"

	"github.com/weftobs/weft/internal/nodestatus/nodestatustest"
	"github.com/weftobs/weft/internal/weftest"
)

// recorder is a storage.Appendable that keeps what its transactions
// commit, hands out refs as a TSDB head does and checks that a ref always
// comes back with its own labels.
type recorder struct {
	mu         sync.Mutex
	failCommit error // every Commit fails with it when set
	committed  []sample
	exemplars  []string
	rollbacks  int
	commits    int
	refs       map[string]storage.SeriesRef
	lsets      map[storage.SeriesRef]string
	byRef      int // appends that came with a known ref
	wrongRef   int // appends whose ref named other labels
}

// sample is one committed sample; v "stale" for a stale marker.
type sample struct {
	lset string
	t    int64
	v    string
}

func (s sample) String() string { return fmt.Sprintf("%s %d %s", s.lset, s.t, s.v) }

func newRecorder() *recorder {
	return &recorder{refs: map[string]storage.SeriesRef{}, lsets: map[storage.SeriesRef]string{}}
}

func (r *recorder) Appender(context.Context) storage.Appender { return &recAppender{r: r} }

// Appendable makes the recorder an extension that accepts samples.
func (r *recorder) Appendable() storage.Appendable { return r }

func (*recorder) Start(context.Context, component.Host) error { return nil }
func (*recorder) Shutdown(context.Context) error              { return nil }

// take returns the committed samples and clears them.
func (r *recorder) take() []sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.committed
	r.committed = nil
	return out
}

type recAppender struct {
	storage.Appender // the methods pod_scrape must not call panic
	r                *recorder
	pending          []sample
	pendingEx        []string
}

func (a *recAppender) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	a.r.mu.Lock()
	defer a.r.mu.Unlock()
	key := l.String()
	if ref != 0 {
		if a.r.lsets[ref] != key {
			a.r.wrongRef++
		} else {
			a.r.byRef++
		}
	}
	got, ok := a.r.refs[key]
	if !ok {
		got = storage.SeriesRef(len(a.r.refs) + 1)
		a.r.refs[key], a.r.lsets[got] = got, key
	}
	txt := fmt.Sprint(v)
	if value.IsStaleNaN(v) {
		txt = "stale"
	}
	a.pending = append(a.pending, sample{key, t, txt})
	return got, nil
}

func (a *recAppender) AppendExemplar(ref storage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	a.pendingEx = append(a.pendingEx, fmt.Sprintf("%s %s %g", l, e.Labels, e.Value))
	return ref, nil
}

func (a *recAppender) Commit() error {
	a.r.mu.Lock()
	defer a.r.mu.Unlock()
	if a.r.failCommit != nil {
		return a.r.failCommit
	}
	a.r.commits++
	a.r.committed = append(a.r.committed, a.pending...)
	a.r.exemplars = append(a.r.exemplars, a.pendingEx...)
	return nil
}

func (a *recAppender) Rollback() error {
	a.r.mu.Lock()
	defer a.r.mu.Unlock()
	a.r.rollbacks++
	return nil
}

// byName groups samples by metric name (the text before '{').
func byName(samples []sample) map[string][]sample {
	out := map[string][]sample{}
	for _, s := range samples {
		lset, err := labelsOf(s.lset)
		if err != nil {
			panic(err)
		}
		n := lset.Get(model.MetricNameLabel)
		out[n] = append(out[n], s)
	}
	return out
}

// labelsOf parses the labels.String form back ({a="b", c="d"}).
func labelsOf(s string) (labels.Labels, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	b := labels.NewScratchBuilder(8)
	for s != "" {
		eq := strings.Index(s, `="`)
		if eq < 0 {
			return labels.EmptyLabels(), fmt.Errorf("no value in %q", s)
		}
		name := s[:eq]
		rest := s[eq+2:]
		end := 0
		for end < len(rest) && rest[end] != '"' {
			if rest[end] == '\\' {
				end++
			}
			end++
		}
		b.Add(name, rest[:end])
		s = strings.TrimPrefix(strings.TrimPrefix(rest[end+1:], ","), " ")
	}
	b.Sort()
	return b.Labels(), nil
}

const txnBody = `# TYPE app_requests_total counter
app_requests_total{code="200"} 10
app_requests_total{code="500"} 2
# TYPE app_latency_seconds histogram
app_latency_seconds_bucket{le="0.1"} 1
app_latency_seconds_bucket{le="1"} 3
app_latency_seconds_bucket{le="+Inf"} 4
app_latency_seconds_sum 1.5
app_latency_seconds_count 4
# TYPE app_temp gauge
app_temp 21.5
`

// TestNativeTransactions checks the transaction semantics of the native
// path with two appendables, the second of which fails every Commit: the
// first still gets every sample; the failed commits are counted (a series
// of the next scrape) and shown on the status board while the target stays
// up. A scrape that fails half way rolls back what it appended and commits
// only stale markers for the last good scrape's series and up=0. Series
// refs from the first scrape are used by every later one.
func TestNativeTransactions(t *testing.T) {
	srv := &switchServer{ct: "text/plain; version=0.0.4"}
	srv.serve([]byte(txnBody))
	hs := httptest.NewServer(srv)
	defer hs.Close()

	good, bad := newRecorder(), newRecorder()
	bad.failCommit = errors.New("disk full")
	goodID := component.MustNewIDWithName("weft_store", "a")
	badID := component.MustNewIDWithName("weft_remote_write", "b")
	status := &nodestatustest.Owner{}
	host := weftest.Host{goodID: good, badID: bad, nodestatustest.ID: status}

	cfg := staticConfig("txn", hostOf(hs.URL+"/"), func(sc *ScrapeConfig) {
		sc.StaticConfigs[0].Labels = map[string]string{"team": "mesh"}
	})
	cfg.Appendables = []component.ID{goodID, badID}
	cfg.PData = false
	require.NoError(t, cfg.Validate())
	set := receivertest.NewNopSettings(component.MustNewType(typeStr))
	set.Logger = zaptest.NewLogger(t)
	sink := new(consumertest.MetricsSink)
	r, err := newReceiver(set, cfg, sink)
	require.NoError(t, err)
	r.firstScrapeNow = true
	require.NoError(t, r.Start(t.Context(), host))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	tg := onlyTarget(t, r)
	require.Eventually(t, func() bool { return tg.last.Load() != nil }, 20*time.Second, 5*time.Millisecond)

	// Scrape 1: 8 samples and 5 self series to each appendable.
	first := good.take()
	names := byName(first)
	assert.Len(t, first, 8+5, "%v", first)
	// Every series, the scrape's own included, has the target's labels,
	// as Prometheus gives them.
	instance := hostOf(hs.URL + "/")
	assert.Equal(t, `{__name__="up", instance="`+instance+`", job="txn", team="mesh"}`, names["up"][0].lset)
	assert.Equal(t, "1", names["up"][0].v)
	assert.Equal(t, `{__name__="app_latency_seconds_bucket", instance="`+instance+`", job="txn", le="0.1", team="mesh"}`, names["app_latency_seconds_bucket"][0].lset)
	assert.Empty(t, bad.take(), "a failed commit stores nothing")
	st := tg.status()
	assert.Equal(t, "up", st.Health)
	assert.Contains(t, st.LastError, "commit to weft_remote_write/b: disk full")
	assert.Equal(t, 13.0, tg.out.failures[appendFailure{1, appendReasonCommit}])
	assert.Empty(t, sink.AllMetrics(), "pdata: false hands the pipeline nothing")

	// Scrape 2: the same series by ref, and the failed commits counted.
	nextMillisecond(tg.last.Load().at)
	tg.scrapeOnce(t.Context())
	second := byName(good.take())
	require.Len(t, second[appendFailuresName], 1)
	assert.Contains(t, second[appendFailuresName][0].lset, `appendable="weft_remote_write/b", instance=`)
	assert.Contains(t, second[appendFailuresName][0].lset, `reason="commit"`)
	assert.Equal(t, "13", second[appendFailuresName][0].v)
	good.mu.Lock()
	assert.Equal(t, 13, good.byRef, "every series of scrape 2 appended by the ref of scrape 1")
	assert.Zero(t, good.wrongRef)
	good.mu.Unlock()

	// Scrape 3 fails after its first samples (a series exposed twice).
	srv.serve([]byte(txnBody + "app_temp 22\n"))
	good.mu.Lock()
	rollbacks := good.rollbacks
	good.mu.Unlock()
	nextMillisecond(tg.last.Load().at)
	tg.scrapeOnce(t.Context())
	require.Contains(t, tg.last.Load().err, reasonDuplicate)
	good.mu.Lock()
	assert.Equal(t, rollbacks+1, good.rollbacks, "the failed scrape's appends rolled back")
	good.mu.Unlock()
	third := byName(good.take())
	for _, n := range []string{"app_requests_total", "app_latency_seconds_bucket", "app_latency_seconds_sum", "app_latency_seconds_count", "app_temp"} {
		require.NotEmpty(t, third[n], n)
		for _, s := range third[n] {
			assert.Equal(t, "stale", s.v, "%s: only stale markers after a failed scrape", s)
		}
	}
	assert.Len(t, third["app_requests_total"], 2)
	assert.Len(t, third["app_latency_seconds_bucket"], 3)
	assert.Equal(t, "0", third["up"][0].v)
	assert.Equal(t, "1", third[failuresMetricName][0].v)
	assert.Contains(t, third[failuresMetricName][0].lset, `reason="duplicate_series"`)

	// The target goes away: its self series end too.
	srv.serve([]byte(txnBody))
	nextMillisecond(tg.last.Load().at)
	tg.scrapeOnce(t.Context())
	require.Empty(t, tg.last.Load().err)
	good.take()
	nextMillisecond(tg.last.Load().at)
	r.update(t.Context(), r.jobs[0], []*targetgroup.Group{{Source: r.jobs[0].static[0].Source}})
	<-tg.done
	last := byName(good.take())
	for _, n := range append([]string{"app_requests_total", "app_temp"}, selfGauges[:]...) {
		require.NotEmpty(t, last[n], n)
		for _, s := range last[n] {
			assert.Equal(t, "stale", s.v, "%s ends when the target goes away", s)
		}
	}
	assert.Empty(t, sink.AllMetrics())
}

// TestStartFindsAppendables: Start fails, naming the entry, when an
// appendable is not configured or is an extension that takes no samples.
func TestStartFindsAppendables(t *testing.T) {
	store := component.MustNewID("weft_store")
	other := component.MustNewID("health_check")
	host := weftest.Host{store: newRecorder(), other: &nodestatustest.Owner{}}
	for _, tt := range []struct {
		ids  []component.ID
		want string
	}{
		{[]component.ID{store, component.MustNewIDWithName("weft_remote_write", "x")}, "appendables[1]: extension weft_remote_write/x is not configured"},
		{[]component.ID{other}, "appendables[0]: extension health_check does not accept samples"},
	} {
		cfg := staticConfig("s", "127.0.0.1:1", nil)
		cfg.Appendables = tt.ids
		r, err := newReceiver(receivertest.NewNopSettings(component.MustNewType(typeStr)), cfg, consumertest.NewNop())
		require.NoError(t, err)
		err = r.Start(t.Context(), host)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
		require.NoError(t, r.Shutdown(t.Context()))
	}
}

// TestNativeWithoutPdata: the native output is the same with pdata off
// as with it on, scrape after scrape (same clock): series that go away, a
// scrape that fails at once, one that fails half way after new series,
// series that come back. pdata off builds no pdata at all: the metric
// slice it gets is the zero one, which any use would panic on.
func TestNativeWithoutPdata(t *testing.T) {
	for _, b := range []struct {
		file, ct string
	}{
		{envoyFile, ctText},
		{omFile, "application/openmetrics-text; version=1.0.0"},
	} {
		body := readFile(t, b.file)
		dropped := dropFamilies(body)
		broken := append(bytes.TrimSuffix(bytes.Clone(body), []byte("# EOF\n")), "app_broken{ 1\n"...)
		steps := []struct {
			body []byte
			fail bool // the scrape fails before parsing (connection)
		}{
			{body: body}, {body: dropped}, {body: dropped}, {fail: true}, {body: dropped},
			{body: broken}, {body: dropped}, {body: body}, {body: body},
		}
		run := func(pdata bool) ([]sample, []string, []string) {
			var kept []string // the state kept after each step
			rec := newRecorder()
			a := newAppender(labels.FromStrings("job", "j", "instance", "i:1"), false, scrapeLimits{honorTimestamps: true}, nil)
			a.out = newNativeOut([]string{"rec"}, []storage.Appendable{rec})
			a.pdata = pdata
			now := time.Unix(1700000000, 0)
			for i, step := range steps {
				md, ms := pmetric.NewMetrics(), pmetric.MetricSlice{}
				if pdata {
					ms = md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
				}
				a.out.begin(t.Context())
				var err error
				if !step.fail {
					_, err = a.appendBody(step.body, b.ct, now, ms)
				}
				if bytes.Equal(step.body, broken) {
					require.Error(t, err, "step %d", i)
				}
				if step.fail || err != nil {
					require.True(t, step.fail || bytes.Equal(step.body, broken), "step %d: %v", i, err)
					a.out.rollback()
					a.out.begin(t.Context())
					if pdata {
						ms.RemoveIf(func(pmetric.Metric) bool { return true })
					}
					a.fail(now, ms)
				}
				require.NoError(t, a.out.commit())
				// (pdata keeps a metric one scrape longer: its stale markers.)
				kept = append(kept, fmt.Sprintf("step %d: %d series", i, len(a.series)))
				if pdata {
					for _, ent := range a.series {
						require.Equal(t, !ent.dropped && ent.overLimit == nil, ent.pd != nil, "step %d: pdata state of a kept series", i)
					}
				} else {
					// No point state; the native state of each kept series
					// and nothing else.
					require.Empty(t, a.points, "step %d", i)
					require.Empty(t, a.metrics, "step %d", i)
					live := map[*nativeSeries]bool{}
					for _, ent := range a.series {
						require.Nil(t, ent.pd, "step %d: pdata state of a series without pdata", i)
						if ent.native != nil {
							live[ent.native] = true
						}
					}
					for _, ns := range a.nativeIDs {
						require.True(t, live[ns], "step %d: native state of a series no longer kept: %s", i, ns.lset)
					}
				}
				now = now.Add(15 * time.Second)
			}
			return rec.take(), rec.exemplars, kept
		}
		on, onEx, onKept := run(true)
		off, offEx, offKept := run(false)
		require.NotEmpty(t, on)
		assert.Equal(t, on, off, b.file)
		assert.Equal(t, onEx, offEx, b.file)
		assert.Equal(t, onKept, offKept, "%s: series state kept (nothing left behind by the failed scrapes)", b.file)
		stale := 0
		for _, s := range off {
			if s.v == "stale" {
				stale++
			}
		}
		assert.Positive(t, stale)
	}
}

// TestNativeLimitsBeforeAppend: a scrape that breaks a per-target limit
// late in its body hands the appendables nothing of its own series, not
// even in a transaction that is rolled back: a TSDB head (and the agent)
// keep the series an Append created after a Rollback, so appending while
// parsing would let one target over its limits fill the node's series
// budget. Only the scrape's own series (up=0, the failure counter) reach
// them; the same body within the limits then arrives whole.
func TestNativeLimitsBeforeAppend(t *testing.T) {
	body := readFile(t, envoyFile)
	if !bytes.HasSuffix(body, []byte("\n")) {
		body = append(body, '\n')
	}
	countSeries := func(b []byte) int {
		n := 0
		for line := range bytes.Lines(b) {
			if len(bytes.TrimSpace(line)) > 0 && line[0] != '#' {
				n++
			}
		}
		return n
	}
	series := countSeries(body)
	require.Greater(t, series, 400)
	// A body that only breaks body_size_limit after several of the
	// parser's windows (the Envoy file fits in one).
	var long bytes.Buffer
	long.WriteString("# TYPE app_long gauge\n")
	for i := 0; long.Len() < 4*streamWindow; i++ {
		fmt.Fprintf(&long, "app_long{i=\"%06d\"} 1\n", i)
	}
	// The last series breaks label_limit (the file's series have at most
	// 31 labels with the target's).
	var wide bytes.Buffer
	wide.Write(body)
	wide.WriteString("app_wide{")
	for i := range 40 {
		fmt.Fprintf(&wide, "l%02d=\"v\",", i)
	}
	wide.WriteString("} 1\n")
	for _, c := range []struct {
		name     string
		body, ok []byte // over the limit, within it
		reason   string
		limit    func(*ScrapeConfig)
	}{
		{"sample_limit", body, body, reasonSampleLimit, func(sc *ScrapeConfig) { sc.SampleLimit = series - 1 }},
		{"label_limit", wide.Bytes(), body, reasonLabelLimit, func(sc *ScrapeConfig) { sc.LabelLimit = 32 }},
		{"body_size_limit", long.Bytes(), long.Bytes(), reasonBodySize, func(sc *ScrapeConfig) { sc.BodySizeLimit = 3 * streamWindow }},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := &switchServer{ct: ctText}
			srv.serve(c.body)
			hs := httptest.NewServer(srv)
			defer hs.Close()
			rec := newRecorder()
			id := component.MustNewID("weft_store")
			cfg := staticConfig("limits", hostOf(hs.URL+"/"), c.limit)
			cfg.Appendables = []component.ID{id}
			cfg.PData = false
			require.NoError(t, cfg.Validate())
			set := receivertest.NewNopSettings(component.MustNewType(typeStr))
			r, err := newReceiver(set, cfg, new(consumertest.MetricsSink))
			require.NoError(t, err)
			r.firstScrapeNow = true
			require.NoError(t, r.Start(t.Context(), weftest.Host{id: rec, nodestatustest.ID: &nodestatustest.Owner{}}))
			t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
			tg := onlyTarget(t, r)
			require.Eventually(t, func() bool { return tg.last.Load() != nil }, 20*time.Second, 5*time.Millisecond)
			require.Contains(t, tg.last.Load().err, c.reason)

			own := map[string]bool{failuresMetricName: true}
			for _, n := range selfGauges {
				own[n] = true
			}
			rec.mu.Lock()
			for key := range rec.refs {
				name, _, _ := strings.Cut(strings.TrimPrefix(key, `{__name__="`), `"`)
				assert.True(t, own[name], "series %s reached the appendable from a scrape over %s", key, c.name)
			}
			assert.Zero(t, rec.rollbacks-1, "one transaction rolled back, and it held nothing")
			rec.mu.Unlock()
			got := byName(rec.take())
			require.Len(t, got["up"], 1)
			assert.Equal(t, "0", got["up"][0].v)

			// Within the limits, the same target's series arrive.
			tg.app.limits = scrapeLimits{honorTimestamps: true}
			tg.job.bodyLimit = 0
			srv.serve(c.ok)
			nextMillisecond(tg.last.Load().at)
			tg.scrapeOnce(t.Context())
			require.Empty(t, tg.last.Load().err)
			got = byName(rec.take())
			assert.Equal(t, "1", got["up"][0].v)
			rec.mu.Lock()
			assert.Equal(t, countSeries(c.ok)+len(selfGauges)+1, len(rec.refs), "the body's series, the scrape's own and the failure counter")
			rec.mu.Unlock()
		})
	}
}

// TestNativeDuplicateSeries: one series exposed twice under two texts
// (its labels in another order) fails the scrape as duplicate_series on
// either output, and the appendable gets none of it.
func TestNativeDuplicateSeries(t *testing.T) {
	body := []byte("# TYPE a gauge\na{x=\"1\",y=\"2\"} 1\nb 3\na{y=\"2\",x=\"1\"} 2\n")
	for _, pdata := range []bool{true, false} {
		rec := newRecorder()
		a := newAppender(labels.FromStrings("job", "j", "instance", "i:1"), false, scrapeLimits{honorTimestamps: true}, nil)
		a.out = newNativeOut([]string{"rec"}, []storage.Appendable{rec})
		a.pdata = pdata
		ms := pmetric.NewMetrics().ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
		for i := range 2 { // a new series, then a known one
			a.out.begin(t.Context())
			_, err := a.appendBody(body, ctText, time.Unix(1700000000+int64(i)*15, 0), ms)
			require.Error(t, err, "pdata %v, scrape %d", pdata, i)
			assert.Contains(t, err.Error(), reasonDuplicate, "pdata %v", pdata)
			a.out.rollback()
			a.fail(time.Unix(1700000000+int64(i)*15, 0), ms)
		}
		rec.mu.Lock()
		assert.Empty(t, rec.refs, "pdata %v: series reached the appendable", pdata)
		rec.mu.Unlock()
	}
}

// splitRecorder is a recorder whose transactions may be split, as
// weft_remote_write's are.
type splitRecorder struct {
	*recorder
	per int
}

func (r splitRecorder) NewSeriesPerCommit() int { return r.per }

// TestNativeSplitsNewSeries: a scrape that creates many series commits
// them to a splittable appendable (promappend.Splittable) a few new series
// per transaction, to the others in one; both get the same samples and
// exemplars in the same order, and a scrape that creates no series is one
// transaction everywhere.
func TestNativeSplitsNewSeries(t *testing.T) {
	for _, b := range []struct{ file, ct string }{
		{envoyFile, ctText},
		{omFile, "application/openmetrics-text; version=1.0.0"},
	} {
		body := readFile(t, b.file)
		const per = 5
		whole, split := newRecorder(), splitRecorder{newRecorder(), per}
		a := nativeTo(whole, split)
		now := time.Unix(1700000000, 0)
		for scrape := range 2 {
			scrapeCommit(t, a, body, b.ct, now)
			wholeSamples, splitSamples := whole.take(), split.take()
			require.NotEmpty(t, wholeSamples)
			assert.Equal(t, wholeSamples, splitSamples, "%s scrape %d", b.file, scrape)
			assert.Equal(t, 1, whole.commits, "%s scrape %d", b.file, scrape)
			want := 1
			if scrape == 0 {
				want = len(wholeSamples)/per + 1
			}
			assert.Equal(t, want, split.commits, "%s scrape %d: every %d new series committed", b.file, scrape, per)
			whole.commits, split.commits = 0, 0
			now = now.Add(15 * time.Second)
		}
		assert.Equal(t, whole.exemplars, split.exemplars, b.file)
		if b.file == omFile {
			assert.NotEmpty(t, split.exemplars)
		}
		assert.Zero(t, split.wrongRef)
	}
}

// nativeTo returns a native-path appender (no pdata) writing to whole and
// split.
func nativeTo(whole, split storage.Appendable) *appender {
	a := newAppender(labels.FromStrings("job", "j", "instance", "i:1"), false, scrapeLimits{honorTimestamps: true}, nil)
	a.out = newNativeOut([]string{"whole", "split"}, []storage.Appendable{whole, split})
	a.pdata = false
	return a
}

// scrapeCommit appends body, scraped at now, and commits it.
func scrapeCommit(t *testing.T, a *appender, body []byte, ct string, now time.Time) {
	t.Helper()
	a.out.begin(t.Context())
	_, err := a.appendBody(body, ct, now, pmetric.MetricSlice{})
	require.NoError(t, err)
	require.NoError(t, a.out.commit())
}

// sampleSplitRecorder is a recorder whose transactions may be split by
// samples too (promappend.SampleSplittable), as weft_remote_write's are.
type sampleSplitRecorder struct {
	*recorder
	per int
}

func (r sampleSplitRecorder) SamplesPerCommit() int { return r.per }

// TestNativeSplitsSamples: every scrape commits to an appendable split by
// samples a few samples per transaction, a sample and its exemplars in
// the same one, and the appendable gets what an unsplit one gets.
func TestNativeSplitsSamples(t *testing.T) {
	body := readFile(t, omFile)
	const per = 7
	whole, split := newRecorder(), sampleSplitRecorder{newRecorder(), per}
	a := nativeTo(whole, split)
	now := time.Unix(1700000000, 0)
	for scrape := range 2 {
		scrapeCommit(t, a, body, "application/openmetrics-text; version=1.0.0", now)
		wholeSamples, splitSamples := whole.take(), split.take()
		require.Greater(t, len(wholeSamples), 2*per)
		assert.Equal(t, wholeSamples, splitSamples, "scrape %d", scrape)
		assert.Equal(t, 1, whole.commits, "scrape %d", scrape)
		assert.Equal(t, (len(wholeSamples)+per-1)/per, split.commits, "scrape %d: every %d samples committed", scrape, per)
		whole.commits, split.commits = 0, 0
		now = now.Add(15 * time.Second)
	}
	assert.Equal(t, whole.exemplars, split.exemplars)
	assert.NotEmpty(t, split.exemplars)
	assert.Zero(t, split.wrongRef)
}

// TestNativeStagingKeptAcrossScrapes: the staging buffers survive a scrape
// that needs little of them (exemplars every other scrape, as a target
// sampling its traces gives them) and are dropped only after shrinkAfter
// such scrapes in a row.
func TestNativeStagingKeptAcrossScrapes(t *testing.T) {
	const n = 10000
	o := newNativeOut([]string{"discard"}, []storage.Appendable{&discard{}})
	s := o.newSeries(labels.FromStrings("__name__", "x"))
	ex := []exemplar.Exemplar{{Labels: labels.FromStrings("trace_id", "1"), Value: 1}}
	scrape := func(withExemplars bool) {
		o.begin(context.Background())
		for i := range n {
			if withExemplars {
				o.stage(s, int64(i), 1, ex)
			} else {
				o.stage(s, int64(i), 1, nil)
			}
		}
		o.flush()
		require.NoError(t, o.commit())
	}
	scrape(true)
	require.GreaterOrEqual(t, cap(o.stagedEx), n)
	kept := &o.stagedEx[:1][0]
	for range 2 * shrinkAfter {
		scrape(false)
		scrape(true)
		require.Same(t, kept, &o.stagedEx[:1][0], "exemplar buffer grown again")
		assert.Zero(t, o.stagedEx[:1][0].Value, "an emptied buffer keeps no exemplar")
	}
	for range shrinkAfter - 1 {
		scrape(false)
	}
	require.NotNil(t, o.stagedEx, "dropped before shrinkAfter small scrapes")
	scrape(false)
	assert.Nil(t, o.stagedEx, "kept after shrinkAfter small scrapes in a row")
	assert.GreaterOrEqual(t, cap(o.staged), n, "sample buffer, used in full every scrape, kept")
}
