package podscrapereceiver

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap/zaptest"

	"github.com/weftobs/weft/exporters/weftstoreexporter"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/weftest"
)

// switchServer serves a body, or an HTTP status, that the test changes
// between scrapes.
type switchServer struct {
	ct     string
	body   atomic.Pointer[[]byte]
	status atomic.Int32
}

func (s *switchServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if st := int(s.status.Load()); st != 0 {
		w.WriteHeader(st)
		return
	}
	w.Header().Set("Content-Type", s.ct)
	_, _ = w.Write(*s.body.Load())
}

func (s *switchServer) serve(b []byte) { s.body.Store(&b); s.status.Store(0) }

// dropFamilies returns body without every third metric family (its TYPE
// and HELP lines and samples): whole series that go away, for staleness.
func dropFamilies(body []byte) []byte {
	var (
		out        bytes.Buffer
		lastFamily []byte
	)
	fam := -1
	for _, line := range bytes.SplitAfter(body, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("# HELP ")) || bytes.HasPrefix(line, []byte("# TYPE ")) {
			name := bytes.Fields(line)[2]
			if !bytes.Equal(name, lastFamily) {
				fam++
				lastFamily = append(lastFamily[:0], name...)
			}
		}
		if fam%3 == 1 && !bytes.HasPrefix(line, []byte("# EOF")) {
			continue
		}
		out.Write(line)
	}
	return out.Bytes()
}

// storeDump is everything a store holds: samples per series (stale
// markers as "stale") and exemplars per series.
type storeDump struct {
	samples   map[string][]string
	exemplars map[string][]string
	names     map[string]string // metric name by series key
}

func dumpStore(t *testing.T, st *weftstoreextension.Store) storeDump {
	t.Helper()
	all := labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")
	q, err := st.Queryable().Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	d := storeDump{samples: map[string][]string{}, exemplars: map[string][]string{}, names: map[string]string{}}
	ss := q.Select(t.Context(), false, nil, all)
	for ss.Next() {
		s := ss.At()
		var pts []string
		it := s.Iterator(nil)
		for it.Next() != 0 {
			ts, v := it.At()
			txt := strconv.FormatFloat(v, 'g', -1, 64)
			if value.IsStaleNaN(v) {
				txt = "stale"
			}
			pts = append(pts, fmt.Sprintf("%d=%s", ts, txt))
		}
		require.NoError(t, it.Err())
		d.samples[s.Labels().String()] = pts
		d.names[s.Labels().String()] = s.Labels().Get(model.MetricNameLabel)
	}
	require.NoError(t, ss.Err())
	eq, err := st.ExemplarQueryable().ExemplarQuerier(t.Context())
	require.NoError(t, err)
	res, err := eq.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{all})
	require.NoError(t, err)
	for _, r := range res {
		var exs []string
		for _, e := range r.Exemplars {
			exs = append(exs, fmt.Sprintf("%s %g %d", e.Labels, e.Value, e.Ts))
		}
		sort.Strings(exs)
		d.exemplars[r.SeriesLabels.String()] = exs
	}
	return d
}

// nextMillisecond waits until the clock has passed the millisecond of last,
// so that two scrapes never share a timestamp.
func nextMillisecond(last time.Time) {
	for time.Now().UnixMilli() <= last.UnixMilli() {
		runtime.Gosched()
	}
}

// TestNativeMatchesPdata scrapes real payloads with one receiver that has
// both outputs: pdata through the weft_store exporter into one store, and
// the native path into another. Scrapes: whole body; a third of the
// families gone (their stale markers); HTTP 500 (every series stale,
// up=0); whole body again; target removed (every series stale). Both
// stores must then hold the same series, samples, stale markers and
// exemplars.
func TestNativeMatchesPdata(t *testing.T) {
	for _, tc := range []struct {
		name, file, ct string
	}{
		{"envoy", envoyFile, "text/plain; version=0.0.4"},
		{"openmetrics-exemplars", omFile, "application/openmetrics-text; version=1.0.0; charset=utf-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := readFile(t, tc.file)
			srv := &switchServer{ct: tc.ct}
			srv.serve(body)
			hs := httptest.NewServer(srv)
			defer hs.Close()

			pdataID := component.MustNewIDWithName("weft_store", "pdata")
			nativeID := component.MustNewIDWithName("weft_store", "native")
			pdataStore, nativeStore := weftstoretest.Start(t, nil), weftstoretest.Start(t, nil)
			host := weftest.Host{pdataID: pdataStore, nativeID: nativeStore}

			ef := weftstoreexporter.NewFactory()
			ecfg := ef.CreateDefaultConfig()
			ecfg.(*weftstoreexporter.Config).Store = pdataID
			exp, err := ef.CreateMetrics(t.Context(), exportertest.NewNopSettings(ef.Type()), ecfg)
			require.NoError(t, err)
			require.NoError(t, exp.Start(t.Context(), host))
			t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })

			cfg := staticConfig("diff", hostOf(hs.URL+"/"), nil)
			cfg.Appendables = []component.ID{nativeID}
			require.NoError(t, cfg.Validate())
			set := receivertest.NewNopSettings(component.MustNewType(typeStr))
			set.Logger = zaptest.NewLogger(t)
			r, err := newReceiver(set, cfg, exp)
			require.NoError(t, err)
			r.firstScrapeNow = true
			require.NoError(t, r.Start(t.Context(), host))
			t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })

			tg := onlyTarget(t, r)
			require.Eventually(t, func() bool { return tg.last.Load() != nil }, 20*time.Second, 5*time.Millisecond)
			require.Empty(t, tg.last.Load().err)
			scrape := func() {
				nextMillisecond(tg.last.Load().at)
				tg.scrapeOnce(t.Context())
			}
			srv.serve(dropFamilies(body))
			scrape()
			require.Empty(t, tg.last.Load().err)
			srv.status.Store(http.StatusInternalServerError)
			scrape()
			require.NotEmpty(t, tg.last.Load().err)
			srv.serve(body)
			scrape()
			require.Empty(t, tg.last.Load().err)
			nextMillisecond(tg.last.Load().at)
			r.update(t.Context(), r.jobs[0], []*targetgroup.Group{{Source: r.jobs[0].static[0].Source}})
			<-tg.done

			want, got := dumpStore(t, pdataStore), dumpStore(t, nativeStore)
			require.NotEmpty(t, want.samples)
			stale := 0
			for k, pts := range got.samples {
				for _, p := range pts {
					if strings.HasSuffix(p, "=stale") {
						stale++
					}
				}
				assert.Equal(t, want.samples[k], pts, "series %s", k)
			}
			for k := range want.samples {
				assert.Contains(t, got.samples, k, "series only in the pdata store")
			}
			assert.Equal(t, want.exemplars, got.exemplars)
			t.Logf("%d series, %d stale markers, %d series with exemplars identical in both stores",
				len(got.samples), stale, len(got.exemplars))
			assert.Positive(t, stale)
		})
	}
}

// onlyTarget returns the receiver's one running target.
func onlyTarget(t *testing.T, r *podScrapeReceiver) *target {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*target
	for _, run := range r.running {
		for _, tg := range run {
			out = append(out, tg)
		}
	}
	require.Len(t, out, 1)
	return out[0]
}
