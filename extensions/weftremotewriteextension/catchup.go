package weftremotewriteextension

import (
	"context"
	"math"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/extensions/weftremotewriteextension/internal/catchup"
)

// Why a catch-up: a storage/remote queue's WAL watcher sends only what
// this run writes (it skips the samples of the segments that exist when it
// starts, and of its first segment the samples stamped before it starts),
// so whatever a previous run left unsent (an endpoint down, then a restart
// or SIGKILL) would stay in the WAL unsent. Before an endpoint's queue
// starts, its catch-up reads the previous runs' segments and sends what is
// stamped after the endpoint's progress mark. Prometheus 2.x receivers
// refuse a sample older than the newest of its series, so the catch-up must
// be done before the queue sends anything new: only then does the queue
// start (startQueue). After that the catch-up goes on reading this run's
// segments and sends what the queue skips (see handover.go): what was
// appended while it caught up, and for a grace period what reaches the WAL
// late stamped before the queue started (a scrape in flight at the switch).

const (
	// defaultCatchupGrace is how long the catch-up keeps reading after the
	// switch: longer than a scrape's timeout.
	defaultCatchupGrace = time.Minute
	// readPoll is how often the catch-up looks for new WAL records during
	// its grace period, and how long it waits after a read error.
	readPoll = time.Second
	// progressInterval is how often the progress marks are recorded.
	progressInterval = time.Second
	// watcherStartWait bounds the wait for a queue's watcher to start (it
	// starts in a goroutine right after its queue).
	watcherStartWait = 10 * time.Second
	// switchMargin is the overlap taken when the watcher's start was not
	// seen: samples stamped up to this long after the switch are sent by
	// both rather than by neither.
	switchMargin = time.Second
)

// catchupStats is the state of one endpoint's catch-up.
type catchupStats struct {
	done atomic.Bool // the grace period is over; the queue alone sends
	live atomic.Bool // the queue runs
	sent catchup.Stats
	// passes over this run's segments after the switch (one, and one for
	// each late commit seen at a poll).
	passes atomic.Int64
}

// catchUp sends endpoint i what the WAL holds after its progress mark,
// starts its queue, and sends what the queue skips for the grace period.
func (r *RemoteWrite) catchUp(ctx context.Context, i int) {
	rw := r.pcfg.RemoteWriteConfigs[i]
	st := r.catchups[i]
	log := r.logger.With(zap.String("endpoint", rw.Name))
	if r.prog.Damaged != nil {
		log.Warn("weft_remote_write: progress file unreadable", zap.Error(r.prog.Damaged))
	}
	s, err := catchup.NewSender(rw, r.pcfg.GlobalConfig.ExternalLabels, func(t int64) { r.prog.Advance(rw.Name, t) }, &st.sent, log)
	if err != nil {
		// The configuration was checked; a client that cannot be built
		// here cannot be built for the queue either.
		log.Error("weft_remote_write: catch-up client", zap.Error(err))
		return
	}
	defer s.Close()
	all := catchup.All(r.prog.Mark(rw.Name))
	tail := catchup.NewTail(filepath.Join(r.cfg.WAL.Directory, "wal"), r.slog)
	defer tail.Close()
	t0 := time.Now()
	// The previous runs' segments, before this run's first.
	for {
		caughtUp, err := tail.Read(r.firstSeg, func(rec []byte) error { return s.Record(ctx, rec, all) })
		if err == nil {
			err = s.Flush(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil && caughtUp {
			break
		}
		if err != nil {
			log.Warn("weft_remote_write: catch-up read failed; starting over from the WAL's checkpoint", zap.Error(err))
			tail.Close()
			if !sleepCtx(ctx, readPoll) {
				return
			}
		}
	}
	if sent := &st.sent; sent.Samples.Load()+sent.Exemplars.Load()+sent.Histograms.Load()+sent.Refused.Load() > 0 {
		log.Info("weft_remote_write: sent what the previous run left unsent",
			zap.Int64("samples", sent.Samples.Load()), zap.Int64("exemplars", sent.Exemplars.Load()),
			zap.Int64("histograms", sent.Histograms.Load()), zap.Int64("refused", sent.Refused.Load()),
			zap.Duration("took", time.Since(t0)))
	}
	ws, err := r.startQueue(ctx, i)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		log.Error("weft_remote_write: start queue", zap.Error(err))
		return
	}
	st.live.Store(true)
	early := all                                                              // segments before the watcher's first: it skips their samples
	late := catchup.Window{From: all.From, Until: ws.until, Exemplars: false} // the watcher's: it sends what is stamped after its start, and every exemplar
	window := func() catchup.Window {
		if tail.Segment() < ws.segment {
			return early
		}
		return late
	}
	end := time.Now().Add(r.grace)
	// From here on a commit holding a sample stamped up to ws.until is
	// counted; one written before is found by the first pass.
	r.late.raise(ws.until)
	// At least one pass: what was appended while the first loop caught up.
	// After it, a pass only when a late commit came (a scrape in flight at
	// the switch): the other records are the queue's alone, and decoding
	// them for nothing was ~7 % of weft's CPU in the scrape-agent window.
	seen, retry := int64(0), false
	for first := true; first || time.Now().Before(end); first = false {
		if n := r.late.n.Load(); first || retry || n != seen {
			seen = n
			st.passes.Add(1)
			_, err := tail.Read(math.MaxInt, func(rec []byte) error { return s.Record(ctx, rec, window()) })
			if err == nil {
				err = s.Flush(ctx)
			}
			if ctx.Err() != nil {
				return
			}
			if retry = err != nil; retry {
				log.Warn("weft_remote_write: catch-up read failed during the grace period", zap.Error(err))
				tail.Close()
			}
		}
		if time.Now().Before(end) && !sleepCtx(ctx, readPoll) {
			return
		}
	}
	st.done.Store(true)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
