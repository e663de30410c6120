package weftremotewriteextension

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/agent"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/weftobs/weft/extensions/weftremotewriteextension/internal/catchup"
	"github.com/weftobs/weft/internal/promappend"
)

// RemoteWrite is the weft_remote_write extension: a tsdb/agent WAL that
// storage/remote queue managers send to the configured endpoints.
//
// Writers find it with FromHost (or among the host's extensions by its
// Appendable method) and append through Appendable.
type RemoteWrite struct {
	cfg         Config
	pcfg        *promconfig.Config // cfg translated; RemoteWriteConfigs in endpoint order
	logger      *zap.Logger
	slog        *slog.Logger // to startHook, for the Prometheus libraries
	hook        *startHook
	tel         component.TelemetrySettings
	now         func() time.Time
	grace       time.Duration // catch-up grace period (defaultCatchupGrace)
	segmentSize int           // WAL segment size; 0: the agent's default (tests use small ones)

	mu       sync.RWMutex // guards the fields below
	db       *agent.DB
	rs       *remote.Storage
	fanout   storage.Storage     // db, then rs (which only tracks the ingestion rate)
	reg      prometheus.Gatherer // the queues' and the WAL's metrics
	queues   prometheus.Gatherer // the queues' only: what the progress marks read each second
	prog     *catchup.Progress
	firstSeg int             // the WAL segment this run started writing: earlier ones are the previous runs'
	catchups []*catchupStats // by endpoint
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	telReg   metric.Registration

	tooFar atomic.Int64 // samples and histograms refused: stamped after max_future_skew
	late   *lateCommits // commits the catch-ups in their grace period must read

	qmu  sync.Mutex // serialises ApplyConfig; guards live
	live []bool     // by endpoint: its queue runs (catch-up over)
}

var errNotStarted = errors.New("weft_remote_write: WAL is not open (extension not started or already shut down)")

func newRemoteWrite(tel component.TelemetrySettings, cfg *Config) (*RemoteWrite, error) {
	pcfg, err := cfg.prometheusConfig()
	if err != nil {
		return nil, err
	}
	logger := tel.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	hook := newStartHook(zapslog.NewHandler(logger.Core()), filepath.Join(cfg.WAL.Directory, "wal"))
	return &RemoteWrite{
		cfg:    *cfg,
		pcfg:   pcfg,
		logger: logger,
		slog:   slog.New(hook),
		hook:   hook,
		tel:    tel,
		now:    time.Now,
		grace:  defaultCatchupGrace,
		late:   newLateCommits(),
		live:   make([]bool, len(pcfg.RemoteWriteConfigs)),
	}, nil
}

// keepRegisterer registers collectors on its registry but leaves them
// there when the library unregisters them: the queues unregister their
// metrics when they stop, and the last progress record needs them after
// the stop. Each extension has its own registry, dropped at Shutdown;
// nothing registers the same collector twice during one run (queues start
// once, see startQueue).
type keepRegisterer struct{ *prometheus.Registry }

func (keepRegisterer) Unregister(prometheus.Collector) bool { return true }

// walStripes is the number of stripes of the WAL's series (the agent's
// default is 16384): as weft_store's head (headStripes there), 4096 stripes
// hold a node's series with a fraction of the maps.
const walStripes = 4096

