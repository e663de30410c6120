package weftpinsextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestPinTTL: no expiry is the ttl from now; an explicit one wins; an
// expiry beyond max_ttl is cut to it and counted; expiries are whole
// seconds, rounded up.
func TestPinTTL(t *testing.T) {
	p, clk := newLocal(t, func(c *Config) { c.TTL = 30 * time.Minute; c.MaxTTL = 2 * time.Hour })
	now := clk.Now()
	a, b, c := traceID(1, 1), traceID(1, 2), traceID(1, 3)

	require.True(t, p.Pin(a, time.Time{}, ReasonErrorSpan))
	u, ok := p.PinnedUntil(a)
	require.True(t, ok)
	assert.Equal(t, now.Add(30*time.Minute), u)

	alertEnd := now.Add(90 * time.Minute) // the alert's lifetime + 30 min
	require.True(t, p.Pin(b, alertEnd.Add(500*time.Millisecond), ReasonAlert))
	u, _ = p.PinnedUntil(b)
	assert.Equal(t, alertEnd.Add(time.Second), u, "rounded up to the second")

	require.True(t, p.Pin(c, now.Add(48*time.Hour), ReasonAlert))
	u, _ = p.PinnedUntil(c)
	assert.Equal(t, now.Add(2*time.Hour), u, "cut to max_ttl")
	assert.Equal(t, int64(1), p.Stats().Clamped)

	assert.Equal(t, map[string]int64{"alert": 2, "error_span": 1, "error_log": 0}, p.Stats().Local)
}

// TestPinOnlyGrows: a shorter pin of a pinned trace changes nothing; a
// longer one extends it; both are reported.
func TestPinOnlyGrows(t *testing.T) {
	p, clk := newLocal(t, nil)
	id := traceID(2, 1)
	now := clk.Now()
	require.True(t, p.Pin(id, now.Add(time.Hour), ReasonAlert))
	assert.False(t, p.Pin(id, now.Add(time.Minute), ReasonErrorLog), "shorter: no change")
	assert.False(t, p.Pin(id, now.Add(time.Hour), ReasonErrorLog), "same: no change")
	u, _ := p.PinnedUntil(id)
	assert.Equal(t, now.Add(time.Hour), u)
	assert.True(t, p.Pin(id, now.Add(2*time.Hour), ReasonErrorLog), "longer: extended")
	u, _ = p.PinnedUntil(id)
	assert.Equal(t, now.Add(2*time.Hour), u)
	assert.Equal(t, 1, p.Stats().Pins)
}

// TestPinRefusesNonsense: the empty trace ID, an unknown reason and a past
// expiry pin nothing.
func TestPinRefusesNonsense(t *testing.T) {
	p, clk := newLocal(t, nil)
	assert.False(t, p.Pin(pcommon.TraceID{}, time.Time{}, ReasonAlert))
	assert.False(t, p.Pin(traceID(3, 1), time.Time{}, Reason(0)))
	assert.False(t, p.Pin(traceID(3, 1), time.Time{}, Reason(9)))
	assert.False(t, p.Pin(traceID(3, 2), clk.Now().Add(-time.Second), ReasonAlert))
	assert.False(t, p.Pin(traceID(3, 3), clk.Now(), ReasonAlert))
	assert.Equal(t, 0, p.Stats().Pins)
	assert.False(t, p.Pinned(pcommon.TraceID{}))
}

// TestExpiry: a pin is gone once its expiry passes (Pinned at once, the
// memory at the next sweep), and counted as expired.
func TestExpiry(t *testing.T) {
	p, clk := newLocal(t, nil)
	a, b := traceID(4, 1), traceID(4, 2)
	now := clk.Now()
	p.Pin(a, now.Add(10*time.Second), ReasonErrorLog)
	p.Pin(b, now.Add(20*time.Second), ReasonErrorLog)
	clk.Advance(9 * time.Second)
	assert.True(t, p.Pinned(a))
	clk.Advance(time.Second) // a's expiry: no longer pinned
	assert.False(t, p.Pinned(a))
	_, ok := p.PinnedUntil(a)
	assert.False(t, ok)
	assert.True(t, p.Pinned(b))
	assert.Equal(t, 2, p.Stats().Pins, "held until the sweep")
	p.pins.expire()
	st := p.Stats()
	assert.Equal(t, 1, st.Pins)
	assert.Equal(t, int64(1), st.Expired)

	// An expired, unswept pin is pinned afresh, not extended.
	clk.Advance(10 * time.Second)
	assert.True(t, p.Pin(b, time.Time{}, ReasonAlert))
	assert.Equal(t, 1, p.Stats().Pins)
}

// TestMaxPinsEvictsSoonestExpiry: at max_pins the pin that expires
// soonest goes, whatever its age; a new pin that would expire first is
// itself refused (evicted at once, reported unchanged).
func TestMaxPinsEvictsSoonestExpiry(t *testing.T) {
	p, clk := newLocal(t, func(c *Config) { c.MaxPins = 3 })
	now := clk.Now()
	p.Pin(traceID(5, 1), now.Add(30*time.Minute), ReasonErrorSpan)
	p.Pin(traceID(5, 2), now.Add(10*time.Minute), ReasonErrorSpan) // soonest
	p.Pin(traceID(5, 3), now.Add(60*time.Minute), ReasonAlert)
	require.True(t, p.Pin(traceID(5, 4), now.Add(20*time.Minute), ReasonErrorLog))
	assert.False(t, p.Pinned(traceID(5, 2)), "the soonest expiry is evicted")
	for _, n := range []int{1, 3, 4} {
		assert.True(t, p.Pinned(traceID(5, n)), "pin %d", n)
	}
	assert.False(t, p.Pin(traceID(5, 5), now.Add(time.Minute), ReasonErrorLog), "expires before all others: evicted at once")
	assert.False(t, p.Pinned(traceID(5, 5)))
	st := p.Stats()
	assert.Equal(t, 3, st.Pins)
	assert.Equal(t, int64(2), st.Evicted)
	assert.Equal(t, int64(0), st.Expired)

	// Expired pins make room before anything live is evicted.
	clk.Advance(25 * time.Minute) // 5.4 (20m) expired
	require.True(t, p.Pin(traceID(5, 6), clk.Now().Add(time.Minute), ReasonErrorLog))
	st = p.Stats()
	assert.Equal(t, int64(2), st.Evicted)
	assert.Equal(t, int64(1), st.Expired)
}

