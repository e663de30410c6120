package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOptionsValidate(t *testing.T) {
	ok := options{Spans: 1000, Rate: 100, BatchSize: 100, SpansPerTrace: 10, Rounds: 1, Senders: 1, Sample: 5}
	require.NoError(t, ok.validate())
	tests := []struct {
		name string
		edit func(*options)
	}{
		{"zero spans", func(o *options) { o.Spans = 0 }},
		{"negative rate", func(o *options) { o.Rate = -1 }},
		{"trace split across requests", func(o *options) { o.SpansPerTrace = 30 }},
		{"partial last batch", func(o *options) { o.Spans = 1050 }},
		{"more traces than Jaeger keeps", func(o *options) { o.Spans = 1_000_000 }},
		{"no senders", func(o *options) { o.Senders = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			assert.Error(t, o.validate())
		})
	}
}

// Every request holds BatchSize spans forming whole traces with distinct
// IDs, ten attributes each, and trace IDs never repeat across requests.
func TestWorkloadBatches(t *testing.T) {
	o := options{Spans: 400, BatchSize: 100, SpansPerTrace: 10}
	w := newWorkload(o)
	traceSpans := map[[16]byte]int{}
	spanIDs := map[[8]byte]bool{}
	for k := range o.Spans / o.BatchSize {
		td := w.batch(k).Traces()
		require.Equal(t, 1, td.ResourceSpans().Len())
		require.Equal(t, o.BatchSize, td.SpanCount())
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := range spans.Len() {
			sp := spans.At(i)
			traceSpans[sp.TraceID()]++
			assert.False(t, spanIDs[sp.SpanID()], "span ID %s repeated", sp.SpanID())
			spanIDs[sp.SpanID()] = true
			assert.Equal(t, 10, sp.Attributes().Len())
			if sp.Kind() == ptrace.SpanKindClient {
				assert.False(t, sp.ParentSpanID().IsEmpty())
			}
		}
	}
	assert.Len(t, traceSpans, w.traces())
	for id, n := range traceSpans {
		assert.Equal(t, o.SpansPerTrace, n, "trace %x", id)
	}
	last := w.traceID(w.traces() - 1)
	assert.Equal(t, o.SpansPerTrace, traceSpans[last])
}

func TestProcReaders(t *testing.T) {
	// Burn some CPU so that utime is at least one tick.
	x := 0
	for i := range 50_000_000 {
		x ^= i * i
	}
	_ = x
	cpu, err := cpuSeconds(os.Getpid(), clockTicks())
	require.NoError(t, err)
	assert.Greater(t, cpu, 0.0)
	// VmRSS first: the peak read after it can only be as large or larger.
	rss, err := procStatusKiB(os.Getpid(), "VmRSS:")
	require.NoError(t, err)
	hwm, err := procStatusKiB(os.Getpid(), "VmHWM:")
	require.NoError(t, err)
	assert.Greater(t, hwm, 1024)
	assert.LessOrEqual(t, rss, hwm)
	_, err = procStatusKiB(os.Getpid(), "NoSuchField:")
	assert.Error(t, err)

	stop := sampleAnon(os.Getpid(), time.Millisecond)
	assert.Eventually(t, func() bool { return stop() > 0 }, time.Second, time.Millisecond)
	assert.Equal(t, stop(), stop(), "a second call returns the same peak")
	_, err = cpuSeconds(-1, 100)
	assert.Error(t, err)
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		in   []float64
		want stats
	}{
		{nil, stats{}},
		{[]float64{3}, stats{3, 3, 3}},
		{[]float64{5, 1, 3}, stats{3, 1, 5}},
		{[]float64{4, 1, 2, 8}, stats{3, 1, 8}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, summarize(tt.in), "%v", tt.in)
	}
}

func TestMarkdownRatio(t *testing.T) {
	rep := &report{Options: options{Spans: 100, Rate: 0, BatchSize: 100, SpansPerTrace: 10, Rounds: 1, Senders: 1}, Samples: []sample{
		{Side: sideWeft, CPUMicrosPerSpn: 4, PeakRSSMiB: 60, PeakAnonMiB: 30, ReadyRSSMiB: 30, ReadyFileMiB: 20},
		{Side: sidePeer, CPUMicrosPerSpn: 8, PeakRSSMiB: 40, PeakAnonMiB: 30, ReadyRSSMiB: 20, ReadyFileMiB: 10},
	}}
	md := markdown(rep)
	assert.Contains(t, md, "| weft | 1 | 4.00 (4.00–4.00) | 60.0 (60.0–60.0) | 30.0 | 30.0 / 20.0 |")
	assert.Contains(t, md, "| ratio weft / peer | | 0.50× | 1.50× | 1.00× | 1.50× / 2.00× | |")
}

func TestPeerName(t *testing.T) {
	assert.Equal(t, "otelcol, the path's components only (bench/peer)", peerName(""))
	assert.Equal(t, "otelcol, the path's components only (bench/peer)", peerName("grpcnotrace"))
	assert.Equal(t, "otelcol core (bench/peer -tags otelcol,grpcnotrace)", peerName("otelcol,grpcnotrace"))
	assert.Equal(t, "otelcol core (bench/peer -tags grpcnotrace, otelcol)", peerName("grpcnotrace, otelcol"))
}

// The otelcol peer's `components` output (the collector's YAML, trimmed to
// the fields read) is compared kind by kind, in any order, and every
// difference is named.
func TestCompareComponents(t *testing.T) {
	want := map[string][]string{
		"receivers": {"otlp", "zipkin"},
		"exporters": {"otlp_grpc"},
	}
	same := []byte(`buildinfo:
  command: peer
receivers:
  - name: zipkin
    module: m v1
  - name: otlp
exporters:
  - name: otlp_grpc
`)
	require.NoError(t, compareComponents(same, want))

	differs := []byte(`receivers:
  - name: otlp
  - name: kafka
exporters:
  - name: otlp_grpc
`)
	err := compareComponents(differs, want)
	require.Error(t, err)
	assert.ErrorContains(t, err, "receivers: zipkin missing")
	assert.ErrorContains(t, err, "receivers: kafka not in the documented set")
	assert.NotContains(t, err.Error(), "exporters")

	assert.ErrorContains(t, compareComponents([]byte("receivers: [oops"), want), "reading the peer's components")
}

func TestSelectsOtelcol(t *testing.T) {
	assert.True(t, selectsOtelcol("otelcol,grpcnotrace"))
	assert.True(t, selectsOtelcol("grpcnotrace, otelcol"))
	assert.False(t, selectsOtelcol(""))
	assert.False(t, selectsOtelcol("otelcolx"))
}
