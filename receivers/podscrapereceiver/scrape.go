package podscrapereceiver

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/weftobs/weft/internal/nodestatus"
)

// protocolMediaTypes are the scrape_protocols and what they ask for.
var protocolMediaTypes = map[string]string{
	"PrometheusProto":      "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
	"OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0",
	"OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
	"PrometheusText0.0.4":  "text/plain;version=0.0.4",
}

// defaultProtocols prefer protobuf, then OpenMetrics, then the text format,
// as Prometheus does.
var defaultProtocols = []string{"PrometheusProto", "OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText0.0.4"}

// acceptHeader builds the Accept header of a scrape from the protocols,
// most preferred first.
func acceptHeader(protocols []string) string {
	if len(protocols) == 0 {
		protocols = defaultProtocols
	}
	var b strings.Builder
	q := 0.5
	for _, p := range protocols {
		b.WriteString(protocolMediaTypes[p])
		b.WriteString(";q=")
		b.WriteString(strconv.FormatFloat(q, 'f', -1, 64))
		b.WriteByte(',')
		q = max(q-0.1, 0.2)
	}
	b.WriteString("*/*;q=0.1")
	return b.String()
}

// target is one scrape target with its own loop.
type target struct {
	job      *job
	url      string
	resource map[string]string
	app      *appender
	client   *http.Client
	next     consumer.Metrics
	logger   *zap.Logger
	// out is the native output (nil: none); nativeOnly: no pdata at all
	// (pdata: false), the appendables get everything.
	out        *nativeOut
	nativeOnly bool
	// self are the native series of up and friends (selfGauges' order),
	// failed the pod_scrape_failures_total series by reason, appendFailed
	// the pod_scrape_append_failures_total ones.
	self         [len(selfGauges)]*nativeSeries
	failed       map[string]*nativeSeries
	appendFailed map[appendFailure]*nativeSeries

	started  time.Time
	failures map[string]float64
	// lastReason is the reason of the last scrape if it failed.
	lastReason string
	// chunks holds the part of a body being parsed (at most its window);
	// lastLen is the previous body's length.
	chunks  chunker
	body    bodyReader
	lastLen int64
	gz      *gzip.Reader

	cancel context.CancelFunc
	done   chan struct{}
	// removed is set when discovery dropped the target: its series are
	// then ended with stale markers (not on shutdown, as Prometheus).
	removed atomic.Bool
	// last is the outcome of the latest scrape, for the status page.
	last atomic.Pointer[scrapeResult]
}

// scrape GETs the target's body and parses it as it arrives, appending
// its data points to ms; ctx bounds both.
func (t *target) scrape(ctx context.Context, now time.Time, ms pmetric.MetricSlice) (parseStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return parseStats{}, failf(reasonConnection, "request: %w", err)
	}
	req.Header.Set("Accept", t.job.accept)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", "weft-pod-scrape")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(t.job.timeout.Seconds(), 'f', -1, 64))
	resp, err := t.client.Do(req)
	if err != nil {
		return parseStats{}, classify(ctx, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return parseStats{}, failf(reasonHTTPStatus, "server returned HTTP status %s", resp.Status)
	}
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if t.gz == nil {
			t.gz, err = gzip.NewReader(resp.Body)
		} else {
			err = t.gz.Reset(resp.Body)
		}
		if err != nil {
			return parseStats{}, failf(reasonDecompress, "gzip: %w", err)
		}
		body = t.gz
	}
	br := &t.body
	*br = bodyReader{ctx: ctx, r: body, limit: t.job.bodyLimit}
	st, err := t.app.appendStream(&t.chunks, br, resp.Header.Get("Content-Type"), now, ms, t.lastLen, br.limit > 0)
	t.lastLen = br.n
	t.chunks.release(br.n)
	*br = bodyReader{}
	return st, err
}

// bodyReader reads a body for the parse: it counts the (uncompressed)
// bytes, fails the body once it is over body_size_limit (reading at most
// limit+1 bytes) and gives read failures their reason.
type bodyReader struct {
	ctx   context.Context
	r     io.Reader
	limit int64 // 0: none
	n     int64
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.limit > 0 {
		if b.n > b.limit {
			return 0, b.tooLarge()
		}
		if int64(len(p)) > b.limit+1-b.n {
			p = p[:b.limit+1-b.n]
		}
	}
	m, err := b.r.Read(p)
	b.n += int64(m)
	switch {
	case b.limit > 0 && b.n > b.limit:
		return m, b.tooLarge()
	case err == nil, err == io.EOF:
		return m, err
	case b.ctx.Err() != nil:
		return m, failf(reasonTimeout, "read body: %w", err)
	}
	return m, failf(reasonConnection, "read body: %w", err)
}