// TestHeapStaysBounded: extending the same pins over and over leaves stale
// heap entries, which are compacted away.
func TestHeapStaysBounded(t *testing.T) {
	p, clk := newLocal(t, func(c *Config) { c.MaxPins = 100 })
	now := clk.Now()
	for i := range 20_000 {
		p.Pin(traceID(6, i%50), now.Add(time.Duration(i+1)*time.Second), ReasonErrorSpan)
	}
	assert.Equal(t, 50, p.Stats().Pins)
	assert.LessOrEqual(t, len(p.pins.exp), 2*50+1024+1)
}

// TestOnPin: subscribers see new and extended pins once, with the
// expiry, after Pinned sees them; not unchanged ones; cancel stops them.
func TestOnPin(t *testing.T) {
	p, clk := newLocal(t, nil)
	type ev struct {
		id     pcommon.TraceID
		until  time.Time
		pinned bool
	}
	var got []ev
	cancel := p.OnPin(func(id pcommon.TraceID, until time.Time) {
		got = append(got, ev{id, until, p.Pinned(id)})
	})
	var second int
	cancel2 := p.OnPin(func(pcommon.TraceID, time.Time) { second++ })
	now := clk.Now()
	id := traceID(7, 1)
	p.Pin(id, now.Add(time.Hour), ReasonAlert)
	p.Pin(id, now.Add(time.Minute), ReasonAlert) // no change
	p.Pin(id, now.Add(2*time.Hour), ReasonAlert)
	require.Equal(t, []ev{{id, now.Add(time.Hour), true}, {id, now.Add(2 * time.Hour), true}}, got)
	assert.Equal(t, 2, second)
	cancel()
	cancel()
	p.Pin(traceID(7, 2), time.Time{}, ReasonAlert)
	assert.Len(t, got, 2)
	assert.Equal(t, 3, second)
	cancel2()
}

// TestLatestForState: the push/pull state holds the latest pins, newest
// first, one per trace, only live ones, at most state_pins.
func TestLatestForState(t *testing.T) {
	p, clk := newLocal(t, func(c *Config) { c.Gossip.StatePins = 3 })
	p.pins = newSet(p.cfg.MaxPins, 3, clk.Now)
	now := clk.Now()
	p.Pin(traceID(8, 1), now.Add(time.Hour), ReasonAlert)
	p.Pin(traceID(8, 2), now.Add(10*time.Second), ReasonAlert)
	p.Pin(traceID(8, 3), now.Add(time.Hour), ReasonAlert)
	p.Pin(traceID(8, 1), now.Add(2*time.Hour), ReasonAlert) // extended: newest again
	clk.Advance(20 * time.Second)                           // 8.2 expired
	got := p.pins.latest(nil)
	var ids []int
	for _, r := range got {
		ids = append(ids, int(r.id[15]))
	}
	assert.Equal(t, []int{1, 3}, ids)
	assert.Equal(t, ceilUnix(now.Add(2*time.Hour)), got[0].until)
}

// TestLifecycleLocal: without gossip, Start and Shutdown run the sweep
// only; Shutdown is safe without Start and twice; pins work before Start.
func TestLifecycleLocal(t *testing.T) {
	p, _ := newLocal(t, nil)
	require.NoError(t, p.Shutdown(context.Background()), "without Start")

	p, _ = newLocal(t, nil)
	assert.True(t, p.Pin(traceID(9, 1), time.Time{}, ReasonAlert), "before Start")
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	assert.Error(t, p.Start(context.Background(), componenttest.NewNopHost()))
	assert.True(t, p.Pinned(traceID(9, 1)))
	assert.Zero(t, p.Stats().Members)
	require.NoError(t, p.Shutdown(context.Background()))
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Error(t, p.Start(context.Background(), componenttest.NewNopHost()), "after Shutdown")
	assert.True(t, p.Pin(traceID(9, 2), time.Time{}, ReasonAlert), "after Shutdown: local")
}

// TestCoarseClock: while the sweep runs, Pinned compares with its clock,
// advanced every tick; a pin past its expiry counts until the next tick,
// never longer. After Shutdown the real clock is read again.
func TestCoarseClock(t *testing.T) {
	p, clk := newLocal(t, nil)
	id := traceID(10, 1)
	p.Pin(id, clk.Now().Add(10*time.Second), ReasonAlert)
	p.pins.tick() // as the running sweep does
	clk.Advance(11 * time.Second)
	assert.True(t, p.Pinned(id), "until the next tick")
	_, ok := p.PinnedUntil(id)
	assert.False(t, ok, "PinnedUntil reads the clock")
	p.pins.tick()
	assert.False(t, p.Pinned(id))
	assert.Equal(t, int64(1), p.Stats().Expired)

	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Zero(t, p.pins.coarse.Load(), "the stopped sweep leaves the clock to Pinned")
}
