package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// tracker records which of n numbered items arrived, so that a run can check
// that every item sent arrived exactly once.
type tracker struct {
	mu       sync.Mutex
	seen     []uint64 // bit set of item numbers
	n        int64
	received atomic.Int64 // items with a valid number, first time seen
	dups     atomic.Int64 // valid number seen before
	bad      atomic.Int64 // item without a number, or out of range
}

func newTracker(n int64) *tracker { return &tracker{seen: make([]uint64, (n+63)/64), n: n} }

func (t *tracker) mark(i int64, ok bool) {
	if !ok || i < 0 || i >= t.n {
		t.bad.Add(1)
		return
	}
	t.mu.Lock()
	w, bit := i/64, uint64(1)<<(i%64)
	dup := t.seen[w]&bit != 0
	t.seen[w] |= bit
	t.mu.Unlock()
	if dup {
		t.dups.Add(1)
	} else {
		t.received.Add(1)
	}
}

// complete reports whether items 0..sent-1 all arrived, once, and nothing
// else did.
func (t *tracker) complete(sent int64) bool {
	return t.received.Load() == sent && t.dups.Load() == 0 && t.bad.Load() == 0
}

// logSeq extracts the item number from a log body "seq=<digits> ...".
func logSeq(body string) (int64, bool) {
	rest, ok := strings.CutPrefix(body, "seq=")
	if !ok {
		return 0, false
	}
	var n int64
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		n = n*10 + int64(rest[digits]-'0')
		digits++
	}
	return n, digits > 0
}

// spanSeq is the item number a span ID carries: big-endian uint64 minus one.
func spanSeq(id [8]byte) (int64, bool) {
	v := binary.BigEndian.Uint64(id[:])
	return int64(v) - 1, v != 0 && v <= math.MaxInt64
}

// otlpSink accepts OTLP logs and traces over gRPC and HTTP (protobuf) and
// marks every record and span in its trackers.
type otlpSink struct {
	plogotlp.UnimplementedGRPCServer
	GRPCAddr, HTTPAddr string
	logs, spans        *tracker
	requests           atomic.Int64
	points             atomic.Int64 // metric samples (metricSamples), payload series
	synthPoints        atomic.Int64 // metric samples of up and scrape_*
	grpcSrv            *grpc.Server
	httpSrv            *http.Server
	wg                 sync.WaitGroup
}

type metricService struct {
	pmetricotlp.UnimplementedGRPCServer
	s *otlpSink
}

// Export counts the samples a Prometheus scrape of the data would hold:
// one per gauge or sum point, buckets + sum + count per histogram point,
// quantiles + sum + count per summary point; points flagged "no recorded
// value" (staleness) and the series a scraper adds (up, scrape_*) apart.
func (m *metricService) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	m.s.requests.Add(1)
	var n, synth int64
	rms := req.Metrics().ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				c := metricSamples(ms.At(k))
				if synthetic(ms.At(k).Name()) {
					synth += c
				} else {
					n += c
				}
			}
		}
	}
	m.s.points.Add(n)
	m.s.synthPoints.Add(synth)
	return pmetricotlp.NewExportResponse(), nil
}

func metricSamples(m pmetric.Metric) int64 {
	var n int64
	switch m.Type() {
	case pmetric.MetricTypeGauge, pmetric.MetricTypeSum:
		var dps pmetric.NumberDataPointSlice
		if m.Type() == pmetric.MetricTypeSum {
			dps = m.Sum().DataPoints()
		} else {
			dps = m.Gauge().DataPoints()
		}
		for i := range dps.Len() {
			if !dps.At(i).Flags().NoRecordedValue() {
				n++
			}
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := range dps.Len() {
			if !dps.At(i).Flags().NoRecordedValue() {
				n += int64(dps.At(i).BucketCounts().Len()) + 2
			}
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := range dps.Len() {
			if !dps.At(i).Flags().NoRecordedValue() {
				n += int64(dps.At(i).QuantileValues().Len()) + 2
			}
		}
	}
	return n
}

type traceService struct {
	ptraceotlp.UnimplementedGRPCServer
	s *otlpSink
}

func (t *traceService) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	t.s.countTraces(req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

func (s *otlpSink) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.countLogs(req.Logs())
	return plogotlp.NewExportResponse(), nil
}

func (s *otlpSink) countLogs(ld plog.Logs) {
	s.requests.Add(1)
	rls := ld.ResourceLogs()
	for i := range rls.Len() {
		sls := rls.At(i).ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				s.logs.mark(logSeq(lrs.At(k).Body().AsString()))
			}
		}
	}
}

func (s *otlpSink) countTraces(td ptrace.Traces) {
	s.requests.Add(1)
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			sps := sss.At(j).Spans()
			for k := range sps.Len() {
				s.spans.mark(spanSeq(sps.At(k).SpanID()))
			}
		}
	}
}

