package otlpwire

import (
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

// requireSpansAsPdata: every span of td encodes to the bytes pdata's
// marshaler gives it inside the batch.
func requireSpansAsPdata(t *testing.T, e *Encoder, td ptrace.Traces) int {
	t.Helper()
	var m ptrace.ProtoMarshaler
	buf, err := m.MarshalTraces(td)
	require.NoError(t, err)
	ws, err := Split(buf, nil)
	require.NoError(t, err)
	n, checked := 0, 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			require.Less(t, n, len(ws))
			require.Equal(t, ss.Spans().Len(), len(ws[n].Recs))
			for k, sp := range ss.Spans().All() {
				require.Equal(t, ws[n].Recs[k], e.Span(sp), "span %d of scope %d (%q)", k, n, sp.Name())
				checked++
			}
			n++
		}
	}
	return checked
}

// requireLogsAsPdata is requireSpansAsPdata for log records.
func requireLogsAsPdata(t *testing.T, e *Encoder, ld plog.Logs) int {
	t.Helper()
	var m plog.ProtoMarshaler
	buf, err := m.MarshalLogs(ld)
	require.NoError(t, err)
	ws, err := Split(buf, nil)
	require.NoError(t, err)
	n, checked := 0, 0
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			require.Less(t, n, len(ws))
			require.Equal(t, sl.LogRecords().Len(), len(ws[n].Recs))
			for k, lr := range sl.LogRecords().All() {
				require.Equal(t, ws[n].Recs[k], e.LogRecord(lr), "record %d of scope %d", k, n)
				checked++
			}
			n++
		}
	}
	return checked
}

// TestEncoderMatchesPdata holds the encoder to pdata's marshaler, byte
// for byte: the OTLP specification's examples, the simulated node's
// traces and logs, records with every field set, empty ones, and random
// ones.
func TestEncoderMatchesPdata(t *testing.T) {
	var e Encoder
	t.Run("otlp-proto examples", func(t *testing.T) {
		raw, err := os.ReadFile("../../../../testdata/otlp-proto-example-trace.json")
		require.NoError(t, err)
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(raw)
		require.NoError(t, err)
		require.Equal(t, 1, requireSpansAsPdata(t, &e, td))
		raw, err = os.ReadFile("../../../../testdata/otlp-proto-example-logs.json")
		require.NoError(t, err)
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(raw)
		require.NoError(t, err)
		require.Equal(t, 1, requireLogsAsPdata(t, &e, ld))
	})
	t.Run("simulated node", func(t *testing.T) {
		_, td, ld, _ := simtest.Simulate(simtest.NewRand(7), 200, time.Unix(1700000000, 0))
		require.Positive(t, requireSpansAsPdata(t, &e, td))
		require.Positive(t, requireLogsAsPdata(t, &e, ld))
	})
	t.Run("every field and empty", func(t *testing.T) {
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		spans.AppendEmpty() // every field empty
		fullSpan(spans.AppendEmpty(), rand.New(rand.NewPCG(1, 1)), true)
		require.Equal(t, 2, requireSpansAsPdata(t, &e, td))
		ld := plog.NewLogs()
		recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		recs.AppendEmpty()
		fullLog(recs.AppendEmpty(), rand.New(rand.NewPCG(1, 1)), true)
		require.Equal(t, 2, requireLogsAsPdata(t, &e, ld))
	})
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for range 300 {
			td := ptrace.NewTraces()
			spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
			ld := plog.NewLogs()
			recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
			for range 1 + rng.IntN(5) {
				fullSpan(spans.AppendEmpty(), rng, false)
				fullLog(recs.AppendEmpty(), rng, false)
			}
			requireSpansAsPdata(t, &e, td)
			requireLogsAsPdata(t, &e, ld)
		}
	})
}

// TestEncoderAllocatesNothing: once its buffer has grown to the records'
// size, encoding allocates nothing (the point of the encoder).
func TestEncoderAllocatesNothing(t *testing.T) {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	fullSpan(sp, rand.New(rand.NewPCG(5, 6)), true)
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	fullLog(lr, rand.New(rand.NewPCG(5, 6)), true)
	var e Encoder
	e.Span(sp)
	e.LogRecord(lr)
	require.Zero(t, testing.AllocsPerRun(100, func() {
		e.Span(sp)
		e.LogRecord(lr)
	}))
}

