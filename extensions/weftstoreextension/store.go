package weftstoreextension

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/exemplars"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/index"
	"github.com/weftobs/weft/extensions/weftstoreextension/internal/walsalvage"
)

// Store is the weft_store extension: the node's local store of recent
// metrics (a Prometheus TSDB with exemplars), spans and log records.
//
// Other components find it with FromHost.
//
// All methods are safe for concurrent use. Span and log methods work from
// creation on; metric appends and queries need Start and fail after
// Shutdown.
type Store struct {
	cfg    Config
	logger *zap.Logger
	tel    component.TelemetrySettings

	spans   *index.Spans
	logs    *index.Logs
	extLset labels.Labels // external_labels, sorted
	refused *refusals     // the store's own refusals, by reason and source
	now     func() time.Time

	mu      sync.RWMutex            // guards db, engine, tmpDir, metrics, guard, losses, pins and the lifecycle fields
	pins    *weftpinsextension.Pins // whose pinned traces are exempt from eviction; nil: none
	unpin   func()                  // ends the OnPin subscription (nil: none)
	db      *tsdb.DB
	engine  *promql.Engine // the process's one PromQL engine (Engine)
	tmpDir  string         // scratch head-chunk directory of the in-memory mode
	metrics *metricsWriter
	guard   *guard
	losses  []StorageLoss // what the start could not read of the WAL
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	telReg  metric.Registration

	// exStore keeps the exemplars (in place of the TSDB's exemplar
	// storage); exemplars adds those of a transaction after its samples
	// (see exemplarHold).
	exStore   *exemplars.Storage
	exemplars *exemplarHold
}

// headStripes is the number of stripes (lock and map shards) of the
// head's series: a quarter of the TSDB's default 16384. Every stripe holds
// maps of its own, so at a node's tens of thousands of series most of
// the default's stripes hold one or two series at the cost of a map each;
// 4096 stripes still give ~25 series per lock at max_series (100k), for a
// handful of appenders (scrape targets, rules, pipelines) at a time.
const headStripes = 4096

var errNotStarted = errors.New("weft_store: metrics storage is not open (extension not started or already shut down)")

func newStore(tel component.TelemetrySettings, cfg *Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{
		cfg:     *cfg,
		logger:  tel.Logger,
		tel:     tel,
		spans:   index.NewSpans(cfg.TracesMaxBytes),
		logs:    index.NewLogs(cfg.LogsMaxBytes),
		refused: newRefusals(tel.Logger),
		now:     time.Now,
		extLset: labels.FromMap(cfg.ExternalLabels),
	}, nil
}

// Dependencies makes the collector start a weft_pins extension named in
// pins before the store (any weft_pins works before its Start too).
func (s *Store) Dependencies() []component.ID {
	if id, ok := weftpinsextension.KeyID(s.cfg.Pins); ok {
		return []component.ID{id}
	}
	return nil
}

