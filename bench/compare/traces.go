package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	traceBatch    = 100 // spans per OTLP request
	spansPerTrace = 10
)

// Same config on both sides: OTLP/gRPC in, memory_limiter, OTLP/gRPC out.
const tracesConfig = `extensions:
  health_check:
    endpoint: {{health}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{otlp}}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
exporters:
  otlp_grpc:
    endpoint: {{sink}}
    compression: none
    tls:
      insecure: true
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [otlp_grpc]
`

// traceRequest builds request k: one resource and traceBatch spans with
// ten attributes each, whole traces of spansPerTrace spans. Span IDs are
// the span's number plus one, which the sink checks off.
func traceRequest(k int, prefix uint64) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	svc := [...]string{"checkout", "cart", "payment", "shipping", "frontend"}[k%5]
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", svc)
	ra.PutStr("k8s.namespace.name", "shop")
	ra.PutStr("k8s.pod.name", svc+"-7d9f8b6c5-x2k4p")
	ra.PutStr("k8s.node.name", "node-1")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	spans := ss.Spans()
	spans.EnsureCapacity(traceBatch)
	now := time.Now()
	for i := range traceBatch {
		n := k*traceBatch + i
		trace := n / spansPerTrace
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], prefix)
		binary.BigEndian.PutUint64(tid[8:], uint64(trace)+1)
		var sid, root pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], uint64(n)+1)
		binary.BigEndian.PutUint64(root[:], uint64(trace*spansPerTrace)+1)
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		if n%spansPerTrace == 0 {
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetName("GET /api/v1/items/{id}")
		} else {
			sp.SetParentSpanID(root)
			sp.SetKind(ptrace.SpanKindClient)
			sp.SetName("SELECT items")
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(300+i) * time.Microsecond)))
		a := sp.Attributes()
		a.EnsureCapacity(10)
		a.PutStr("http.request.method", "GET")
		a.PutStr("http.route", "/api/v1/items/{id}")
		a.PutStr("url.path", "/api/v1/items/"+strconv.Itoa(trace%1000))
		a.PutInt("http.response.status_code", 200)
		a.PutStr("server.address", svc+".shop.svc.cluster.local")
		a.PutInt("server.port", 8080)
		a.PutStr("network.protocol.version", "1.1")
		a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0")
		a.PutStr("client.address", "10.42.0."+strconv.Itoa(1+trace%250))
		a.PutStr("db.system.name", "postgresql")
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

// sendTraces sends spans spans at rate spans/s in requests of traceBatch
// through two concurrent senders; a refused request is an error.
func sendTraces(ctx context.Context, addr string, spans, rate int) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	prefix := uint64(time.Now().UnixNano()) | 1
	next := make(chan int, 2)
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for k := range next {
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := client.Export(rctx, traceRequest(k, prefix))
				cancel()
				if err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	start := time.Now()
	for k := range spans / traceBatch {
		due := start.Add(time.Duration(float64(k*traceBatch) / float64(rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d) // pacing the sender
		}
		next <- k
	}
	close(next)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d requests refused, first: %w", n, firstErr)
	}
	return nil
}

func runTraces(ctx context.Context, h *harness, side string, s *sample) error {
	name := fmt.Sprintf("%s-%02d-%s", s.Workload, s.Order, side)
	n := h.o.TraceSpans
	sink, err := startOTLPSink(1, int64(n))
	if err != nil {
		return err
	}
	defer sink.close()
	addrs, err := freeAddrs(1)
	if err != nil {
		return err
	}
	c, smp, err := h.launch(ctx, name, side, true, func(health string) string {
		return replaceAll(tracesConfig, "{{health}}", health, "{{otlp}}", addrs[0], "{{sink}}", sink.GRPCAddr)
	}, s)
	if err != nil {
		return err
	}
	defer c.stop()
	start := time.Now()
	if err := sendTraces(ctx, addrs[0], n, h.o.TraceRate); err != nil {
		return err
	}
	sendSec := time.Since(start).Seconds()
	err = c.waitFor(ctx, h.o.DrainTimeout, func() bool { return sink.spans.received.Load() >= int64(n) },
		func() string { return fmt.Sprintf("%d of %d spans received", sink.spans.received.Load(), n) })
	h.finish(c, smp, s)
	s.Sent, s.Received = int64(n), sink.spans.received.Load()
	s.Duplicates, s.Invalid = sink.spans.dups.Load(), sink.spans.bad.Load()
	s.Verified = err == nil && sink.spans.complete(int64(n))
	s.Items = float64(n)
	s.Detail = fmt.Sprintf("sent in %.1f s (%.0f spans/s), %d requests at the sink", sendSec, float64(n)/sendSec, sink.requests.Load())
	if err != nil {
		s.Detail += "; " + err.Error()
	}
	return nil
}
