package tracecontextprocessor

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Lines of about 200 bytes, as the node writes them.
var benchLines = []struct {
	name string
	line string
	id   bool
}{
	{"noID/istio-text", `[2022-04-01T03:23:12.736Z] "GET /get HTTP/1.1" 200 - via_upstream - "-" 0 605 4 3 "-" "curl/7.82.0-DEV" "200efb6c-82be-4760-8ab6-7b6af588d4fb" "httpbin:8000" "10.244.0.31:80" outbound|8000||httpbin - default`, false},
	{"noID/json", `{"time":"2026-11-25T19:20:00.123456789Z","level":"INFO","logger":"productpage","msg":"GET /productpage rendered with reviews and ratings","user":"jason","status":200,"duration_ms":21,"bytes":5183}`, false},
	{"noID/text", `2026-11-25T19:20:00.123Z INFO  [main] o.a.c.c.StandardService - Starting service [Tomcat] with 4 worker threads, max connections 8192, keep-alive timeout 20000 ms, request-id 7f3c2a1b`, false},
	{"ID/json-trace_id", `{"time":"2026-11-25T19:20:00.123456789Z","level":"INFO","logger":"productpage","msg":"GET /productpage","trace_id":"` + tid + `","span_id":"` + sid + `","status":200,"duration_ms":21}`, true},
	{"ID/logfmt", `level=info ts=2026-11-25T19:20:00.123456789Z msg="GET /ratings/0" trace_id=` + tid + ` span_id=` + sid + ` status=200 duration_ms=3 user=jason`, true},
	{"ID/traceparent", `{"level":"info","ts":"2026-11-25T19:20:00.123456789Z","msg":"handled event","traceparent":"00-` + tid + `-` + sid + `-01","status":200,"latency_ms":4,"x":1}`, true},
	{"ID/istio-text-b3", `[2022-04-01T03:23:12.736Z] "GET /get HTTP/1.1" 200 - via_upstream - "-" 0 605 4 3 "-" "curl/7.82.0" "200efb6c-82be-4760-8ab6-7b6af588d4fb" "httpbin:8000" "` + tid + `-` + sid + `-1"`, true},
}

// BenchmarkExtract is the bare extractor on one line.
func BenchmarkExtract(b *testing.B) {
	e := newExtractor(FieldsConfig{})
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			var id ids
			if e.extractString(bl.line, &id) != bl.id {
				b.Fatalf("unexpected result for %q", bl.line)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bl.line)))
			for b.Loop() {
				e.extractString(bl.line, &id)
			}
		})
	}
}

// BenchmarkConsumeLogs is the processor's ConsumeLogs path on a batch of
// 1000 records with string bodies, into a no-op consumer. For lines with an
// ID, the batch's trace IDs are cleared before each call (included in the
// time: one store per record) so that every record is processed again;
// with severity on, the severity is cleared too.
func BenchmarkConsumeLogs(b *testing.B) {
	b.Run("severity=off", func(b *testing.B) { benchConsumeLogs(b, false) })
	b.Run("severity=on", func(b *testing.B) { benchConsumeLogs(b, true) })
}

func benchConsumeLogs(b *testing.B, severity bool) {
	const batch = 1000
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			p := newTestProcessor(b, &Config{Body: true, Severity: severity}, consumertest.NewNop())
			ld := plog.NewLogs()
			lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
			for range batch {
				lrs.AppendEmpty().Body().SetStr(bl.line)
			}
			if err := p.ConsumeLogs(b.Context(), ld); err != nil {
				b.Fatal(err)
			}
			if lrs.At(0).TraceID().IsEmpty() == bl.id {
				b.Fatalf("unexpected result for %q", bl.line)
			}
			b.ReportAllocs()
			b.SetBytes(int64(batch * len(bl.line)))
			for b.Loop() {
				if bl.id {
					for i := range batch {
						lrs.At(i).SetTraceID(pcommon.TraceID{})
					}
				}
				if severity {
					for i := range batch {
						lrs.At(i).SetSeverityNumber(plog.SeverityNumberUnspecified)
						lrs.At(i).SetSeverityText("")
					}
				}
				if err := p.ConsumeLogs(b.Context(), ld); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/line")
		})
	}
}

// BenchmarkExtractMap is a parsed-JSON map body with and without IDs.
func BenchmarkExtractMap(b *testing.B) {
	e := newExtractor(FieldsConfig{})
	for _, tc := range []struct {
		name string
		id   bool
	}{{"noID", false}, {"ID", true}} {
		b.Run(tc.name, func(b *testing.B) {
			v := pcommon.NewValueMap()
			m := v.Map()
			m.PutStr("time", "2026-11-25T19:20:00.123456789Z")
			m.PutStr("level", "INFO")
			m.PutStr("logger", "productpage")
			m.PutStr("msg", "GET /productpage")
			if tc.id {
				m.PutStr("trace_id", tid)
				m.PutStr("span_id", sid)
			}
			m.PutInt("status", 200)
			var id ids
			if e.extractValue(v, &id) != tc.id {
				b.Fatal("unexpected result")
			}
			b.ReportAllocs()
			for b.Loop() {
				e.extractValue(v, &id)
			}
		})
	}
}

// BenchmarkExtractLarge is a 40 KiB debug line (the size internal/simnode
// writes now and then), with no ID and with a trace_id at its start.
func BenchmarkExtractLarge(b *testing.B) {
	e := newExtractor(FieldsConfig{})
	filler := strings.Repeat("lorem ipsum dolor sit amet 2026-11-25 ", 40*1024/38)
	for _, tc := range []struct {
		name, line string
		id         bool
	}{
		{"noID", `{"level":"DEBUG","logger":"productpage","msg":"response body","body":"` + filler + `"}`, false},
		{"ID", `{"level":"DEBUG","logger":"productpage","msg":"response body","trace_id":"` + tid + `","body":"` + filler + `"}`, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var id ids
			if e.extractString(tc.line, &id) != tc.id {
				b.Fatal("unexpected result")
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.line)))
			for b.Loop() {
				e.extractString(tc.line, &id)
			}
		})
	}
}

// BenchmarkSeverity is findSeverity on the benchmark lines (JSON and
// logfmt with a level, Istio and plain text without).
// Run: go test -run XXX -bench Severity -benchmem ./processors/tracecontextprocessor/
func BenchmarkSeverity(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bl.line)))
			for b.Loop() {
				findSeverity(bl.line)
			}
		})
	}
}
