package weftstore

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestSeqList(t *testing.T) {
	var l seqList
	for i := range uint64(100) {
		l.push(i)
	}
	for i := range uint64(99) {
		require.False(t, l.popFront(i))
		require.Equal(t, int(99-i), l.len())
	}
	var got []uint64
	l.newestFirst(func(s uint64) bool { got = append(got, s); return true })
	assert.Equal(t, []uint64{99}, got)
	assert.True(t, l.popFront(99))
	assert.Equal(t, 0, l.len())
}

func TestRing(t *testing.T) {
	var r ring[int]
	for i := range 3000 {
		seq, _ := r.push(i)
		require.Equal(t, uint64(i), seq)
		if i%3 == 0 {
			e, seq, ok := r.oldest()
			require.True(t, ok)
			require.Equal(t, int(seq), *e)
			r.pop()
		}
	}
	for seq := r.first; seq < r.next(); seq++ {
		require.Equal(t, int(seq), *r.get(seq))
	}
	assert.Nil(t, r.get(r.first-1))
	assert.Nil(t, r.get(r.next()))
}

func TestSpanIndex(t *testing.T) {
	st := newTestStore(t, nil)
	start := time.Now().Add(-time.Minute)
	reqs, td, _, _ := simulate(newRand(3), 100, start)
	require.NoError(t, st.AppendTraces(context.Background(), td))
	require.Equal(t, int64(200), st.Stats().Spans.Records)

	assert.Equal(t, []string{"hello", "productpage", "ratings", "reviews"}, st.Services())
	assert.Equal(t, []string{"GET /reviews/{id}"}, st.Operations("reviews"))
	assert.Empty(t, st.Operations("nope"))

	// Trace returns both spans with their resource, oldest first.
	r := reqs[7]
	spans, err := st.Trace(r.traceID)
	require.NoError(t, err)
	require.Len(t, spans, 2)
	for _, sp := range spans {
		assert.Equal(t, r.traceID, sp.TraceID)
		assert.True(t, r.start.Equal(sp.Start), "start %s, want %s", sp.Start, r.start)
		assert.True(t, r.end.Equal(sp.End), "end %s, want %s", sp.End, r.end)
		rs := sp.Data.ResourceSpans().At(0)
		pod, _ := rs.Resource().Attributes().Get("k8s.pod.name")
		assert.Equal(t, sp.Pod.Name, pod.Str())
		assert.Equal(t, sp.SpanID, rs.ScopeSpans().At(0).Spans().At(0).SpanID())
	}
	assert.ElementsMatch(t, []pcommon.SpanID{r.clientSpan, r.serverSpan}, []pcommon.SpanID{spans[0].SpanID, spans[1].SpanID})

	// Failing traces: every fifth request, newest first, by service and pod.
	byEnd := slices.Clone(reqs)
	slices.SortFunc(byEnd, func(a, b simRequest) int { return b.end.Compare(a.end) })
	var failing []pcommon.TraceID
	failingByPod := make(map[Pod][]pcommon.TraceID)
	for _, r := range byEnd {
		if r.status >= 500 {
			failing = append(failing, r.traceID)
			failingByPod[r.server.key()] = append(failingByPod[r.server.key()], r.traceID)
		}
	}
	ids := func(fs []FailingTrace) []pcommon.TraceID {
		out := make([]pcommon.TraceID, len(fs))
		for i, f := range fs {
			out[i] = f.TraceID
		}
		return out
	}
	assert.Equal(t, failing[:20], ids(st.FailingTraces(TraceSelector{Service: "productpage", Limit: 0})))
	assert.Equal(t, failing[:5], ids(st.FailingTraces(TraceSelector{Limit: 5})))
	for pod, want := range failingByPod {
		got := st.FailingTraces(TraceSelector{Pod: pod, Limit: 100})
		assert.Equal(t, want, ids(got), pod.String())
		for _, g := range got {
			assert.Equal(t, pod, g.Pod)
		}
	}
	// Window: failing spans that ended at or after mid.
	mid := reqs[50].end
	var after []pcommon.TraceID
	for _, r := range byEnd {
		if r.status >= 500 && !r.end.Before(mid) {
			after = append(after, r.traceID)
		}
	}
	require.NotEmpty(t, after)
	assert.Equal(t, after, ids(st.FailingTraces(TraceSelector{Start: mid, Limit: 100})))
	assert.Empty(t, st.FailingTraces(TraceSelector{Service: "nope"}))

	tests := []struct {
		name string
		q    SpanQuery
		want func(simRequest) bool
	}{
		{"service", SpanQuery{Service: "ratings", Limit: 1000}, func(r simRequest) bool { return r.server.app == "ratings" }},
		{"operation", SpanQuery{Service: "productpage", Operation: "GET /hello/{id}", Limit: 1000}, func(r simRequest) bool { return r.server.app == "hello" }},
		{"tag", SpanQuery{Service: "reviews", Tags: map[string]string{"http.response.status_code": "503"}, Limit: 1000},
			func(r simRequest) bool { return r.server.app == "reviews" && r.status == 503 }},
		{"resource tag", SpanQuery{Tags: map[string]string{"k8s.pod.name": testPods[4].name}, Limit: 1000},
			func(r simRequest) bool { return r.server.name == testPods[4].name }},
		{"error tag", SpanQuery{Tags: map[string]string{"error": "true"}, Limit: 1000}, func(r simRequest) bool { return r.status >= 500 }},
		{"min duration", SpanQuery{MinDuration: 30 * time.Millisecond, Limit: 1000}, func(r simRequest) bool { return r.end.Sub(r.start) >= 30*time.Millisecond }},
		{"max duration", SpanQuery{MinDuration: 10 * time.Millisecond, MaxDuration: 20 * time.Millisecond, Limit: 1000},
			func(r simRequest) bool {
				d := r.end.Sub(r.start)
				return d >= 10*time.Millisecond && d <= 20*time.Millisecond
			}},
		{"window", SpanQuery{Start: reqs[10].start, End: reqs[19].start, Limit: 1000}, func(r simRequest) bool {
			return !r.start.Before(reqs[10].start) && !r.start.After(reqs[19].start)
		}},
		{"limit", SpanQuery{Limit: 3}, func(r simRequest) bool { return r.start.After(reqs[96].start) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []pcommon.TraceID
			for i := len(reqs) - 1; i >= 0; i-- {
				if tt.want(reqs[i]) {
					want = append(want, reqs[i].traceID)
				}
			}
			got, err := st.FindTraces(tt.q)
			require.NoError(t, err)
			require.NotEmpty(t, want)
			assert.Equal(t, want, got)
		})
	}
}

func TestLogIndex(t *testing.T) {
	st := newTestStore(t, nil)
	start := time.Now().Add(-time.Minute)
	reqs, _, ld, _ := simulate(newRand(4), 100, start)
	require.NoError(t, st.AppendLogs(context.Background(), ld))
	require.Equal(t, int64(200), st.Stats().Logs.Records)

	r := reqs[42]
	recs, err := st.SearchLogs(LogQuery{TraceID: r.traceID})
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Contains(t, recs[0].Body, "traceparent=00-"+r.traceID.String())
	assert.Contains(t, recs[1].Body, `"trace_id":"`+r.traceID.String())
	for _, rec := range recs {
		assert.Equal(t, r.server.key(), rec.Pod)
		assert.Equal(t, r.server.container, rec.Container)
		assert.Equal(t, r.server.app, rec.Service)
		assert.Equal(t, r.serverSpan, rec.SpanID)
		assert.Equal(t, rec.Body, rec.Data.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str())
	}

	// wantLogs lists the trace IDs of matching records, newest first: each
	// request wrote two records, at end and end+1µs.
	type rec struct {
		t  time.Time
		id pcommon.TraceID
	}
	var all []rec
	for _, r := range reqs {
		all = append(all, rec{r.end, r.traceID}, rec{r.end.Add(time.Microsecond), r.traceID})
	}
	slices.SortFunc(all, func(a, b rec) int { return b.t.Compare(a.t) })
	wantLogs := func(match func(simRequest) bool, limit int) []pcommon.TraceID {
		byID := make(map[pcommon.TraceID]simRequest, len(reqs))
		for _, r := range reqs {
			byID[r.traceID] = r
		}
		var out []pcommon.TraceID
		for _, a := range all {
			if len(out) < limit && match(byID[a.id]) {
				out = append(out, a.id)
			}
		}
		return out
	}
	fn := testPods[4]
	tests := []struct {
		name  string
		q     LogQuery
		match func(simRequest) bool
	}{
		{"pod", LogQuery{Namespace: fn.ns, Pod: fn.name, Limit: 1000}, func(r simRequest) bool { return r.server.name == fn.name }},
		{"pod name only", LogQuery{Pod: fn.name, Limit: 1000}, func(r simRequest) bool { return r.server.name == fn.name }},
		{"namespace", LogQuery{Namespace: "bookinfo", Limit: 1000}, func(r simRequest) bool { return r.server.ns == "bookinfo" }},
		{"container", LogQuery{Container: "user-container", Limit: 1000}, func(r simRequest) bool { return r.server.container == "user-container" }},
		{"service", LogQuery{Service: "ratings", Limit: 1000}, func(r simRequest) bool { return r.server.app == "ratings" }},
		{"errors", LogQuery{MinSeverity: plog.SeverityNumberError, Limit: 1000}, func(r simRequest) bool { return r.status >= 500 }},
		{"since", LogQuery{Since: reqs[90].end, Limit: 1000}, func(r simRequest) bool { return !r.end.Before(reqs[90].end) }},
		{"limit", LogQuery{Limit: 5}, func(simRequest) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.q.Limit
			got, err := st.SearchLogs(tt.q)
			require.NoError(t, err)
			gotIDs := make([]pcommon.TraceID, len(got))
			for i, g := range got {
				gotIDs[i] = g.TraceID
			}
			want := wantLogs(tt.match, limit)
			require.NotEmpty(t, want)
			assert.Equal(t, want, gotIDs)
		})
	}
}

// spanBatch returns a batch of n spans of one pod with distinct trace IDs.
func spanBatch(seq *uint64, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	testPods[1].resource(rs.Resource())
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for range n {
		*seq++
		sp := spans.AppendEmpty()
		var tid pcommon.TraceID
		tid[0], tid[15] = byte(*seq>>8), byte(*seq)
		tid[7] = byte(*seq >> 16)
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(*seq)})
		sp.SetName("GET /reviews/{id}")
		sp.SetStartTimestamp(pcommon.Timestamp(*seq * 1000))
		sp.SetEndTimestamp(pcommon.Timestamp(*seq*1000 + 500))
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("url.path", "/reviews/0")
		sp.Attributes().PutInt("http.response.status_code", 200)
		if *seq%7 == 0 {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

func logBatch(seq *uint64, n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	testPods[1].resource(rl.Resource())
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for range n {
		*seq++
		lr := recs.AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(*seq * 1000))
		var tid pcommon.TraceID
		tid[0], tid[15], tid[7] = byte(*seq>>8), byte(*seq), byte(*seq>>16)
		lr.SetTraceID(tid)
		lr.Body().SetStr(`{"level":"info","msg":"GET /reviews/0 200 12ms","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","user":"jason"}`)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
	}
	return ld
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rssAfterFree returns the process's resident set size (VmRSS) after the
// runtime gave its free pages back to the kernel.
func rssAfterFree(t testing.TB) int64 {
	t.Helper()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestEvictionBounds feeds 10x the configured bytes into each index and
// checks that the charged bytes stay within the budget, that the heap and
// the process's RSS stay bounded, that exactly the oldest records were
// evicted and that every eviction was counted.
func TestEvictionBounds(t *testing.T) {
	const budget = 8 << 20
	tests := []struct {
		name  string
		feed  func(st *Store, seq *uint64)
		stats func(Stats) IndexStats
		// oldestKept returns the sequence number of the oldest stored record.
		oldestKept func(st *Store) uint64
	}{
		{"spans", func(st *Store, seq *uint64) {
			require.NoError(t, st.AppendTraces(context.Background(), spanBatch(seq, 512)))
		},
			func(s Stats) IndexStats { return s.Spans },
			func(st *Store) uint64 {
				e, _, _ := st.spans.ring.oldest()
				return uint64(e.spanID[7])
			}},
		{"logs", func(st *Store, seq *uint64) {
			require.NoError(t, st.AppendLogs(context.Background(), logBatch(seq, 512)))
		},
			func(s Stats) IndexStats { return s.Logs },
			func(st *Store) uint64 {
				e, _, _ := st.logs.ring.oldest()
				return uint64(e.traceID[15])
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newTestStore(t, func(c *Config) { c.TracesMaxBytes, c.LogsMaxBytes = budget, budget })
			before := heapAlloc() // after the TSDB and its exemplar buffer are allocated
			rssBefore := rssAfterFree(t)
			var seq uint64
			var peak uint64
			var rssPeak int64
			fed := int64(0)
			for tt.stats(st.Stats()).EvictedBytes+tt.stats(st.Stats()).Bytes < 10*budget {
				tt.feed(st, &seq)
				fed += 512
				s := tt.stats(st.Stats())
				require.LessOrEqual(t, s.Bytes, int64(budget))
				if seq%(512*40) == 0 {
					peak = max(peak, heapAlloc())
					rssPeak = max(rssPeak, rssAfterFree(t))
				}
			}
			s := tt.stats(st.Stats())
			peak = max(peak, heapAlloc())
			rssPeak = max(rssPeak, rssAfterFree(t))
			t.Logf("fed %d records, kept %d (%d B charged), evicted %d; heap grew by %d B, RSS by %d B (budget %d B)",
				fed, s.Records, s.Bytes, s.Evicted, int64(peak)-int64(before), rssPeak-rssBefore, budget)
			assert.Equal(t, fed, s.Records+s.Evicted, "every record is stored or counted as evicted")
			assert.Positive(t, s.Evicted)
			assert.Equal(t, uint64(s.Evicted+1)%256, tt.oldestKept(st), "the oldest records were evicted first")
			assert.Greater(t, s.Bytes, int64(budget)*9/10, "the index fills its budget")
			// The charged bytes estimate the heap: allow 1.5x. Without
			// eviction the heap would grow beyond 10x the budget.
			assert.Less(t, int64(peak)-int64(before), int64(budget*3/2), "heap stays bounded")
			// RSS, measured after the runtime returned its free pages, grows
			// with the retained records only: 10x the budget went through.
			// (Under the race detector RSS is dominated by its shadow memory;
			// TestEvictionBoundsRSSWithoutRace runs this test without it.)
			if !raceEnabled {
				assert.Less(t, rssPeak-rssBefore, int64(budget*2), "RSS stays bounded")
			}
		})
	}
}

// TestEvictionBoundsRSSWithoutRace: when the tests run with the race
// detector (as `make test` runs them), TestEvictionBounds cannot bound RSS;
// this runs it again in a build without the detector, where it does.
func TestEvictionBoundsRSSWithoutRace(t *testing.T) {
	if !raceEnabled {
		return // TestEvictionBounds in this very run checks RSS
	}
	out, err := exec.CommandContext(t.Context(), "go", "test", "-count=1", "-run", "^TestEvictionBounds$", "-v", ".").CombinedOutput()
	require.NoError(t, err, "TestEvictionBounds without -race:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestEvictionBounds/spans")
	require.Contains(t, string(out), "--- PASS: TestEvictionBounds/logs")
	t.Logf("%s", out)
}

func TestCorrelate(t *testing.T) {
	st := newTestStore(t, nil)
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Minute)
	reqs, td, ld, md := simulate(newRand(5), 300, start)
	require.NoError(t, st.AppendTraces(ctx, td))
	require.NoError(t, st.AppendLogs(ctx, ld))
	require.NoError(t, st.AppendMetrics(ctx, md))
	for _, r := range reqs {
		c, err := st.Correlate(ctx, r.traceID)
		require.NoError(t, err)
		require.Len(t, c.Spans, 2, r.traceID.String())
		pods := map[Pod]bool{}
		for _, sp := range c.Spans {
			pods[sp.Pod] = true
		}
		assert.Equal(t, map[Pod]bool{r.client.key(): true, r.server.key(): true}, pods)
		require.Len(t, c.Logs, r.logsWritten)
		for _, l := range c.Logs {
			assert.Equal(t, r.server.key(), l.Pod)
			assert.False(t, l.Time.IsZero())
		}
		assert.False(t, c.Logs[1].Time.Before(c.Logs[0].Time), "logs oldest first")
		require.Len(t, c.Exemplars, 2, "counter and histogram exemplar")
		for _, ex := range c.Exemplars {
			assert.Equal(t, r.server.key(), ex.Pod)
			assert.Equal(t, r.serverSpan, ex.SpanID)
			assert.Equal(t, r.scraped.UnixMilli(), ex.Time.UnixMilli())
		}
	}
	// An unknown trace: nothing, no error.
	c, err := st.Correlate(ctx, pcommon.TraceID{1})
	require.NoError(t, err)
	assert.Empty(t, c.Spans)
	assert.Empty(t, c.Logs)
	assert.Empty(t, c.Exemplars)
}