func (b *bodyReader) tooLarge() error {
	return failf(reasonBodySize, "body larger than body_size_limit %d bytes", b.limit)
}

// classify gives a transport error its reason.
func classify(ctx context.Context, err error) error {
	var (
		certErr    *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		alertErr   tls.AlertError
		netErr     net.Error
	)
	switch {
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &unknownCA),
		errors.As(err, &hostErr), errors.As(err, &invalidErr), errors.As(err, &alertErr):
		return failf(reasonTLS, "%w", err)
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return failf(reasonTimeout, "%w", err)
	}
	return failf(reasonConnection, "%w", err)
}

// run scrapes the target every interval until ctx ends, then ends its series.
func (t *target) run(ctx context.Context, offset time.Duration) {
	defer close(t.done)
	timer := time.NewTimer(offset)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
	}
	ticker := time.NewTicker(t.job.interval)
	defer ticker.Stop()
	for {
		t.scrapeOnce(ctx)
		select {
		case <-ctx.Done():
			if t.removed.Load() {
				t.end()
			}
			return
		case <-ticker.C:
		}
	}
}

// newBatch returns an empty pdata batch of the target and its metric
// slice; both zero when the target builds no pdata.
func (t *target) newBatch() (pmetric.Metrics, pmetric.MetricSlice) {
	if t.nativeOnly {
		return pmetric.Metrics{}, pmetric.MetricSlice{}
	}
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	t.fillResource(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(scopeName)
	return md, sm.Metrics()
}

// scrapeOnce scrapes, converts and hands one batch to the pipeline and
// one transaction to each appendable.
func (t *target) scrapeOnce(ctx context.Context) {
	start := time.Now()
	md, ms := t.newBatch()
	if t.out != nil {
		t.out.begin(ctx)
	}

	// The timeout bounds the parse too: the body is parsed as it arrives.
	sctx, cancel := context.WithTimeout(ctx, t.job.timeout)
	st, err := t.scrape(sctx, start, ms)
	cancel()
	if ctx.Err() != nil {
		// Shutting down or the target went away: no batch for a scrape
		// that was cut short.
		if t.out != nil {
			t.out.rollback()
		}
		return
	}
	if err != nil {
		if !t.nativeOnly {
			ms.RemoveIf(func(pmetric.Metric) bool { return true })
		}
		if t.out != nil {
			// What the failed scrape appended goes; its stale markers
			// and up=0 come in a transaction of their own.
			t.out.rollback()
			t.out.begin(ctx)
		}
		t.app.fail(start, ms)
		reason := reasonConnection
		var se *scrapeError
		if errors.As(err, &se) {
			reason = se.reason
		}
		t.failures[reason]++
		// Rate-limited: a warning when a target starts failing or fails
		// for another reason; the same failure again is a debug line (the
		// counter keeps counting).
		lvl := zapcore.WarnLevel
		if reason == t.lastReason {
			lvl = zapcore.DebugLevel
		}
		t.lastReason = reason
		if ce := t.logger.Check(lvl, "Scrape failed"); ce != nil {
			ce.Write(zap.String("job", t.job.name), zap.String("url", t.url), zap.String("reason", reason),
				zap.Float64("failures", t.failures[reason]), zap.Error(err))
		}
	} else if t.lastReason != "" {
		t.logger.Info("Scrape recovered", zap.String("job", t.job.name), zap.String("url", t.url),
			zap.String("after", t.lastReason))
		t.lastReason = ""
	}
	dur := time.Since(start)
	res := &scrapeResult{at: start, dur: dur, samples: st.scraped}
	if err != nil {
		res.err = err.Error()
	}
	t.appendSelf(ms, start, dur, err == nil, st)
	if t.out != nil {
		if cerr := t.out.commit(); cerr != nil {
			res.appendErr = cerr.Error()
			t.logger.Warn("Appendable refused a scrape's samples", zap.String("job", t.job.name), zap.String("url", t.url),
				zap.String("reason", appendReasonCommit), zap.Error(cerr))
		}
	}
	t.last.Store(res)
	if t.nativeOnly {
		return
	}
	if cerr := t.next.ConsumeMetrics(ctx, md); cerr != nil {
		t.logger.Warn("Pipeline refused scraped metrics", zap.String("job", t.job.name), zap.String("url", t.url),
			zap.String("reason", "consumer"), zap.Error(cerr))
	}
}

// scrapeResult is what the status page shows of a target's latest scrape.
type scrapeResult struct {
	at      time.Time
	dur     time.Duration
	samples int
	err     string // empty: the scrape succeeded
	// appendErr is the last failed commit to an appendable (the others
	// got the samples): shown while the target stays up.
	appendErr string
}

// status is the target's nodestatus entry.
func (t *target) status() nodestatus.Target {
	st := nodestatus.Target{Job: t.job.name, URL: t.url, Labels: t.resource, Health: "unknown"}
	if res := t.last.Load(); res != nil {
		st.LastScrape, st.LastDuration, st.LastError = res.at, res.dur, res.err
		if res.err == "" {
			st.Health, st.Samples = "up", res.samples
			st.LastError = res.appendErr
		} else {
			st.Health = "down"
		}
	}
	return st
}

// end emits stale markers for every series of the target, when it goes away.
func (t *target) end() {
	// The pipeline may be shutting down too: bound the hand-over.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md, ms := t.newBatch()
	if t.out != nil {
		t.out.begin(ctx)
	}
	now := time.Now()
	t.app.fail(now, ms)
	if t.out != nil {
		for _, s := range t.self {
			if s != nil {
				t.out.appendStale(s, now.UnixMilli())
			}
		}
		if err := t.out.commit(); err != nil {
			t.logger.Debug("Appendable refused end-of-target stale markers", zap.String("url", t.url), zap.Error(err))
		}
	}
	if t.nativeOnly {
		return
	}
	ts := pcommon.NewTimestampFromTime(now)
	flags := pmetric.DefaultDataPointFlags.WithNoRecordedValue(true)
	for _, name := range selfGauges {
		dp := ms.AppendEmpty()
		dp.SetName(name)
		p := dp.SetEmptyGauge().DataPoints().AppendEmpty()
		p.SetTimestamp(ts)
		p.SetFlags(flags)
	}
	if err := t.next.ConsumeMetrics(ctx, md); err != nil {
		t.logger.Debug("Pipeline refused end-of-target stale markers", zap.String("url", t.url), zap.Error(err))
	}
}

// selfGauges are the series Prometheus adds to every scrape, in the order
// appendSelf fills them.
var selfGauges = [...]string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"}

func (t *target) fillResource(r pcommon.Resource) {
	attrs := r.Attributes()
	attrs.EnsureCapacity(len(t.resource))
	for k, v := range t.resource {
		attrs.PutStr(k, v)
	}
}

// appendSelf appends Prometheus's per-target series and the failure counter.
func (t *target) appendSelf(ms pmetric.MetricSlice, start time.Time, dur time.Duration, ok bool, st parseStats) {
	ts := pcommon.NewTimestampFromTime(start)
	up := 0.0
	if ok {
		up = 1
	}
	values := [...]float64{up, dur.Seconds(), float64(st.scraped), float64(st.postRelabel), float64(st.added)}
	if !ok {
		values[2], values[3], values[4] = 0, 0, 0
	}
	if t.out != nil {
		t.appendSelfNative(start.UnixMilli(), values[:])
	}
	if t.nativeOnly {
		return
	}
	for i, name := range selfGauges {
		m := ms.AppendEmpty()
		m.SetName(name)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(values[i])
	}
	if t.out != nil && len(t.out.failures) > 0 {
		m := ms.AppendEmpty()
		m.SetName(appendFailuresName)
		m.SetDescription("Samples of this target that an appendable did not take, by appendable and reason.")
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for k, n := range t.out.failures {
			dp := s.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("appendable", t.out.names[k.app])
			dp.Attributes().PutStr("reason", k.reason)
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t.started))
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(n)
		}
	}
	if len(t.failures) == 0 {
		return
	}
	m := ms.AppendEmpty()
	m.SetName(failuresMetricName)
	m.SetDescription("Scrapes of this target that failed, by reason.")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for reason, n := range t.failures {
		dp := s.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("reason", reason)
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t.started))
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(n)
	}
}

// dialFunc opens a connection (net.Dialer.DialContext's signature).
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// newHTTPClient builds the client of a job from its tls_config.
func newHTTPClient(tc TLSConfig, dial dialFunc) (*http.Client, error) {
	tlsCfg := &tls.Config{
		ServerName:         tc.ServerName,
		InsecureSkipVerify: tc.InsecureSkipVerify, //nolint:gosec // explicit user choice
		MinVersion:         tls.VersionTLS12,
	}
	if tc.CAFile != "" {
		pem, err := os.ReadFile(tc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_config.ca_file: no certificate in %q", tc.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	if tc.CertFile != "" || tc.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config.cert_file/key_file: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		TLSClientConfig:       tlsCfg,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       5 * time.Minute,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0,
		DisableCompression:    true,
	}
	return &http.Client{Transport: tr}, nil
}
