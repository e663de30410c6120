package weftremotewriteextension

import (
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"
	"github.com/prometheus/prometheus/util/logging"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingWriter is a wlog.WriteTo that counts the samples a watcher
// hands it.
type countingWriter struct{ samples atomic.Int64 }

func (w *countingWriter) Append(s []record.RefSample) bool {
	w.samples.Add(int64(len(s)))
	return true
}
func (*countingWriter) AppendExemplars([]record.RefExemplar) bool                   { return true }
func (*countingWriter) AppendHistograms([]record.RefHistogramSample) bool           { return true }
func (*countingWriter) AppendFloatHistograms([]record.RefFloatHistogramSample) bool { return true }
func (*countingWriter) StoreSeries([]record.RefSeries, int)                         {}
func (*countingWriter) StoreMetadata([]record.RefMetadata)                          {}
func (*countingWriter) UpdateSeriesSegment([]record.RefSeries, int)                 {}
func (*countingWriter) SeriesReset(int)                                             {}

// TestStartHookSeesOnlyStarts runs a real Prometheus WAL watcher behind
// the hook. Its start is observed (the time after its own start time, the
// newest segment); once it runs, its "Done replaying WAL" (logged below
// Run when the first new sample arrives) must not be taken for the start
// of another queue pending at that moment: that moment can come before
// the other watcher's start time, and the samples stamped in between
// would be sent by neither (seen as samples lost under -race in
// TestHandOverExact).
func TestStartHookSeesOnlyStarts(t *testing.T) {
	dir := t.TempDir() // the watcher reads dir/wal, as in a Prometheus data dir
	walDir := filepath.Join(dir, "wal")
	w, err := wlog.New(nil, nil, walDir, compression.None)
	require.NoError(t, err)
	defer w.Close()
	var enc record.Encoder
	require.NoError(t, w.Log(enc.Series([]record.RefSeries{{Ref: 1, Labels: labels.FromStrings("__name__", "x")}}, nil)))

	hook := newStartHook(slog.DiscardHandler, walDir)
	wt := &countingWriter{}
	// Through the deduping handler, as remote.Storage logs.
	dedupe := logging.Dedupe(slog.New(hook), time.Minute)
	defer dedupe.Stop()
	watcher := wlog.NewWatcher(wlog.NewWatcherMetrics(nil), wlog.NewLiveReaderMetrics(nil), slog.New(dedupe), "q", wt, dir, false, false, false, nil)
	first, done := hook.expect()
	before := time.Now().UnixMilli()
	watcher.Start()
	defer watcher.Stop()
	var ws watcherStart
	select {
	case ws = <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher's start was not observed")
	}
	done()
	assert.GreaterOrEqual(t, ws.until, before, "observed after the watcher took its start time")
	_, last, err := wlog.Segments(walDir)
	require.NoError(t, err)
	assert.Equal(t, last, ws.segment)

	// Another queue's start is pending when the running watcher reads its
	// first new sample and logs that it is done replaying.
	second, done2 := hook.expect()
	defer done2()
	require.NoError(t, w.Log(enc.Samples([]record.RefSample{{Ref: chunks.HeadSeriesRef(1), T: time.Now().Add(time.Minute).UnixMilli(), V: 1}}, nil)))
	// Notify does not wait: one sent before the watcher waits for it is
	// dropped, and the watcher would read only at its 15 s read timeout
	// (seen on a loaded machine). So notify until it has read.
	require.Eventually(t, func() bool { watcher.Notify(); return wt.samples.Load() == 1 }, 10*time.Second, time.Millisecond, "the watcher sent the new sample")
	select {
	case got := <-second:
		t.Fatalf("a running watcher's log question was taken for another queue's start (%+v)", got)
	case <-time.After(100 * time.Millisecond):
	}
}
