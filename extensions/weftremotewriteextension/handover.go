package weftremotewriteextension

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/tsdb/wlog"
)

// The hand-over between an endpoint's catch-up and its queue. A queue's
// WAL watcher, when it starts, takes the time S (milliseconds) and lists
// the WAL's segments; of the samples and histograms it then sends only
// those stamped after S in the newest segment L and the segments after it,
// and it sends every exemplar of those segments. So the catch-up sends,
// of what the WAL holds after the endpoint's mark, exactly the rest:
// everything from segments before L, and from L on the samples and
// histograms stamped up to S.
//
// Neither S nor L is exported. Right after taking both (between them only
// the listing of the WAL directory) the watcher, in Watcher.Run, logs that
// it replays the WAL. The log record itself may never arrive (the remote
// storage drops a message repeated within a minute, so a second endpoint's
// is lost), but the logger asks its handler whether Info is enabled before
// that: startHook answers, and when the question comes from Watcher.Run
// itself (not from a function it calls) while a queue start is pending, the
// moment bounds S from above and the WAL's newest segment is L. Queue
// starts are serialised, so the pending one is the asker. The catch-up
// takes that moment for S: samples stamped between S and that moment (the
// directory listing: well under a millisecond, a few under the race
// detector on a loaded machine) may be sent by both (an identical sample
// twice, which receivers keep once); none is sent by neither.

// watcherRun is the function a Prometheus WAL watcher takes its start time
// in and logs from right after (tsdb/wlog at v0.315.1).
const (
	watcherRun    = prometheusPkg + "tsdb/wlog.(*Watcher).Run"
	prometheusPkg = "github.com/prometheus/prometheus/"
	promLogging   = prometheusPkg + "util/logging." // the deduping handler remote.Storage logs through
)

// watcherStart is what the catch-up learns of a watcher's start.
type watcherStart struct {
	until   int64 // the watcher's start time S, ms (an upper bound; see above)
	segment int   // L: the newest WAL segment when it started
}

// startHook is a slog.Handler in front of the handler the Prometheus
// libraries log to: it passes every record on and tells a pending queue
// start when that queue's watcher has started.
type startHook struct {
	inner slog.Handler
	st    *hookState
}

type hookState struct {
	walDir  string
	pending atomic.Pointer[chan watcherStart] // the queue start waiting, if any
}

func newStartHook(inner slog.Handler, walDir string) *startHook {
	return &startHook{inner: inner, st: &hookState{walDir: walDir}}
}

// expect makes the next watcher start the pending one; the channel gets
// one value. Call it before the queue starts, and done after, with no
// other queue start in between.
func (h *startHook) expect() (started <-chan watcherStart, done func()) {
	ch := make(chan watcherStart, 1)
	h.st.pending.Store(&ch)
	return ch, func() { h.st.pending.CompareAndSwap(&ch, nil) }
}

// Enabled reports what the inner handler says; an Info question asked
// from a watcher's Run while a queue start is pending also tells that
// start.
func (h *startHook) Enabled(ctx context.Context, l slog.Level) bool {
	if l >= slog.LevelInfo && h.st.pending.Load() != nil {
		h.st.observe()
	}
	return h.inner.Enabled(ctx, l)
}

func (st *hookState) observe() {
	now := time.Now()
	var pcs [16]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	// The asker is the first Prometheus frame (past the remote storage's
	// log deduper, a handler in between): Run itself ("Replaying WAL"),
	// not a function Run calls. A running watcher logs "Done
	// replaying WAL" from readSegment, below Run, when it reaches its
	// first new sample: taken for the pending start of another queue, that
	// moment may come before the new watcher's start, and the samples
	// stamped in between would be sent by neither.
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, prometheusPkg) && !strings.HasPrefix(f.Function, promLogging) {
			if f.Function != watcherRun {
				return
			}
			break
		}
		if !more {
			return
		}
	}
	ch := st.pending.Swap(nil)
	if ch == nil {
		return
	}
	ws := watcherStart{until: now.UnixMilli(), segment: math.MaxInt}
	// Unlisted, every segment counts as before L: the catch-up then sends
	// some of what the queue sends too, rather than miss any.
	if _, last, err := wlog.Segments(st.walDir); err == nil {
		ws.segment = last
	}
	*ch <- ws
}

func (h *startHook) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h *startHook) WithAttrs(as []slog.Attr) slog.Handler {
	return &startHook{inner: h.inner.WithAttrs(as), st: h.st}
}

func (h *startHook) WithGroup(name string) slog.Handler {
	return &startHook{inner: h.inner.WithGroup(name), st: h.st}
}
