package simnode

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// ExportFunc delivers a batch of spans, e.g. to an OTLP endpoint.
type ExportFunc func(context.Context, ptrace.Traces) error

// OTLPExporter returns an ExportFunc that sends spans over OTLP/gRPC to
// endpoint (host:port, plaintext), and a function that closes the connection.
func OTLPExporter(endpoint string) (ExportFunc, func() error, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial OTLP endpoint %s: %w", endpoint, err)
	}
	client := ptraceotlp.NewGRPCClient(conn)
	export := func(ctx context.Context, td ptrace.Traces) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		return err
	}
	return export, conn.Close, nil
}

// spanBatch collects the spans of one flush interval, one ResourceSpans per
// pod.
type spanBatch struct {
	pods   []pod
	td     ptrace.Traces
	byPod  map[int]ptrace.SpanSlice
	nSpans int
}

func newSpanBatch(pods []pod) *spanBatch {
	b := &spanBatch{pods: pods}
	b.reset()
	return b
}

func (b *spanBatch) reset() {
	b.td = ptrace.NewTraces()
	b.byPod = make(map[int]ptrace.SpanSlice, len(b.pods))
	b.nSpans = 0
}

// take returns the collected spans and starts a new batch.
func (b *spanBatch) take() (ptrace.Traces, int) {
	td, n := b.td, b.nSpans
	b.reset()
	return td, n
}

func (b *spanBatch) spans(podIdx int) ptrace.SpanSlice {
	if ss, ok := b.byPod[podIdx]; ok {
		return ss
	}
	p := &b.pods[podIdx]
	rs := b.td.ResourceSpans().AppendEmpty()
	attrs := rs.Resource().Attributes()
	attrs.PutStr("service.name", p.app)
	attrs.PutStr("service.version", p.version)
	attrs.PutStr("k8s.namespace.name", p.namespace)
	attrs.PutStr("k8s.pod.name", p.name)
	attrs.PutStr("k8s.pod.uid", p.uid())
	sc := rs.ScopeSpans().AppendEmpty()
	sc.Scope().SetName("weft/simnode")
	ss := sc.Spans()
	b.byPod[podIdx] = ss
	return ss
}

// spanSpec describes one span of a simulated request.
type spanSpec struct {
	pod      int
	name     string
	kind     ptrace.SpanKind
	traceID  [16]byte
	spanID   [8]byte
	parentID [8]byte // zero for a root span
	start    time.Time
	end      time.Time
	method   string
	path     string
	status   int    // http.response.status_code; 0: no response (not set)
	errMsg   string // an error without a response (a reset): status error with this message
	peer     string // server.address for client spans
}

func (b *spanBatch) add(s spanSpec) {
	sp := b.spans(s.pod).AppendEmpty()
	sp.SetTraceID(pcommon.TraceID(s.traceID))
	sp.SetSpanID(pcommon.SpanID(s.spanID))
	if s.parentID != ([8]byte{}) {
		sp.SetParentSpanID(pcommon.SpanID(s.parentID))
	}
	sp.SetName(s.name)
	sp.SetKind(s.kind)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.end))
	attrs := sp.Attributes()
	attrs.PutStr("http.request.method", s.method)
	attrs.PutStr("url.path", s.path)
	if s.status != 0 {
		attrs.PutInt("http.response.status_code", int64(s.status))
	}
	if s.peer != "" {
		attrs.PutStr("server.address", s.peer)
	}
	if s.errMsg != "" {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage(s.errMsg)
	}
	if s.status >= 500 {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage(fmt.Sprintf("HTTP %d", s.status))
		if s.kind == ptrace.SpanKindServer {
			ev := sp.Events().AppendEmpty()
			ev.SetName("exception")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(s.end))
			ev.Attributes().PutStr("exception.type", "java.lang.IllegalStateException")
			ev.Attributes().PutStr("exception.message", "upstream connect error or disconnect/reset before headers")
		}
	}
	b.nSpans++
}
