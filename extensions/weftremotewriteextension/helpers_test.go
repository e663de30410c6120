package weftremotewriteextension

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
)

// sink is a remote-write 1.0 receiver that decodes every request and
// keeps what it got, by series. While down it answers 503 (recoverable)
// and keeps nothing.
type sink struct {
	mu        sync.Mutex
	down      bool
	requests  int
	samples   map[string][]prompb.Sample   // by series (labels as text)
	exemplars map[string][]prompb.Exemplar // by series
	hists     map[string][]prompb.Histogram
	count     int // samples received, duplicates included
	// refuse, when set, makes the sink answer 400 to a request with a
	// sample it matches and keep nothing of it (as Prometheus 2.x does
	// with a sample older than its series' newest).
	refuse func(prompb.Sample) bool
}

func newSink(t testing.TB) (*sink, string) {
	s := &sink{samples: map[string][]prompb.Sample{}, exemplars: map[string][]prompb.Exemplar{}, hists: map[string][]prompb.Histogram{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/api/v1/write"
}

func (s *sink) setDown(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = v
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	comp, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, comp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil {
		for _, ts := range req.Timeseries {
			for _, smp := range ts.Samples {
				if s.refuse(smp) {
					http.Error(w, "out of order sample", http.StatusBadRequest)
					return
				}
			}
		}
	}
	s.requests++
	for _, ts := range req.Timeseries {
		k := seriesKey(ts.Labels)
		s.samples[k] = append(s.samples[k], ts.Samples...)
		s.exemplars[k] = append(s.exemplars[k], ts.Exemplars...)
		s.hists[k] = append(s.hists[k], ts.Histograms...)
		s.count += len(ts.Samples)
	}
	w.WriteHeader(http.StatusNoContent)
}

// seriesKey is labels as {a="1", b="2"}, sorted by name.
func seriesKey(ls []prompb.Label) string {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s=%q", l.Name, l.Value)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// got returns the samples of series k.
func (s *sink) got(k string) []prompb.Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples[k])
}

func (s *sink) gotExemplars(k string) []prompb.Exemplar {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exemplars[k])
}

func (s *sink) gotHistograms(k string) []prompb.Histogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hists[k])
}

func (s *sink) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

func (s *sink) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ks []string
	for k := range s.samples {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// testConfig is a configuration for one endpoint, named ep, at url with
// short queue deadlines, WAL in dir.
func testConfig(dir, url string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.WAL.Directory = dir
	cfg.FlushDeadline = 5 * time.Second
	cfg.Endpoints = []EndpointConfig{{Name: "ep", URL: url, QueueConfig: QueueConfig{
		BatchSendDeadline: 50 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}}}
	return cfg
}

// startRW creates and starts the extension with the given catch-up grace;
// it is shut down in t.Cleanup.
func startRW(t testing.TB, cfg *Config, grace time.Duration) *RemoteWrite {
	t.Helper()
	rw, err := newRemoteWrite(componenttest.NewNopTelemetrySettings(), cfg)
	require.NoError(t, err)
	rw.grace = grace
	require.NoError(t, rw.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rw.Shutdown(context.Background())) })
	return rw
}

// waitLive waits until every endpoint's queue runs and its catch-up is
// over.
func waitLive(t testing.TB, rw *RemoteWrite) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, st := range rw.catchups {
			if !st.done.Load() {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond)
}

// sameFloat compares floats bit for bit, so NaNs (staleness markers)
// compare by payload.
func sameFloat(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }
