package weftstoreextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
	"github.com/weftobs/weft/internal/weftest"
)

// startPins creates and starts a weft_pins extension without gossip (no
// port) under id and stops it at cleanup.
func startPins(t *testing.T, id component.ID) *weftpinsextension.Pins {
	t.Helper()
	f := weftpinsextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*weftpinsextension.Config)
	cfg.Gossip.Enabled = false
	require.NoError(t, cfg.Validate())
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = id
	ext, err := f.Create(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), weftest.Host{}))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext.(*weftpinsextension.Pins)
}

// pinnedStore starts a store with the smallest budgets (64 KiB each, the
// pinned ones too) on a host with a weft_pins extension, which it finds
// by the default pins key.
func pinnedStore(t *testing.T, tel component.TelemetrySettings) (*Store, *weftpinsextension.Pins) {
	t.Helper()
	pinsID := component.MustNewIDWithName("weft_pins", "node")
	pins := startPins(t, pinsID)
	cfg := createDefaultConfig().(*Config)
	cfg.TracesMaxBytes, cfg.LogsMaxBytes = minIndexBytes, minIndexBytes
	cfg.PinnedTracesMaxBytes, cfg.PinnedLogsMaxBytes = minIndexBytes, minIndexBytes
	st, err := newStore(tel, cfg)
	require.NoError(t, err)
	require.NoError(t, st.Start(context.Background(), weftest.Host{pinsID: pins}))
	t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
	return st, pins
}

// feed appends unpinned spans and log records until each index has
// evicted factor times its budget.
func feed(t *testing.T, st *Store, factor int64) {
	t.Helper()
	ctx := context.Background()
	// Numbered far from the batches the tests pin (their trace IDs derive
	// from the numbers).
	spanSeq, logSeq := uint64(1<<20), uint64(1<<20)
	for st.Stats().Spans.EvictedBytes < factor*st.cfg.TracesMaxBytes {
		require.NoError(t, st.AppendTraces(ctx, simtest.SpanBatch(&spanSeq, 100)))
	}
	for st.Stats().Logs.EvictedBytes < factor*st.cfg.LogsMaxBytes {
		require.NoError(t, st.AppendLogs(ctx, simtest.LogBatch(&logSeq, 100)))
	}
}

// TestPinnedTraceSurvivesEviction is the acceptance in miniature,
// on one node: after an alert pins a trace, the node still returns its
// spans and log lines through Correlate after 10x its eviction budget of
// other traffic; an unpinned trace of the same requests is gone.
func TestPinnedTraceSurvivesEviction(t *testing.T) {
	st, pins := pinnedStore(t, componenttest.NewNopTelemetrySettings())
	ctx := context.Background()
	reqs, td, ld, _ := simtest.Simulate(simtest.NewRand(11), 40, time.Now().Add(-time.Minute))
	cited, other := reqs[9], reqs[8]
	require.True(t, pins.Pin(cited.TraceID, time.Now().Add(time.Hour), weftpinsextension.ReasonAlert))
	require.NoError(t, st.AppendTraces(ctx, td))
	require.NoError(t, st.AppendLogs(ctx, ld))
	feed(t, st, 10)

	c, err := st.Correlate(ctx, cited.TraceID)
	require.NoError(t, err)
	require.Len(t, c.Spans, 2)
	assert.ElementsMatch(t, []pcommon.SpanID{cited.ClientSpan, cited.ServerSpan}, []pcommon.SpanID{c.Spans[0].SpanID, c.Spans[1].SpanID})
	require.Len(t, c.Logs, cited.LogsWritten)
	for _, l := range c.Logs {
		assert.Equal(t, cited.TraceID, l.TraceID)
		assert.Equal(t, key(cited.Server), l.Pod)
	}
	ids, err := st.FindTraces(SpanQuery{Service: cited.Server.App, Limit: 1000})
	require.NoError(t, err)
	assert.Contains(t, ids, cited.TraceID)

	c, err = st.Correlate(ctx, other.TraceID)
	require.NoError(t, err)
	assert.Empty(t, c.Spans, "unpinned spans are evicted")
	assert.Empty(t, c.Logs, "unpinned log records are evicted")

	s := st.Stats()
	for name, is := range map[string]IndexStats{"spans": s.Spans, "logs": s.Logs} {
		assert.Equal(t, int64(2), is.PinnedRecords, name)
		assert.Equal(t, int64(2), is.Pinned, name)
		assert.Positive(t, is.PinnedBytes, name)
		assert.LessOrEqual(t, is.PinnedBytes, is.PinnedMaxBytes, name)
	}
	ps, ok := st.PinsStats()
	require.True(t, ok)
	assert.Equal(t, 1, ps.Pins)
}

// TestPinnedBudgetFull: more pinned spans than the pinned budget holds;
// the spans of the traces whose pins end soonest are evicted and counted
// (budget_full, also in the self-metrics).
func TestPinnedBudgetFull(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	st, pins := pinnedStore(t, tel.NewTelemetrySettings())
	ctx := context.Background()
	var seq uint64
	td := simtest.SpanBatch(&seq, 400)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	base := time.Now().Add(time.Hour)
	ends := make(map[pcommon.TraceID]time.Time)
	for i := range spans.Len() {
		id := spans.At(i).TraceID()
		require.True(t, pins.Pin(id, base.Add(time.Duration((i*149)%spans.Len())*time.Second), weftpinsextension.ReasonErrorSpan))
		ends[id], _ = pins.PinnedUntil(id)
	}
	require.NoError(t, st.AppendTraces(ctx, td))
	feed(t, st, 10)

	s := st.Stats().Spans
	require.Positive(t, s.EvictedPinnedFull)
	assert.Zero(t, s.EvictedPinnedExpired)
	assert.LessOrEqual(t, s.PinnedBytes, s.PinnedMaxBytes)
	assert.Equal(t, int64(spans.Len()), s.PinnedRecords+s.EvictedPinnedFull)
	var keptSoonest, droppedLatest time.Time
	for id, end := range ends {
		got, err := st.Trace(id)
		require.NoError(t, err)
		if len(got) > 0 {
			if keptSoonest.IsZero() || end.Before(keptSoonest) {
				keptSoonest = end
			}
		} else if end.After(droppedLatest) {
			droppedLatest = end
		}
	}
	require.False(t, keptSoonest.IsZero())
	assert.False(t, keptSoonest.Before(droppedLatest), "kept pins end at %s or later, evicted ones by %s", keptSoonest, droppedLatest)

	byReason := pinnedEvictions(t, tel)
	assert.Equal(t, s.EvictedPinnedFull, byReason["spans/budget_full"])
	assert.Zero(t, byReason["spans/expired"])
	m, err := tel.GetMetric("weft_store.pinned_records")
	require.NoError(t, err)
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		if sig, _ := dp.Attributes.Value("signal"); sig.AsString() == "spans" {
			assert.Equal(t, s.PinnedRecords, dp.Value)
		}
	}
}

// pinnedEvictions reads weft_store.evicted_pinned_records by
// "signal/reason".
func pinnedEvictions(t *testing.T, tel *componenttest.Telemetry) map[string]int64 {
	t.Helper()
	m, err := tel.GetMetric("weft_store.evicted_pinned_records")
	require.NoError(t, err)
	out := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		sig, _ := dp.Attributes.Value("signal")
		r, _ := dp.Attributes.Value("reason")
		out[sig.AsString()+"/"+r.AsString()] = dp.Value
	}
	return out
}

// TestPinnedExpiredEvicted: once the pin ends, the trace's spans leave
// the pinned budget at the next append, counted as expired.
func TestPinnedExpiredEvicted(t *testing.T) {
	st, pins := pinnedStore(t, componenttest.NewNopTelemetrySettings())
	ctx := context.Background()
	_, td, _, _ := simtest.Simulate(simtest.NewRand(5), 10, time.Now())
	id := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()
	require.True(t, pins.Pin(id, time.Now().Add(time.Second), weftpinsextension.ReasonErrorSpan))
	require.NoError(t, st.AppendTraces(ctx, td))
	feed(t, st, 2)
	require.Equal(t, int64(2), st.Stats().Spans.PinnedRecords)

	require.Eventually(t, func() bool { return !pins.Pinned(id) }, 10*time.Second, 20*time.Millisecond)
	var seq uint64
	require.NoError(t, st.AppendTraces(ctx, simtest.SpanBatch(&seq, 1)))
	s := st.Stats().Spans
	assert.Equal(t, int64(2), s.EvictedPinnedExpired)
	assert.Zero(t, s.PinnedRecords)
	assert.Zero(t, s.PinnedBytes)
	got, err := st.Trace(id)
	require.NoError(t, err)
	assert.Empty(t, got)
}

// TestPinsKey: the pins key's three forms, Dependencies and Start.
func TestPinsKey(t *testing.T) {
	pinsID := component.MustNewIDWithName("weft_pins", "a")
	pins := startPins(t, pinsID)
	host := weftest.Host{pinsID: pins}
	tests := []struct {
		key      string
		host     weftest.Host
		deps     []component.ID
		wantPins bool
		wantErr  string
	}{
		{key: "", host: host, wantPins: true},
		{key: "", host: weftest.Host{}},
		{key: "none", host: host},
		{key: "weft_pins/a", host: host, deps: []component.ID{pinsID}, wantPins: true},
		{key: "weft_pins/b", host: host, deps: []component.ID{component.MustNewIDWithName("weft_pins", "b")}, wantErr: `"weft_pins/b" is not configured`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Pins = tt.key
			st, err := newStore(componenttest.NewNopTelemetrySettings(), cfg)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, st.Shutdown(context.Background())) })
			assert.Equal(t, tt.deps, st.Dependencies())
			err = st.Start(context.Background(), tt.host)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			_, ok := st.PinsStats()
			assert.Equal(t, tt.wantPins, ok)
		})
	}
}

// TestPinsAfterEviction: through a real weft_pins (its OnPin), a pin of a
// trace whose spans and log records the store already evicted counts 1 per
// signal, in Stats and in weft_store.pins_after_eviction, and once only
// when the pin is extended; a pin of a trace never seen or still held
// counts 0.
func TestPinsAfterEviction(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	st, pins := pinnedStore(t, tel.NewTelemetrySettings())
	ctx := context.Background()
	reqs, td, ld, _ := simtest.Simulate(simtest.NewRand(31), 40, time.Now().Add(-time.Minute))
	var gone simtest.Request
	for _, r := range reqs {
		if r.LogsWritten > 0 {
			gone = r
			break
		}
	}
	require.NotZero(t, gone.LogsWritten)
	require.NoError(t, st.AppendTraces(ctx, td))
	require.NoError(t, st.AppendLogs(ctx, ld))
	feed(t, st, 2)
	heldReqs, heldTD, heldLD, _ := simtest.Simulate(simtest.NewRand(32), 5, time.Now())
	require.NoError(t, st.AppendTraces(ctx, heldTD))
	require.NoError(t, st.AppendLogs(ctx, heldLD))
	held := heldReqs[0]
	got, err := st.Trace(held.TraceID)
	require.NoError(t, err)
	require.NotEmpty(t, got, "the held trace is held")
	got, err = st.Trace(reqs[len(reqs)-1].TraceID)
	require.NoError(t, err)
	require.Empty(t, got, "the first batch is evicted")

	lateByMetric := func() map[string]int64 {
		m, err := tel.GetMetric("weft_store.pins_after_eviction")
		require.NoError(t, err)
		out := map[string]int64{}
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			sig, _ := dp.Attributes.Value("signal")
			out[sig.AsString()] = dp.Value
		}
		return out
	}
	steps := []struct {
		name string
		id   pcommon.TraceID
		ttl  time.Duration
		want int64
	}{
		{"never seen", pcommon.TraceID{0xfe, 0xed}, time.Minute, 0},
		{"still held", held.TraceID, time.Minute, 0},
		{"evicted", gone.TraceID, time.Minute, 1},
		{"evicted, pin extended", gone.TraceID, 2 * time.Minute, 1},
	}
	for _, s := range steps {
		require.True(t, pins.Pin(s.id, time.Now().Add(s.ttl), weftpinsextension.ReasonAlert), s.name)
		stats := st.Stats()
		assert.Equal(t, s.want, stats.Spans.PinsAfterEviction, "%s: spans", s.name)
		assert.Equal(t, s.want, stats.Logs.PinsAfterEviction, "%s: logs", s.name)
		assert.Equal(t, map[string]int64{"spans": s.want, "logs": s.want}, lateByMetric(), "%s: self-metric", s.name)
	}

	// After Shutdown the store no longer listens.
	require.NoError(t, st.Shutdown(ctx))
	require.True(t, pins.Pin(reqs[len(reqs)-1].TraceID, time.Now().Add(time.Minute), weftpinsextension.ReasonAlert))
	assert.Equal(t, int64(1), st.Stats().Spans.PinsAfterEviction)
}
