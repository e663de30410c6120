package podscrapereceiver

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/weftobs/weft/internal/nodestatus"
	"github.com/weftobs/weft/internal/nodestatus/nodestatustest"
	"github.com/weftobs/weft/internal/simnode"
	"github.com/weftobs/weft/internal/weftest"
)

// startReceiver runs a pod_scrape receiver on cfg into a sink, scraping new
// targets at once; it is shut down in t.Cleanup.
func startReceiver(t *testing.T, cfg *Config) (*podScrapeReceiver, *consumertest.MetricsSink, *observer.ObservedLogs) {
	r, sink, logs, _ := startReceiverStatus(t, cfg)
	return r, sink, logs
}

// startReceiverStatus is startReceiver, also returning the status board the
// receiver publishes its targets on.
func startReceiverStatus(t *testing.T, cfg *Config) (*podScrapeReceiver, *consumertest.MetricsSink, *observer.ObservedLogs, *nodestatus.Board) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	core, logs := observer.New(zapcore.DebugLevel)
	set := receivertest.NewNopSettings(component.MustNewType(typeStr))
	set.Logger = zap.New(core)
	sink := new(consumertest.MetricsSink)
	r, err := newReceiver(set, cfg, sink)
	require.NoError(t, err)
	r.firstScrapeNow = true
	status := &nodestatustest.Owner{}
	require.NoError(t, r.Start(t.Context(), weftest.Host{nodestatustest.ID: status}))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r, sink, logs, &status.Board
}

func staticConfig(job, addr string, mutate func(*ScrapeConfig)) *Config {
	cfg := createDefaultConfig().(*Config)
	sc := ScrapeConfig{
		JobName:        job,
		ScrapeInterval: time.Hour,
		ScrapeTimeout:  5 * time.Second,
		StaticConfigs:  []StaticConfig{{Targets: []string{addr}}},
	}
	if mutate != nil {
		mutate(&sc)
	}
	cfg.ScrapeConfigs = []ScrapeConfig{sc}
	return cfg
}

// gaugeValue returns the value of the single data point of a gauge named
// name in md.
func gaugeValue(t *testing.T, md pmetric.Metrics, name string) float64 {
	t.Helper()
	m, ok := findMetric(md, name)
	require.True(t, ok, "metric %s", name)
	return m.Gauge().DataPoints().At(0).DoubleValue()
}

func waitBatches(t *testing.T, sink *consumertest.MetricsSink, n int) []pmetric.Metrics {
	t.Helper()
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= n }, 20*time.Second, 10*time.Millisecond)
	return sink.AllMetrics()
}

func hostOf(rawURL string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://")
	return s[:strings.IndexByte(s, '/')]
}

func pathOf(rawURL string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://")
	return s[strings.IndexByte(s, '/'):]
}