// Start finds the weft_pins extension (pins), opens the TSDB (replaying
// its WAL when directory is set) and starts the retention loop.
func (s *Store) Start(_ context.Context, host component.Host) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("weft_store: started twice")
	}
	if s.stopped {
		return errors.New("weft_store: start after shutdown")
	}
	pins, err := weftpinsextension.Find(host, s.cfg.Pins)
	if err != nil {
		return fmt.Errorf("weft_store: %w", err)
	}
	if pins != nil {
		s.pins = pins
		s.spans.SetPins(pins, s.cfg.PinnedTracesMaxBytes, s.now)
		s.logs.SetPins(pins, s.cfg.PinnedLogsMaxBytes, s.now)
		s.unpin = pins.OnPin(s.onPin)
	}
	dir := s.cfg.Directory
	if dir == "" {
		tmp, err := os.MkdirTemp("", "weftstore-")
		if err != nil {
			return fmt.Errorf("weft_store: create scratch directory: %w", err)
		}
		s.tmpDir, dir = tmp, tmp
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("weft_store: directory %q: %w", dir, err)
	}
	opts := tsdb.DefaultOptions()
	// Exemplars are kept by weft's own storage (internal/exemplars), not
	// the head's.
	opts.EnableExemplarStorage = false
	opts.MaxExemplars = 0
	opts.RetentionDuration = s.cfg.MetricsRetention.Milliseconds()
	opts.StripeSize = headStripes
	// The head accepts in-order samples down to its newest sample minus
	// half its chunk range: a range out of reach leaves the window to the
	// guard, which anchors it on the wall clock (see guard).
	opts.MinBlockDuration = headChunkRange.Milliseconds()
	opts.MaxBlockDuration = opts.MinBlockDuration
	if s.cfg.StartTimestamps {
		// Start timestamps need the XOR2 float chunk encoding and the
		// start-timestamp histogram encodings.
		opts.EnableSTStorage = true
		opts.FloatChunkEncoding = chunkenc.EncXOR2
		opts.EnableHistogramSTEncoding = true
	}
	if s.cfg.Directory == "" {
		opts.WALSegmentSize = -1 // no WAL
		opts.NoLockfile = true
	}
	db, salvaged, err := walsalvage.Open(dir, opts, s.logger, s.now())
	var losses []StorageLoss
	for _, l := range salvaged {
		losses = append(losses, StorageLoss(l))
		s.logger.Error("weft_store: metrics WAL damaged; started with what could be read",
			zap.String("reason", l.Reason), zap.String("file", l.File), zap.Int64("lost_bytes", l.Bytes),
			zap.String("moved_to", l.MovedTo), zap.String("error", l.Err))
	}
	s.losses = losses
	if err != nil {
		s.removeTmp()
		return fmt.Errorf("weft_store: open TSDB in %q: %w", dir, err)
	}
	// Retention is enforced by truncating the head (see retain); no blocks
	// are ever written, so the data lives in the head and its WAL only.
	db.DisableCompactions()
	// The WAL keeps samples until its segments are checkpointed, so a replay
	// can bring back samples that retention had cut: cut them again now.
	if err := db.Head().Truncate(time.Now().Add(-s.cfg.MetricsRetention).UnixMilli()); err != nil {
		s.logger.Warn("weft_store: retention after WAL replay", zap.Error(err))
	}
	exs, loss, err := openExemplars(s.cfg.MaxExemplars, s.cfg.Directory != "", dir, opts.WALCompression, db.Head(), s.logger)
	if loss != nil {
		losses = append(losses, *loss)
		s.losses = losses
		s.logger.Error("weft_store: exemplar WAL damaged; started with what could be read",
			zap.String("file", loss.File), zap.Int64("lost_bytes", loss.Bytes), zap.String("error", loss.Err))
	}
	if err != nil {
		_ = db.Close()
		s.removeTmp()
		return fmt.Errorf("weft_store: %w", err)
	}
	s.db = db
	s.exStore = exs
	s.guard = &guard{
		head:      db.Head(),
		window:    s.cfg.AppendableWindow.Milliseconds(),
		skew:      s.cfg.MaxFutureSkew.Milliseconds(),
		maxSeries: uint64(s.cfg.MaxSeries),
		now:       s.now,
		refused:   s.refused,
	}
	s.exemplars = newExemplarHold(exs)
	s.metrics = newMetricsWriter(db, s.guard, s.exemplars)
	s.engine = newEngine(s.logger, s.cfg.Query)
	if err := s.registerTelemetry(); err != nil {
		s.logger.Warn("weft_store: self-metrics unavailable", zap.Error(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.started = true
	s.wg.Add(1)
	go s.retentionLoop(ctx)
	return nil
}

// Shutdown stops the retention loop and closes the TSDB. It is safe without
// Start and safe to call twice.
func (s *Store) Shutdown(context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	cancel, unpin := s.cancel, s.unpin
	s.unpin = nil
	s.mu.Unlock()
	if unpin != nil {
		unpin()
	}
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()

	var errs []error
	// Unregister without holding s.mu: a running collection callback takes
	// s.mu to read the counters.
	s.mu.Lock()
	reg := s.telReg
	s.telReg = nil
	s.mu.Unlock()
	if reg != nil {
		errs = append(errs, reg.Unregister())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exStore != nil {
		if err := s.exStore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("weft_store: close exemplar WAL: %w", err))
		}
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("weft_store: close TSDB: %w", err))
		}
		s.db = nil
	}
	s.removeTmp()
	return errors.Join(errs...)
}

func (s *Store) removeTmp() {
	if s.tmpDir != "" {
		if err := os.RemoveAll(s.tmpDir); err != nil {
			s.logger.Warn("weft_store: remove scratch directory", zap.String("dir", s.tmpDir), zap.Error(err))
		}
		s.tmpDir = ""
	}
}

// onPin is weft_pins' OnPin subscriber: a pin of a trace whose spans or
// log records were already evicted is counted (Stats: PinsAfterEviction).
// It takes no lock of the indexes', only that of their memory of evicted
// traces.
func (s *Store) onPin(traceID pcommon.TraceID, _ time.Time) {
	s.spans.NotePin(traceID)
	s.logs.NotePin(traceID)
}

// retentionInterval is how often old samples are cut from the head.
func (s *Store) retentionInterval() time.Duration {
	return min(s.cfg.MetricsRetention/10, time.Minute)
}

func (s *Store) retentionLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.retentionInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := s.retain(now); err != nil {
				s.logger.Warn("weft_store: retention", zap.Error(err))
			}
			// Appends expire pinned records too; this covers an idle index.
			s.spans.ExpirePinned()
			s.logs.ExpirePinned()
		}
	}
}