// Start opens the WAL (replaying what the previous run wrote) and starts,
// for each endpoint, the catch-up that sends what the previous run left
// unsent and then starts the endpoint's queue.
func (r *RemoteWrite) Start(_ context.Context, _ component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("weft_remote_write: started twice")
	}
	if r.stopped {
		return errors.New("weft_remote_write: start after shutdown")
	}
	dir := r.cfg.WAL.Directory
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("weft_remote_write: wal::directory %q: %w", dir, err)
	}
	names := make([]string, len(r.pcfg.RemoteWriteConfigs))
	for i, rw := range r.pcfg.RemoteWriteConfigs {
		names[i] = rw.Name
	}
	prog, err := catchup.LoadProgress(dir, names, r.now())
	if err != nil {
		return fmt.Errorf("weft_remote_write: %w", err)
	}
	// Two registries: the progress marks gather the queues' metrics each
	// second, and the WAL's include its size, a walk of its directory.
	queues, wal := prometheus.NewRegistry(), prometheus.NewRegistry()
	rs := remote.NewStorage(r.slog, keepRegisterer{queues}, func() (int64, error) { return 0, agent.ErrUnsupported }, dir, r.cfg.FlushDeadline, nil, false)
	opts := agent.DefaultOptions()
	opts.StripeSize = walStripes
	opts.TruncateFrequency = r.cfg.WAL.TruncateFrequency
	opts.MinWALTime = r.cfg.WAL.MinWALTime.Milliseconds()
	opts.MaxWALTime = r.cfg.WAL.MaxWALTime.Milliseconds()
	if r.segmentSize > 0 {
		opts.WALSegmentSize = r.segmentSize
	}
	db, err := agent.Open(r.slog, keepRegisterer{wal}, rs, dir, opts)
	if err != nil {
		_ = rs.Close()
		return fmt.Errorf("weft_remote_write: open WAL in %q: %w", dir, err)
	}
	db.SetWriteNotified(rs)
	// Opening the WAL started a new segment (wlog starts one after the
	// newest): this run's records are in it and the ones after it.
	_, firstSeg, err := wlog.Segments(filepath.Join(dir, "wal"))
	if err != nil {
		_ = db.Close()
		_ = rs.Close()
		return fmt.Errorf("weft_remote_write: list WAL segments in %q: %w", dir, err)
	}
	r.firstSeg = firstSeg
	r.db, r.rs, r.prog = db, rs, prog
	r.reg, r.queues = prometheus.Gatherers{queues, wal}, queues
	r.fanout = storage.NewFanout(r.slog, db, rs)
	r.catchups = make([]*catchupStats, len(names))
	for i := range r.catchups {
		r.catchups[i] = &catchupStats{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.started = true
	for i := range r.pcfg.RemoteWriteConfigs {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.catchUp(ctx, i)
		}()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.progressLoop(ctx)
	}()
	if err := r.registerTelemetry(); err != nil {
		r.logger.Warn("weft_remote_write: self-metrics unavailable", zap.Error(err))
	}
	return nil
}

// Shutdown stops the catch-ups, lets the queues send what they hold for
// at most flush_deadline, closes the WAL and records how far each endpoint
// got. Safe without Start and safe twice.
func (r *RemoteWrite) Shutdown(context.Context) error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	cancel, rs, db := r.cancel, r.rs, r.db
	r.fanout = nil // new appenders fail from here on
	r.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	r.wg.Wait()
	var errs []error
	// The queues flush within flush_deadline, then the WAL closes. The
	// marks move past what the flush sent only if it dropped nothing.
	r.recordProgress()
	before := gather(r.queues)
	if err := rs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("weft_remote_write: stop queues: %w", err))
	}
	if err := db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("weft_remote_write: close WAL: %w", err))
	}
	r.advanceMarks(gather(r.queues), gather(r.queues), before)
	if err := r.prog.Save(); err != nil {
		errs = append(errs, fmt.Errorf("weft_remote_write: %w", err))
	}
	r.mu.Lock()
	if r.telReg != nil {
		if err := r.telReg.Unregister(); err != nil {
			errs = append(errs, err)
		}
		r.telReg = nil
	}
	r.mu.Unlock()
	return errors.Join(errs...)
}

// Appendable returns the WAL as a storage.Appendable: a committed append
// is in the WAL, and from there every endpoint's queue sends it. It may be
// taken before Start; its appenders fail every call while the WAL is not
// open. Metadata (UpdateMetadata) is accepted and not sent (see README).
func (r *RemoteWrite) Appendable() storage.Appendable { return appendable{r} }