// fullSpan fills sp from rng; all sets every field (else each is left
// empty or zero one time in four).
func fullSpan(sp ptrace.Span, rng *rand.Rand, all bool) {
	some := func() bool { return all || rng.IntN(4) > 0 }
	if some() {
		sp.SetTraceID(pcommon.TraceID(randBytes16(rng)))
	}
	if some() {
		sp.SetSpanID(pcommon.SpanID(randBytes8(rng)))
	}
	if some() {
		sp.SetParentSpanID(pcommon.SpanID(randBytes8(rng)))
	}
	if some() {
		sp.TraceState().FromRaw("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	}
	if some() {
		sp.SetFlags(uint32(rng.Uint32()) | 1)
	}
	if some() {
		sp.SetName(randString(rng))
	}
	if some() {
		sp.SetKind(ptrace.SpanKind(1 + rng.IntN(5)))
	}
	if some() {
		sp.SetStartTimestamp(pcommon.Timestamp(rng.Uint64()))
	}
	if some() {
		sp.SetEndTimestamp(pcommon.Timestamp(rng.Uint64()))
	}
	if some() {
		randMap(sp.Attributes(), rng, 2)
	}
	if some() {
		sp.SetDroppedAttributesCount(rng.Uint32())
	}
	for range rng.IntN(3) + b2i(all) {
		ev := sp.Events().AppendEmpty()
		if some() {
			ev.SetTimestamp(pcommon.Timestamp(rng.Uint64()))
		}
		if some() {
			ev.SetName(randString(rng))
		}
		randMap(ev.Attributes(), rng, 1)
		if some() {
			ev.SetDroppedAttributesCount(rng.Uint32())
		}
	}
	if some() {
		sp.SetDroppedEventsCount(rng.Uint32())
	}
	for range rng.IntN(3) + b2i(all) {
		l := sp.Links().AppendEmpty()
		if some() {
			l.SetTraceID(pcommon.TraceID(randBytes16(rng)))
		}
		if some() {
			l.SetSpanID(pcommon.SpanID(randBytes8(rng)))
		}
		if some() {
			l.TraceState().FromRaw("k=v")
		}
		randMap(l.Attributes(), rng, 1)
		if some() {
			l.SetDroppedAttributesCount(rng.Uint32())
		}
		if some() {
			l.SetFlags(rng.Uint32() | 1)
		}
	}
	if some() {
		sp.SetDroppedLinksCount(rng.Uint32())
	}
	if some() {
		sp.Status().SetCode(ptrace.StatusCode(1 + rng.IntN(2)))
	}
	if some() {
		sp.Status().SetMessage(randString(rng))
	}
}

// fullLog is fullSpan for a log record.
func fullLog(lr plog.LogRecord, rng *rand.Rand, all bool) {
	some := func() bool { return all || rng.IntN(4) > 0 }
	if some() {
		lr.SetTimestamp(pcommon.Timestamp(rng.Uint64()))
	}
	if some() {
		lr.SetObservedTimestamp(pcommon.Timestamp(rng.Uint64()))
	}
	if some() {
		lr.SetSeverityNumber(plog.SeverityNumber(1 + rng.IntN(24)))
	}
	if some() {
		lr.SetSeverityText(randString(rng))
	}
	if some() {
		randValue(lr.Body(), rng, 2)
	}
	if some() {
		randMap(lr.Attributes(), rng, 2)
	}
	if some() {
		lr.SetDroppedAttributesCount(rng.Uint32())
	}
	if some() {
		lr.SetFlags(plog.LogRecordFlags(rng.Uint32() | 1))
	}
	if some() {
		lr.SetTraceID(pcommon.TraceID(randBytes16(rng)))
	}
	if some() {
		lr.SetSpanID(pcommon.SpanID(randBytes8(rng)))
	}
	if some() {
		lr.SetEventName(randString(rng))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// randMap adds up to six entries of random values (nested to depth).
func randMap(m pcommon.Map, rng *rand.Rand, depth int) {
	for i := range rng.IntN(7) {
		randValue(m.PutEmpty(randString(rng)+string(rune('a'+i))), rng, depth)
	}
}

// randValue sets v to a random value of every type, nested up to depth.
func randValue(v pcommon.Value, rng *rand.Rand, depth int) {
	kinds := 6
	if depth > 0 {
		kinds = 8
	}
	switch rng.IntN(kinds) {
	case 0:
		v.SetStr(randString(rng))
	case 1:
		v.SetBool(rng.IntN(2) == 1)
	case 2:
		v.SetInt(int64(rng.Uint64())) // negative half the time: ten-byte varints
	case 3:
		v.SetDouble([]float64{rng.NormFloat64(), 0, math.NaN(), math.Inf(-1)}[rng.IntN(4)])
	case 4:
		b := v.SetEmptyBytes()
		b.FromRaw([]byte(randString(rng)))
	case 5:
		// left empty: an AnyValue with no value
	case 6:
		s := v.SetEmptySlice()
		for range rng.IntN(4) {
			randValue(s.AppendEmpty(), rng, depth-1)
		}
	case 7:
		randMap(v.SetEmptyMap(), rng, depth-1)
	}
}

// randString is empty, short, or long enough (past 4 KiB now and then) to
// make the encoder grow its buffer.
func randString(rng *rand.Rand) string {
	switch rng.IntN(8) {
	case 0:
		return ""
	case 1:
		return strings.Repeat("x", 100+rng.IntN(9000))
	}
	b := make([]byte, 1+rng.IntN(30))
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return string(b)
}

func randBytes16(rng *rand.Rand) (b [16]byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randBytes8(rng *rand.Rand) (b [8]byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// FuzzEncoderMatchesPdata: whatever pdata decodes as traces or logs, the
// encoder writes each record as pdata's marshaler does (the inputs reach
// corners the generators above do not: unknown fields dropped, values
// pdata keeps but nothing here sets).
func FuzzEncoderMatchesPdata(f *testing.F) {
	_, td, ld, _ := simtest.Simulate(simtest.NewRand(9), 3, time.Unix(1700000000, 0))
	tb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(f, err)
	lb, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	require.NoError(f, err)
	f.Add(tb)
	f.Add(lb)
	rng := rand.New(rand.NewPCG(7, 8))
	full := ptrace.NewTraces()
	fullSpan(full.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty(), rng, true)
	fb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(full)
	require.NoError(f, err)
	f.Add(fb)
	fullL := plog.NewLogs()
	fullLog(fullL.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty(), rng, true)
	flb, err := (&plog.ProtoMarshaler{}).MarshalLogs(fullL)
	require.NoError(f, err)
	f.Add(flb)
	f.Fuzz(func(t *testing.T, in []byte) {
		var e Encoder
		if td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(in); err == nil {
			requireSpansAsPdata(t, &e, td)
		}
		if ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(in); err == nil {
			requireLogsAsPdata(t, &e, ld)
		}
	})
}
