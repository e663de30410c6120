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

// Why a catch-up: a storage/remote queue's WAL watcher sends only samples
// stamped after the moment it starts, so whatever a previous run left
// unsent (an endpoint down, then a restart or SIGKILL) would stay in the
// WAL unsent. Before an endpoint's queue starts, its catch-up reads the WAL
// and sends what is stamped after the endpoint's progress mark. Prometheus
// 2.x receivers refuse a sample older than the newest of its series, so
// the catch-up must be done before the queue sends anything new: only then
// does the queue start (startQueue). Right after that it reads once more,
// for what was appended while its last send waited, and for a grace period
// it goes on sending samples stamped before the switch that reach the WAL
// late (a scrape in flight at the switch).

const (
	// switchMargin is added to the switch time: samples stamped up to it
	// are the catch-up's, later ones the queue's. The queue's watcher takes
	// its start time a moment after the switch; the margin makes the two
	// overlap (an identical sample sent twice is accepted) instead of
	// leaving a gap.
	switchMargin = time.Second
	// defaultCatchupGrace is how long the catch-up keeps reading after the
	// switch: longer than a scrape's timeout.
	defaultCatchupGrace = time.Minute
	// readPoll is how often the catch-up looks for new WAL records during
	// its grace period, and how long it waits after a read error.
	readPoll = time.Second
	// progressInterval is how often the progress marks are recorded.
	progressInterval = time.Second
)

// catchupStats is the state of one endpoint's catch-up.
type catchupStats struct {
	done atomic.Bool // the grace period is over; the queue alone sends
	live atomic.Bool // the queue runs
	sent catchup.Stats
}

// catchUp sends endpoint i what the WAL holds after its progress mark,
// starts its queue, and sends late records for the grace period.
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
	from := r.prog.Mark(rw.Name)
	tail := catchup.NewTail(filepath.Join(r.cfg.WAL.Directory, "wal"), r.slog)
	defer tail.Close()
	t0 := time.Now()
	for {
		caughtUp, err := tail.Read(func(rec []byte) error { return s.Record(ctx, rec, from, math.MaxInt64) })
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
	if err := r.startQueue(i); err != nil {
		log.Error("weft_remote_write: start queue", zap.Error(err))
		return
	}
	st.live.Store(true)
	until := time.Now().Add(switchMargin).UnixMilli()
	end := time.Now().Add(r.grace)
	// At least one pass: what was appended while the last send of the
	// first loop waited for the endpoint is stamped before the switch.
	for first := true; first || time.Now().Before(end); first = false {
		_, err := tail.Read(func(rec []byte) error { return s.Record(ctx, rec, from, until) })
		if err == nil {
			err = s.Flush(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("weft_remote_write: catch-up read failed during the grace period", zap.Error(err))
			tail.Close()
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
