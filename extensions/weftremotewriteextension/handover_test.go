package weftremotewriteextension

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ticker appends, until stopped, one sample per millisecond to the series
// tick stamped with the clock, and to the series late stamped 300 ms
// earlier (a scrape still in flight when the queue starts); every tenth
// tick sample carries an exemplar. It records what it appended.
type ticker struct {
	stop    atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	ts      map[string][]int64 // appended timestamps by series key
	exs     int                // exemplars appended
	refused int                // appends the WAL refused (not open yet)
}

var (
	tickLabels = labels.FromStrings("__name__", "tick")
	lateLabels = labels.FromStrings("__name__", "late")
)

func startTicker(rw *RemoteWrite) *ticker {
	tk := &ticker{ts: map[string][]int64{}}
	tk.wg.Add(1)
	go func() {
		defer tk.wg.Done()
		last := int64(0)
		for !tk.stop.Load() {
			now := time.Now().UnixMilli()
			if now == last {
				time.Sleep(100 * time.Microsecond)
				continue
			}
			last = now
			app := rw.Appendable().Appender(context.Background())
			ref, err1 := app.Append(0, tickLabels, now, float64(now))
			_, err2 := app.Append(0, lateLabels, now-300, float64(now))
			ex := now%10 == 0
			if ex && err1 == nil {
				_, err1 = app.AppendExemplar(ref, tickLabels, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", "t"), Value: 1, Ts: now, HasTs: true})
			}
			if err1 != nil || err2 != nil || app.Commit() != nil {
				_ = app.Rollback()
				tk.mu.Lock()
				tk.refused++
				tk.mu.Unlock()
				continue
			}
			tk.mu.Lock()
			tk.ts[seriesKey(prompb.FromLabels(tickLabels, nil))] = append(tk.ts[seriesKey(prompb.FromLabels(tickLabels, nil))], now)
			tk.ts[seriesKey(prompb.FromLabels(lateLabels, nil))] = append(tk.ts[seriesKey(prompb.FromLabels(lateLabels, nil))], now-300)
			if ex {
				tk.exs++
			}
			tk.mu.Unlock()
		}
	}()
	return tk
}

func (tk *ticker) halt() {
	tk.stop.Store(true)
	tk.wg.Wait()
}

// checkOnce compares what the sink got of each series with what was
// appended: nothing missing, nothing extra, and at most maxDup
// timestamps received twice (the millisecond of the hand-over).
func (tk *ticker) checkOnce(t *testing.T, sk *sink, maxDup int) {
	t.Helper()
	tk.mu.Lock()
	defer tk.mu.Unlock()
	for k, want := range tk.ts {
		n := map[int64]int{}
		for _, s := range sk.got(k) {
			n[s.Timestamp]++
		}
		missing, dups := 0, 0
		for _, ts := range want {
			switch c := n[ts]; {
			case c == 0:
				missing++
			case c > 1:
				dups += c - 1
			}
			delete(n, ts)
		}
		t.Logf("%s: appended %d, missing %d, received twice %d", k, len(want), missing, dups)
		assert.Zero(t, missing, "%s: appended samples not received", k)
		assert.Empty(t, n, "%s: received samples never appended", k)
		assert.LessOrEqual(t, dups, maxDup, "%s: samples received twice", k)
	}
}

// TestHandOverExact: while the queues start, samples keep arriving, some
// stamped before a queue's start and committed after it; each endpoint's
// catch-up and queue between them send each exactly once (one
// millisecond's samples at most twice, see handover.go), across a restart
// with unsent data from the previous run. Two endpoints: the second's
// watcher start is not logged (the remote storage drops the repeated
// message). The old hand-over (a one-second overlap) sent about a thousand
// tick samples twice.
func TestHandOverExact(t *testing.T) {
	sk, url := newSink(t)
	sk2, url2 := newSink(t)
	dir := t.TempDir()
	cfg := testConfig(dir, url)
	cfg.Endpoints = append(cfg.Endpoints, cfg.Endpoints[0])
	cfg.Endpoints[1].Name, cfg.Endpoints[1].URL = "second", url2
	cfg.FlushDeadline = 100 * time.Millisecond

	// Run 1: the endpoints are down; nothing is sent.
	sk.setDown(true)
	sk2.setDown(true)
	rw1, err := newRemoteWrite(nopSettings(), cfg)
	require.NoError(t, err)
	rw1.grace = 0
	require.NoError(t, rw1.Start(context.Background(), nil))
	tk := startTicker(rw1)
	time.Sleep(300 * time.Millisecond)
	tk.halt()
	require.NoError(t, rw1.Shutdown(context.Background()))
	sk.setDown(false)
	sk2.setDown(false)

	// Run 2: appends start with Start and go on through the catch-up, the
	// switch and the grace period.
	rw2, err := newRemoteWrite(nopSettings(), cfg)
	require.NoError(t, err)
	rw2.grace = 1500 * time.Millisecond
	require.NoError(t, rw2.Start(context.Background(), nil))
	t.Cleanup(func() { require.NoError(t, rw2.Shutdown(context.Background())) })
	tk.stop.Store(false)
	tk2 := startTicker(rw2)
	time.Sleep(time.Second)
	tk2.halt()
	waitLive(t, rw2)
	for k, ts := range tk2.ts {
		tk.ts[k] = append(tk.ts[k], ts...)
	}
	tk.exs += tk2.exs
	require.Zero(t, tk.refused+tk2.refused, "appends refused")
	for i, s := range []*sink{sk, sk2} {
		assert.Eventually(t, func() bool {
			return s.total() >= len(tk.ts[seriesKey(prompb.FromLabels(tickLabels, nil))])*2
		}, 30*time.Second, 10*time.Millisecond, "endpoint %d: got %d samples", i, s.total())
		time.Sleep(300 * time.Millisecond) // anything sent twice arrives too
		tk.checkOnce(t, s, 5)
		got := len(s.gotExemplars(seriesKey(prompb.FromLabels(tickLabels, nil))))
		t.Logf("endpoint %d: exemplars appended %d, received %d", i, tk.exs, got)
		assert.Equal(t, tk.exs, got, "endpoint %d: each exemplar received once", i)
		assert.Positive(t, rw2.catchups[i].sent.Samples.Load(), "endpoint %d: the catch-up sent run 1's samples", i)
	}
}