// startOTLPSink listens on two free loopback ports; logs and spans are
// tracked up to nLogs and nSpans items.
func startOTLPSink(nLogs, nSpans int64) (*otlpSink, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	s := &otlpSink{GRPCAddr: addrs[0], HTTPAddr: addrs[1], logs: newTracker(nLogs), spans: newTracker(nSpans)}
	gl, err := net.Listen("tcp", s.GRPCAddr)
	if err != nil {
		return nil, err
	}
	hl, err := net.Listen("tcp", s.HTTPAddr)
	if err != nil {
		gl.Close()
		return nil, err
	}
	s.grpcSrv = grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	plogotlp.RegisterGRPCServer(s.grpcSrv, s)
	ptraceotlp.RegisterGRPCServer(s.grpcSrv, &traceService{s: s})
	pmetricotlp.RegisterGRPCServer(s.grpcSrv, &metricService{s: s})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.countLogs(req.Logs())
		writeProto(w, plogotlp.NewExportResponse().MarshalProto)
	})
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.countTraces(req.Traces())
		writeProto(w, ptraceotlp.NewExportResponse().MarshalProto)
	})
	s.httpSrv = &http.Server{Handler: mux}
	s.wg.Go(func() { _ = s.grpcSrv.Serve(gl) })
	s.wg.Go(func() { _ = s.httpSrv.Serve(hl) })
	return s, nil
}

func (s *otlpSink) close() {
	s.grpcSrv.Stop()
	_ = s.httpSrv.Close()
	s.wg.Wait()
}

// readBody reads a request body, gunzipping it when the client compressed it.
func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		rd = zr
	}
	return io.ReadAll(rd)
}

func writeProto(w http.ResponseWriter, marshal func() ([]byte, error)) {
	b, err := marshal()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

// staleNaN is Prometheus's staleness marker (model/value.StaleNaN).
const staleNaN uint64 = 0x7ff0000000000002

// rwSink accepts Prometheus remote write 1.0 (snappy-compressed protobuf)
// and counts samples per series, leaving out the series a scraper adds by
// itself (up, scrape_*, target_info) and stale markers.
type rwSink struct {
	Addr     string
	srv      *http.Server
	wg       sync.WaitGroup
	mu       sync.Mutex
	series   map[string]int // labels → samples
	samples  atomic.Int64   // samples of payload series
	synth    atomic.Int64   // samples of series the scraper made up
	stale    atomic.Int64   // stale markers
	requests atomic.Int64
	errors   atomic.Int64
}

// synthetic says whether a series is one a scraper adds by itself: up,
// scrape_*, target_info, and weft's per-target failure counters
// (pod_scrape_failures_total{reason}, which a refused scrape starts).
func synthetic(name string) bool {
	return name == "up" || name == "target_info" || strings.HasPrefix(name, "scrape_") || strings.HasPrefix(name, "pod_scrape_")
}

func startRWSink() (*rwSink, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addrs[0])
	if err != nil {
		return nil, err
	}
	s := &rwSink{Addr: addrs[0], series: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/write", s.handle)
	s.srv = &http.Server{Handler: mux}
	s.wg.Go(func() { _ = s.srv.Serve(l) })
	return s, nil
}

func (s *rwSink) URL() string { return "http://" + s.Addr + "/api/v1/write" }

func (s *rwSink) handle(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	compressed, err := io.ReadAll(r.Body)
	if err != nil {
		s.errors.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		s.errors.Add(1)
		http.Error(w, "snappy: "+err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		s.errors.Add(1)
		http.Error(w, "protobuf: "+err.Error(), http.StatusBadRequest)
		return
	}
	var key bytes.Buffer
	s.mu.Lock()
	for _, ts := range req.Timeseries {
		name := ""
		key.Reset()
		for _, l := range ts.Labels {
			if l.Name == "__name__" {
				name = l.Value
			}
			key.WriteString(l.Name)
			key.WriteByte(0)
			key.WriteString(l.Value)
			key.WriteByte(0)
		}
		n := 0
		for _, smp := range ts.Samples {
			if math.Float64bits(smp.Value) == staleNaN {
				s.stale.Add(1)
				continue
			}
			n++
		}
		if synthetic(name) {
			s.synth.Add(int64(n))
			continue
		}
		if n > 0 {
			s.series[key.String()] += n
			s.samples.Add(int64(n))
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// check reports whether exactly perSeries samples of exactly nSeries
// series arrived, and describes what arrived.
func (s *rwSink) check(nSeries, perSeries int) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wrong, example := 0, ""
	for k, n := range s.series {
		if n != perSeries {
			wrong++
			if example == "" || k < example {
				example = fmt.Sprintf("%s with %d", strings.ReplaceAll(strings.TrimSuffix(k, "\x00"), "\x00", " "), n)
			}
		}
	}
	ok := len(s.series) == nSeries && wrong == 0 && s.errors.Load() == 0
	detail := fmt.Sprintf("%d series (want %d), %d with a sample count other than %d, %d samples, %d stale markers, %d bad requests",
		len(s.series), nSeries, wrong, perSeries, s.samples.Load(), s.stale.Load(), s.errors.Load())
	if example != "" {
		detail += " (e.g. " + example + ")"
	}
	return ok, detail
}

func (s *rwSink) close() {
	_ = s.srv.Close()
	s.wg.Wait()
}