type appendable struct{ r *RemoteWrite }

// newSeriesPerCommit bounds the series record of one commit (~200 bytes
// per Envoy series: under 1 MB) when a writer splits a large first
// scrape; the WAL only feeds the queues, which send by sample, not by
// transaction.
const newSeriesPerCommit = 4096

// NewSeriesPerCommit makes the appendable a promappend.Splittable.
func (appendable) NewSeriesPerCommit() int { return newSeriesPerCommit }

// samplesPerCommit bounds a commit's samples when a writer splits a
// scrape by samples: the agent appender's pending buffers and the WAL
// record stay near 200 KB and are reused, where a 50k-sample scrape grew
// them afresh each time.
const samplesPerCommit = 8192

// SamplesPerCommit makes the appendable a promappend.SampleSplittable.
func (appendable) SamplesPerCommit() int { return samplesPerCommit }

func (a appendable) Appender(ctx context.Context) storage.Appender {
	a.r.mu.RLock()
	defer a.r.mu.RUnlock()
	if a.r.fanout == nil {
		return promappend.Closed{Err: errNotStarted}
	}
	return newFutureGuard(a.r.fanout.Appender(ctx), a.r.now(), a.r.cfg.MaxFutureSkew, &a.r.tooFar, a.r.late)
}

// AppendableV2 is Appendable for writers of the newer appender
// interface (a start timestamp with each sample, exemplars in the
// options). Start timestamps are not kept: the agent's st-storage is off.
func (r *RemoteWrite) AppendableV2() storage.AppendableV2 { return appendable{r} }

func (a appendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	a.r.mu.RLock()
	defer a.r.mu.RUnlock()
	if a.r.fanout == nil {
		return promappend.ClosedV2{Err: errNotStarted}
	}
	return newFutureGuardV2(a.r.fanout.AppenderV2(ctx), a.r.now(), a.r.cfg.MaxFutureSkew, &a.r.tooFar, a.r.late)
}

// startQueue adds endpoint i to the queues that run and returns where
// its watcher started (see handover.go). ApplyConfig keeps the queues of
// endpoints already running (their configuration is the same) and starts
// the new one. Starts are serialised, the wait for the watcher included.
func (r *RemoteWrite) startQueue(ctx context.Context, i int) (watcherStart, error) {
	r.qmu.Lock()
	defer r.qmu.Unlock()
	r.live[i] = true
	cfg := *r.pcfg
	cfg.RemoteWriteConfigs = nil
	for j, rw := range r.pcfg.RemoteWriteConfigs {
		if r.live[j] {
			cfg.RemoteWriteConfigs = append(cfg.RemoteWriteConfigs, rw)
		}
	}
	started, done := r.hook.expect()
	defer done()
	if err := r.rs.ApplyConfig(&cfg); err != nil {
		return watcherStart{}, err
	}
	t := time.NewTimer(watcherStartWait)
	defer t.Stop()
	select {
	case ws := <-started:
		return ws, nil
	case <-t.C:
		r.logger.Warn("weft_remote_write: the queue's WAL watcher was not seen starting; samples stamped around the switch may be sent twice",
			zap.String("endpoint", r.pcfg.RemoteWriteConfigs[i].Name), zap.Duration("waited", watcherStartWait))
		return watcherStart{until: time.Now().Add(switchMargin).UnixMilli(), segment: math.MaxInt}, nil
	case <-ctx.Done():
		return watcherStart{}, ctx.Err()
	}
}

// FromHost returns the weft_remote_write extension configured as id.
func FromHost(host component.Host, id component.ID) (*RemoteWrite, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("remote write: extension %q is not configured; add it under extensions: and service.extensions", id)
	}
	rw, ok := ext.(*RemoteWrite)
	if !ok {
		return nil, fmt.Errorf("remote write: extension %q is a %T, not the weft_remote_write extension", id, ext)
	}
	return rw, nil
}
