package main

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/weftobs/weft/internal/loopback"
)

// sink is the OTLP/HTTP endpoint both sides export to. It records, per
// trace ID, which hops' spans arrived (the hop is the span ID's last
// byte, see request.spanID), so counts are exact and a span that arrives
// twice is seen as a duplicate, not as a second hop.
type sink struct {
	srv  *http.Server
	addr string
	done chan struct{}

	mu         sync.Mutex
	hops       map[pcommon.TraceID]uint8 // bit h: hop h's span arrived
	spans      int                       // spans received, duplicates included
	duplicates int                       // spans of a (trace, hop) already received
	foreign    int                       // spans whose span ID is not one of the workload's
	last       time.Time                 // arrival of the last request
}

func startSink() (*sink, error) {
	addrs, err := loopback.FreeAddrs(1)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addrs[0])
	if err != nil {
		return nil, err
	}
	s := &sink{addr: addrs[0], hops: map[pcommon.TraceID]uint8{}, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.traces)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(l)
	}()
	return s, nil
}

// endpoint is the base URL for an otlp_http exporter.
func (s *sink) endpoint() string { return "http://" + s.addr }

func (s *sink) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

func (s *sink) traces(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		http.Error(w, "OTLP protobuf: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.record(req)
	out, _ := ptraceotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (s *sink) record(req ptraceotlp.ExportRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = time.Now()
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				s.spans++
				id, sid := sp.TraceID(), sp.SpanID()
				h := int(sid[7]) - 1
				if h < 0 || h >= hops || [7]byte(sid[:7]) != [7]byte(id[:7]) {
					s.foreign++
					continue
				}
				bit := uint8(1) << h
				if s.hops[id]&bit != 0 {
					s.duplicates++
					continue
				}
				s.hops[id] |= bit
			}
		}
	}
}

// snapshot returns the spans received so far and the time of the last
// request.
func (s *sink) snapshot() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spans, s.last
}

// hopsOf returns the number of distinct hops received for a trace.
func (s *sink) hopsOf(id pcommon.TraceID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for b := s.hops[id]; b != 0; b &= b - 1 {
		n++
	}
	return n
}

// waitQuiet returns when no span has arrived for quiet, or fails after
// timeout.
func (s *sink) waitQuiet(ctx context.Context, quiet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, last := s.snapshot()
		if time.Since(last) >= quiet {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the sink still received spans at the drain timeout")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