func TestScrapeSimnodeEnvoyAndAppExemplars(t *testing.T) {
	node, err := simnode.Start(simnode.Options{Dir: t.TempDir(), Rate: 400, Seed: 7})
	require.NoError(t, err)
	t.Cleanup(func() { _ = node.Close() })
	require.NoError(t, node.Run(t.Context(), 400*time.Millisecond))

	var envoy, app simnode.Endpoint
	for _, e := range node.Endpoints() {
		switch {
		case e.Container == "istio-proxy" && envoy.URL == "":
			envoy = e
		case e.Port != 15090 && e.Port != 9091 && e.Container != "queue-proxy" && app.URL == "" && e.Namespace == envoy.Namespace:
			app = e
		}
	}
	require.NotEmpty(t, envoy.URL)
	require.NotEmpty(t, app.URL)

	cfg := createDefaultConfig().(*Config)
	cfg.ScrapeConfigs = []ScrapeConfig{
		{JobName: "envoy", ScrapeInterval: time.Hour, MetricsPath: pathOf(envoy.URL),
			StaticConfigs: []StaticConfig{{Targets: []string{hostOf(envoy.URL)}}}},
		{JobName: "app-om", ScrapeInterval: time.Hour, MetricsPath: pathOf(app.URL), ScrapeProtocols: []string{"OpenMetricsText1.0.0"},
			StaticConfigs: []StaticConfig{{Targets: []string{hostOf(app.URL)}, Labels: map[string]string{"team": "a"}}}},
		{JobName: "app-proto", ScrapeInterval: time.Hour, MetricsPath: pathOf(app.URL),
			StaticConfigs: []StaticConfig{{Targets: []string{hostOf(app.URL)}}}},
	}
	_, sink, _ := startReceiver(t, cfg)
	batches := waitBatches(t, sink, 3)
	byJob := map[string]pmetric.Metrics{}
	for _, md := range batches {
		job, _ := md.ResourceMetrics().At(0).Resource().Attributes().Get("job")
		byJob[job.Str()] = md
	}
	require.Len(t, byJob, 3)

	envoyMD := byJob["envoy"]
	res := envoyMD.ResourceMetrics().At(0).Resource().Attributes()
	inst, _ := res.Get("instance")
	assert.Equal(t, hostOf(envoy.URL), inst.Str())
	svc, _ := res.Get("service.name")
	assert.Equal(t, "envoy", svc.Str(), "a static target's service.name is its job")
	assert.Equal(t, 1.0, gaugeValue(t, envoyMD, "up"))
	assert.Positive(t, gaugeValue(t, envoyMD, "scrape_samples_scraped"))
	assert.Positive(t, gaugeValue(t, envoyMD, "scrape_duration_seconds"))
	req, ok := findMetric(envoyMD, "istio_requests_total")
	require.True(t, ok)
	assert.Equal(t, pmetric.MetricTypeSum, req.Type())
	h, ok := findMetric(envoyMD, "istio_request_duration_milliseconds")
	require.True(t, ok)
	assert.Equal(t, pmetric.MetricTypeHistogram, h.Type())

	for _, job := range []string{"app-om", "app-proto"} {
		md := byJob[job]
		m, ok := findMetric(md, "http_requests_total")
		require.True(t, ok, job)
		withTrace := 0
		for i := 0; i < m.Sum().DataPoints().Len(); i++ {
			exs := m.Sum().DataPoints().At(i).Exemplars()
			for j := 0; j < exs.Len(); j++ {
				if !exs.At(j).TraceID().IsEmpty() && !exs.At(j).SpanID().IsEmpty() {
					withTrace++
				}
			}
		}
		assert.Positive(t, withTrace, "%s: exemplars carry trace and span IDs", job)
		hist, ok := findMetric(md, "http_request_duration_seconds")
		require.True(t, ok, job)
		hexs := 0
		for i := 0; i < hist.Histogram().DataPoints().Len(); i++ {
			hexs += hist.Histogram().DataPoints().At(i).Exemplars().Len()
		}
		assert.Positive(t, hexs, "%s: histogram exemplars", job)
	}
	m, _ := findMetric(byJob["app-om"], "http_requests_total")
	team, _ := m.Sum().DataPoints().At(0).Attributes().Get("team")
	assert.Equal(t, "a", team.Str(), "static_configs labels are target labels")
}

// contentTypeRecorder serves h and remembers the Content-Type it answered.
type contentTypeRecorder struct {
	h  http.Handler
	mu sync.Mutex
	ct []string
}

func (c *contentTypeRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.h.ServeHTTP(w, r)
	c.mu.Lock()
	c.ct = append(c.ct, w.Header().Get("Content-Type"))
	c.mu.Unlock()
}

func TestContentNegotiation(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_total", Help: "Jobs."}, []string{"kind"})
	reg.MustRegister(c)
	c.WithLabelValues("a").Add(3)
	for _, tt := range []struct {
		protocols []string
		want      string
	}{
		{nil, "application/vnd.google.protobuf"},
		{[]string{"OpenMetricsText1.0.0"}, "application/openmetrics-text"},
		{[]string{"PrometheusText0.0.4"}, "text/plain"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			rec := &contentTypeRecorder{h: promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			_, sink, _ := startReceiver(t, staticConfig("neg", hostOf(srv.URL+"/"), func(sc *ScrapeConfig) { sc.ScrapeProtocols = tt.protocols }))
			md := waitBatches(t, sink, 1)[0]
			assert.Equal(t, 1.0, gaugeValue(t, md, "up"))
			m, ok := findMetric(md, "jobs_total")
			require.True(t, ok)
			assert.Equal(t, 3.0, m.Sum().DataPoints().At(0).DoubleValue())
			rec.mu.Lock()
			defer rec.mu.Unlock()
			require.NotEmpty(t, rec.ct)
			assert.True(t, strings.HasPrefix(rec.ct[0], tt.want), rec.ct[0])
		})
	}
}

func TestGzipBody(t *testing.T) {
	body := readFile(t, envoyFile)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Contains(t, r.Header.Get("Accept-Encoding"), "gzip")
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		_, _ = gz.Write(body)
		_ = gz.Close()
	}))
	defer srv.Close()
	_, sink, _ := startReceiver(t, staticConfig("gz", hostOf(srv.URL+"/"), nil))
	md := waitBatches(t, sink, 1)[0]
	assert.Equal(t, 1.0, gaugeValue(t, md, "up"))
	assert.Equal(t, 461.0, gaugeValue(t, md, "scrape_samples_scraped"))
	assertSamples(t, flattenText(t, body, nil), flattenPdata(md))
}

