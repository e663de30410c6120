package evidencesamplingprocessor

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/internal/weftest"
)

var pinsType = weftpinsextension.NewFactory().Type()

// fakeClock is a settable clock for the processor's deadlines.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newPins creates and starts a weft_pins extension (gossip off unless
// cfg says otherwise) and stops it at cleanup.
func newPins(t testing.TB, name string, mutate func(*weftpinsextension.Config)) (component.ID, *weftpinsextension.Pins) {
	t.Helper()
	f := weftpinsextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*weftpinsextension.Config)
	cfg.Gossip.Enabled = false
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	set := extensiontest.NewNopSettings(pinsType)
	set.ID = component.NewIDWithName(pinsType, name)
	ext, err := f.Create(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), weftest.Host{}))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	p, err := weftpinsextension.FromHost(weftest.Host{set.ID: ext}, set.ID)
	require.NoError(t, err)
	return set.ID, p
}

// gossipPins is a weft_pins configuration gossiping on bind with a short
// rhythm, joining join.
func gossipPins(name, bind, keyFile string, join ...string) func(*weftpinsextension.Config) {
	return func(cfg *weftpinsextension.Config) {
		g := &cfg.Gossip
		g.Enabled = true
		g.Bind = bind
		g.NodeName = name
		g.SecretKeyFile = keyFile
		g.Join = join
		g.GossipInterval = 20 * time.Millisecond
		g.PushPullInterval = 500 * time.Millisecond
		g.RejoinInterval = 200 * time.Millisecond
		g.LeaveTimeout = time.Second
	}
}

// writeKey writes a fresh base64 AES-256 gossip key and returns its path.
func writeKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	p := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600))
	return p
}

// testConfig is the default configuration with mutate applied.
func testConfig(mutate func(*Config)) *Config {
	cfg := createDefaultConfig().(*Config)
	if mutate != nil {
		mutate(cfg)
	}
	return cfg
}

// tracesRig is a traces processor behind its processorhelper front, on a
// fake clock, with a sink.
type tracesRig struct {
	p     *tracesProcessor
	front processor.Traces
	sink  *consumertest.TracesSink
	clock *fakeClock
}

// newTracesRig starts a traces processor with cfg on host; it is shut
// down at cleanup (safe when the test shut it down already).
func newTracesRig(t *testing.T, cfg *Config, host weftest.Host) *tracesRig {
	t.Helper()
	require.NoError(t, cfg.Validate())
	r := &tracesRig{sink: new(consumertest.TracesSink), clock: newFakeClock()}
	set := processortest.NewNopSettings(componentType)
	p, err := newTracesProcessor(set, cfg, r.sink)
	require.NoError(t, err)
	p.now = r.clock.Now
	r.p = p
	r.front, err = wrapTraces(context.Background(), set, cfg, r.sink, p)
	require.NoError(t, err)
	require.NoError(t, r.front.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, r.front.Shutdown(context.Background())) })
	return r
}

// logsRig is the same for logs.
type logsRig struct {
	p     *logsProcessor
	front processor.Logs
	sink  *consumertest.LogsSink
	clock *fakeClock
}

func newLogsRig(t *testing.T, cfg *Config, host weftest.Host) *logsRig {
	t.Helper()
	require.NoError(t, cfg.Validate())
	r := &logsRig{sink: new(consumertest.LogsSink), clock: newFakeClock()}
	set := processortest.NewNopSettings(componentType)
	p, err := newLogsProcessor(set, cfg, r.sink)
	require.NoError(t, err)
	p.now = r.clock.Now
	r.p = p
	r.front, err = wrapLogs(context.Background(), set, cfg, r.sink, p)
	require.NoError(t, err)
	require.NoError(t, r.front.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, r.front.Shutdown(context.Background())) })
	return r
}

// idWithRandomness is a trace ID whose last 56 bits are r and whose
// first bytes are tag.
func idWithRandomness(tag uint64, r uint64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], tag)
	binary.BigEndian.PutUint64(id[8:], r&(1<<56-1))
	return id
}

// unsampledID is a trace ID no sampling below 100 % keeps; sampledID one
// every sampling above 0 % keeps.
func unsampledID(n uint64) pcommon.TraceID { return idWithRandomness(n, n) }
func sampledID(n uint64) pcommon.TraceID   { return idWithRandomness(n, 1<<56-1-n) }

// span describes one test span.
type span struct {
	trace  pcommon.TraceID
	n      uint64 // span ID
	status ptrace.StatusCode
	http   int64 // http.response.status_code, 0: none
}

// traces builds one resource of a pod with the spans.
func traces(spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	attrs := rs.Resource().Attributes()
	attrs.PutStr("service.name", "reviews")
	attrs.PutStr("k8s.pod.name", "reviews-v2-7d9f8c6b5-x2x4q")
	attrs.PutStr("k8s.namespace.name", "bookinfo")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("envoy")
	for _, sp := range spans {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(sp.trace)
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], sp.n+1)
		s.SetSpanID(sid)
		s.SetName("GET /reviews")
		s.SetKind(ptrace.SpanKindServer)
		s.Status().SetCode(sp.status)
		if sp.http != 0 {
			s.Attributes().PutInt(attrHTTPResponseStatus, sp.http)
		}
	}
	return td
}

// logRecord describes one test log record.
type logRecord struct {
	trace    pcommon.TraceID
	severity plog.SeverityNumber
	body     string
}

func logs(records ...logRecord) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.pod.name", "reviews-v2-7d9f8c6b5-x2x4q")
	sl := rl.ScopeLogs().AppendEmpty()
	for _, r := range records {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTraceID(r.trace)
		lr.SetSeverityNumber(r.severity)
		lr.Body().SetStr(r.body)
	}
	return ld
}

// keptSpans counts the spans the sink received, by trace ID.
func keptSpans(sink *consumertest.TracesSink) map[pcommon.TraceID]int {
	out := map[pcommon.TraceID]int{}
	for _, td := range sink.AllTraces() {
		rss := td.ResourceSpans()
		for i := range rss.Len() {
			sss := rss.At(i).ScopeSpans()
			for j := range sss.Len() {
				spans := sss.At(j).Spans()
				for k := range spans.Len() {
					out[spans.At(k).TraceID()]++
				}
			}
		}
	}
	return out
}

// keptLogs counts the log records the sink received, by trace ID.
func keptLogs(sink *consumertest.LogsSink) map[pcommon.TraceID]int {
	out := map[pcommon.TraceID]int{}
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := range rls.Len() {
			sls := rls.At(i).ScopeLogs()
			for j := range sls.Len() {
				lrs := sls.At(j).LogRecords()
				for k := range lrs.Len() {
					out[lrs.At(k).TraceID()]++
				}
			}
		}
	}
	return out
}

func processortestSettings() processor.Settings { return processortest.NewNopSettings(componentType) }

// randomIDs returns n trace IDs from a seeded generator (reproducible).
func randomIDs(n int, seed uint64) []pcommon.TraceID {
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ids := make([]pcommon.TraceID, n)
	for i := range ids {
		binary.BigEndian.PutUint64(ids[i][:8], rng.Uint64())
		binary.BigEndian.PutUint64(ids[i][8:], rng.Uint64())
	}
	return ids
}