// retain drops samples older than now - metrics_retention from the head
// (and checkpoints the WAL), and forgets cached series refs not used since
// the previous call.
func (s *Store) retain(now time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil
	}
	mint := now.Add(-s.cfg.MetricsRetention).UnixMilli()
	if err := s.db.Head().Truncate(mint); err != nil {
		return fmt.Errorf("truncate head before %d: %w", mint, err)
	}
	s.metrics.purge()
	return nil
}

// AppendTraces stores the spans of td in the span index, evicting the oldest
// spans beyond traces_max_bytes. It does not keep td.
func (s *Store) AppendTraces(_ context.Context, td ptrace.Traces) error {
	s.spans.Append(td)
	return nil
}

// AppendLogs stores the records of ld in the log index, evicting the oldest
// records beyond logs_max_bytes. It does not keep ld.
func (s *Store) AppendLogs(_ context.Context, ld plog.Logs) error {
	s.logs.Append(ld)
	return nil
}

// AppendMetrics converts md to Prometheus series (see README: naming and
// labels) and appends its samples and exemplars to the TSDB in one
// transaction. Samples the store refuses (too far in the future, beyond
// max_series) or the TSDB rejects (out of order, too old, ...) are counted
// by reason in Stats and the self-metrics; they do not fail the call.
func (s *Store) AppendMetrics(ctx context.Context, md pmetric.Metrics) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errNotStarted
	}
	return s.metrics.write(ctx, md)
}

// newEngine is the store's PromQL engine: Prometheus's (1m subquery step
// without a step, @ and negative offsets, plain parser) bounded by
// query::max_samples and query::timeout. It has no ActiveQueryTracker:
// each reader bounds its own concurrency (weft_query's query slots, the
// rule manager's groups).
func newEngine(logger *zap.Logger, cfg QueryConfig) *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		Logger:                   slog.New(zapslog.NewHandler(logger.Core())),
		MaxSamples:               cfg.MaxSamples,
		Timeout:                  cfg.Timeout,
		LookbackDelta:            cfg.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		Parser:                   parser.NewParser(parser.Options{}),
	})
}

// Engine returns the PromQL engine over the store, configured by query:
// one engine per store, shared by every reader (weft_query's API, the rules
// engine), as Prometheus serves its API and rule manager from one engine.
// Readers run it over Queryable() with their own context deadline and
// bound expressions (length, nodes) before handing them to it. It is nil
// before Start and stays usable after Shutdown (its queries then fail as
// the store's queriers do).
func (s *Store) Engine() *promql.Engine {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.engine
}

// Queryable returns the TSDB as a storage.Queryable for the promql engine
// and the rules manager. It may be taken before Start; its queriers fail
// while the store is not open.
func (s *Store) Queryable() storage.Queryable { return queryable{s} }

// ExemplarQueryable returns the exemplar storage, under the same
// conditions as Queryable.
func (s *Store) ExemplarQueryable() storage.ExemplarQueryable { return queryable{s} }

type queryable struct{ s *Store }

func (q queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q.s.mu.RLock()
	defer q.s.mu.RUnlock()
	if q.s.db == nil {
		return nil, errNotStarted
	}
	return q.s.db.Querier(mint, maxt)
}

func (q queryable) ExemplarQuerier(context.Context) (storage.ExemplarQuerier, error) {
	q.s.mu.RLock()
	defer q.s.mu.RUnlock()
	if q.s.db == nil {
		return nil, errNotStarted
	}
	return q.s.exStore, nil
}

// Handle is how a pipeline component (the weft_store exporter and
// processor) reaches the store its configuration names: Find at Start,
// Get on the data path, which returns nil before Find succeeded.
type Handle struct {
	id component.ID
	st atomic.Pointer[Store]
}

// NewHandle returns a handle on the store extension id.
func NewHandle(id component.ID) *Handle { return &Handle{id: id} }

// Find looks the store up in host (FromHost).
func (h *Handle) Find(_ context.Context, host component.Host) error {
	st, err := FromHost(host, h.id)
	if err != nil {
		return err
	}
	h.st.Store(st)
	return nil
}

// Get returns the store Find found, or nil.
func (h *Handle) Get() *Store { return h.st.Load() }

// FromHost returns the started weft_store extension id of host, or an
// error that names what is wrong in the configuration. Components that
// use the store call it from their Start (extensions start before
// pipelines, and a component that declares the store among its
// Dependencies starts after it).
func FromHost(host component.Host, id component.ID) (*Store, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("store: extension %q is not configured; add it under extensions: and service.extensions", id)
	}
	st, ok := ext.(*Store)
	if !ok {
		return nil, fmt.Errorf("store: extension %q is a %T, not the weft_store extension", id, ext)
	}
	return st, nil
}