// failureReason returns the reason attribute of the failure counter.
func failureReason(t *testing.T, md pmetric.Metrics) string {
	t.Helper()
	m, ok := findMetric(md, failuresMetricName)
	require.True(t, ok, "failure counter present")
	require.Equal(t, 1, m.Sum().DataPoints().Len())
	assert.Equal(t, 1.0, m.Sum().DataPoints().At(0).DoubleValue())
	r, _ := m.Sum().DataPoints().At(0).Attributes().Get("reason")
	return r.Str()
}

func TestFailedScrapes(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		tls     bool
		mutate  func(*ScrapeConfig)
		reason  string
	}{
		{
			name: "malformed exposition",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "ok 1\nbroken{a=\"b\" 2\n")
			},
			reason: reasonParse,
		},
		{
			name: "duplicate series",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "a{x=\"1\"} 1\na{x=\"1\"} 1\n")
			},
			reason: reasonDuplicate,
		},
		{
			name: "100 MB body over body_size_limit",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				line := []byte(strings.Repeat("envoy_cluster_x{cluster_name=\"outbound|9080||reviews\"} 1\n", 100))
				for written := 0; written < 100<<20; written += len(line) {
					if _, err := w.Write(line); err != nil {
						return
					}
				}
			},
			mutate: func(sc *ScrapeConfig) { sc.BodySizeLimit = 1 << 20 },
			reason: reasonBodySize,
		},
		{
			name: "line longer than the parse window",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, "ok 1\nlong{v=\"%s\"} 1\n", strings.Repeat("v", streamWindow))
			},
			reason: reasonLineTooLong,
		},
		{
			name: "gzip bomb over body_size_limit",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				gz := gzip.NewWriter(w)
				zeros := make([]byte, 1<<20)
				for range 100 {
					if _, err := gz.Write(zeros); err != nil {
						return
					}
				}
				_ = gz.Close()
			},
			mutate: func(sc *ScrapeConfig) { sc.BodySizeLimit = 1 << 20 },
			reason: reasonBodySize,
		},
		{
			name: "corrupt gzip",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = io.WriteString(w, "this is not gzip")
			},
			reason: reasonDecompress,
		},
		{
			name: "sample_limit",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				for i := range 100 {
					fmt.Fprintf(w, "s{i=\"%d\"} 1\n", i)
				}
			},
			mutate: func(sc *ScrapeConfig) { sc.SampleLimit = 50 },
			reason: reasonSampleLimit,
		},
		{
			name: "label_limit",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "ok{a=\"1\"} 1\nwide{a=\"1\",b=\"2\",c=\"3\",d=\"4\"} 1\n")
			},
			// job and instance count too: ok has 4 labels, wide 7.
			mutate: func(sc *ScrapeConfig) { sc.LabelLimit = 6 },
			reason: reasonLabelLimit,
		},
		{
			name: "label_name_length_limit",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, "m{%s=\"v\"} 1\n", strings.Repeat("n", 65))
			},
			mutate: func(sc *ScrapeConfig) { sc.LabelNameLengthLimit = 64 },
			reason: reasonNameLength,
		},
		{
			name: "label_value_length_limit",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, "m{short=\"v\"} 1\nm{long=\"%s\"} 1\n", strings.Repeat("v", 300))
			},
			mutate: func(sc *ScrapeConfig) { sc.LabelValueLengthLimit = 256 },
			reason: reasonValueLength,
		},
		{
			name: "slow target",
			handler: func(_ http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			mutate: func(sc *ScrapeConfig) { sc.ScrapeTimeout = 200 * time.Millisecond },
			reason: reasonTimeout,
		},
		{
			name: "untrusted certificate",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "a 1\n")
			},
			tls:    true,
			mutate: func(sc *ScrapeConfig) { sc.Scheme = "https" },
			reason: reasonTLS,
		},
		{
			name: "server error",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "boom", http.StatusInternalServerError)
			},
			reason: reasonHTTPStatus,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(tt.handler)
			srv.Config.ErrorLog = nil
			if tt.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			defer srv.CloseClientConnections()
			_, sink, logs := startReceiver(t, staticConfig("bad", hostOf(srv.URL+"/"), tt.mutate))
			md := waitBatches(t, sink, 1)[0]
			assert.Equal(t, 0.0, gaugeValue(t, md, "up"))
			assert.Equal(t, 0.0, gaugeValue(t, md, "scrape_samples_scraped"))
			assert.Equal(t, tt.reason, failureReason(t, md))
			names := map[string]bool{}
			for _, m := range metricsOf(md) {
				names[m.Name()] = true
			}
			assert.Len(t, names, len(selfGauges)+1, "a failed scrape sends no samples: %v", names)
			entries := logs.FilterMessage("Scrape failed").All()
			require.NotEmpty(t, entries)
			assert.Equal(t, tt.reason, entries[0].ContextMap()["reason"])
		})
	}
}

func TestConnectionRefusedAndRecovery(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, sink, _ := startReceiver(t, staticConfig("gone", addr, nil))
	md := waitBatches(t, sink, 1)[0]
	assert.Equal(t, 0.0, gaugeValue(t, md, "up"))
	assert.Equal(t, reasonConnection, failureReason(t, md))
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	set := receivertest.NewNopSettings(component.MustNewType(typeStr))
	rcv, err := NewFactory().CreateMetrics(t.Context(), set, createDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, rcv.Shutdown(context.Background()))
	require.NoError(t, rcv.Shutdown(context.Background()))

	addr := serveText(t, []byte("a 1\n"))
	r, sink, _ := startReceiver(t, staticConfig("s", addr, nil))
	waitBatches(t, sink, 1)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Empty(t, runningTargetsAfterStop(r), "no target is started after shutdown")
}

func runningTargetsAfterStop(r *podScrapeReceiver) []string {
	r.update(context.Background(), r.jobs[0], r.jobs[0].static)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ts := range r.running {
		for _, t := range ts {
			select {
			case <-t.done:
			default:
				out = append(out, t.url)
			}
		}
	}
	return out
}

func TestFailureLogIsRateLimitedAndRecoveryLogged(t *testing.T) {
	var mu sync.Mutex
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "a 1\n")
	}))
	defer srv.Close()
	r, sink, logs := startReceiver(t, staticConfig("flaky", hostOf(srv.URL+"/"), nil))
	var tg *target
	r.mu.Lock()
	for _, ts := range r.running {
		for _, x := range ts {
			tg = x
		}
	}
	r.mu.Unlock()
	require.NotNil(t, tg)
	waitBatches(t, sink, 1)
	// Further scrapes driven by hand (the loop's interval is an hour);
	// the loop is parked on its ticker, so nothing else touches the target.
	tg.scrapeOnce(t.Context())
	tg.scrapeOnce(t.Context())
	mu.Lock()
	fail = false
	mu.Unlock()
	tg.scrapeOnce(t.Context())

	all := sink.AllMetrics()
	require.Len(t, all, 4)
	m, _ := findMetric(all[2], failuresMetricName)
	assert.Equal(t, 3.0, m.Sum().DataPoints().At(0).DoubleValue(), "every failure counted")
	assert.Equal(t, 1.0, gaugeValue(t, all[3], "up"))
	warns := logs.FilterMessage("Scrape failed").FilterLevelExact(zapcore.WarnLevel).All()
	assert.Len(t, warns, 1, "one warning for three identical failures")
	assert.Len(t, logs.FilterMessage("Scrape failed").FilterLevelExact(zapcore.DebugLevel).All(), 2)
	assert.Len(t, logs.FilterMessage("Scrape recovered").All(), 1)
}

// The status page sees every target with its health, the outcome of its
// last scrape and its last error, and no longer once the receiver stopped.
func TestTargetStatusPublished(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("# TYPE a counter\na_total 1\nb 2\n"))
	}))
	defer up.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := staticConfig("ok", strings.TrimPrefix(up.URL, "http://"), nil)
	cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, staticConfig("gone", gone, nil).ScrapeConfigs...)
	r, sink, _, status := startReceiverStatus(t, cfg)
	waitBatches(t, sink, 2)

	var got []nodestatus.Target
	for _, src := range status.Targets() {
		if src.Component == r.set.ID.String() {
			got = src.Items
		}
	}
	require.Len(t, got, 2)
	assert.Equal(t, "gone", got[0].Job, "ordered by job")
	assert.Equal(t, "down", got[0].Health)
	assert.Contains(t, got[0].LastError, "connection refused")
	assert.Equal(t, "ok", got[1].Job)
	assert.Equal(t, "up", got[1].Health)
	assert.Equal(t, up.URL+"/metrics", got[1].URL)
	assert.Equal(t, 2, got[1].Samples)
	assert.Empty(t, got[1].LastError)
	assert.WithinDuration(t, time.Now(), got[1].LastScrape, time.Minute)

	require.NoError(t, r.Shutdown(context.Background()))
	for _, src := range status.Targets() {
		assert.NotEqual(t, r.set.ID.String(), src.Component, "a stopped receiver's targets are withdrawn")
	}
}
