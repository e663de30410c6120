package evidencesamplingprocessor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/weftobs/weft/extensions/weftpinsextension"
)

// counts are one processor's counters, read by the self-metrics and tests.
type counts struct {
	kept    [numKept]atomic.Int64
	dropped [numDropped]atomic.Int64
	pins    atomic.Int64 // pins this processor set that were new or extended
	late    atomic.Int64 // pins that came after this node dropped the trace's data
}

// recentWindow is how many dropped traces are remembered to count pins
// that come too late for them (about 1 MB).
const recentWindow = 16384

// recentDrops remembers the last recentWindow traces whose waiting data
// was dropped, so that a pin arriving for one of them is counted as late
// (that trace leaves this node incomplete).
type recentDrops struct {
	mu   sync.Mutex
	ring [recentWindow]pcommon.TraceID
	next int
	full bool
	set  map[pcommon.TraceID]struct{}
}

func (r *recentDrops) add(ids []pcommon.TraceID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = make(map[pcommon.TraceID]struct{}, recentWindow)
	}
	for _, id := range ids {
		if _, ok := r.set[id]; ok {
			continue
		}
		if r.full {
			delete(r.set, r.ring[r.next])
		}
		r.ring[r.next] = id
		r.set[id] = struct{}{}
		if r.next++; r.next == recentWindow {
			r.next, r.full = 0, true
		}
	}
}

// late reports whether id was dropped recently, once.
func (r *recentDrops) late(id pcommon.TraceID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; !ok {
		return false
	}
	delete(r.set, id) // its ring slot is overwritten in turn; a delete of a missing key is harmless
	return true
}

// signalKind names what one processor instance handles, for self-metric
// names and log lines.
type signalKind struct {
	items     string // "spans", "log_records"
	bytes     string // "span_bytes", "log_bytes"
	pinReason weftpinsextension.Reason
}

var (
	signalSpans = signalKind{items: "spans", bytes: "span_bytes", pinReason: weftpinsextension.ReasonErrorSpan}
	signalLogs  = signalKind{items: "log_records", bytes: "log_bytes", pinReason: weftpinsextension.ReasonErrorLog}
)

// core is the part of the processor both signals share: the pins, the
// sampler, the decision buffer, its one worker goroutine and the counters.
// The signal's code splits batches into chunks and sends decided chunks
// on (send).
type core struct {
	cfg     *Config
	set     processor.Settings
	kind    signalKind
	sampler sampler
	buf     *buffer
	now     func() time.Time
	send    func(ctx context.Context, chunks []chunk) error
	counts  counts

	pins     *weftpinsextension.Pins // set by start; nil: no pinning
	dropped  recentDrops
	wake     chan struct{}
	lastWarn [numDropped]atomic.Int64 // unix ns of the last drop log line, by reason
	unlogged [numDropped]atomic.Int64 // drops since that line

	mu        sync.Mutex
	cancel    context.CancelFunc
	cancelPin func()
	reg       metric.Registration
	wg        sync.WaitGroup
	started   bool
	stopped   bool
}

func newCore(set processor.Settings, cfg *Config, kind signalKind, maxItems, maxBytes int) *core {
	return &core{
		cfg: cfg, set: set, kind: kind,
		sampler: sampler{t: thresholdFor(cfg.SamplingPercentage)},
		buf:     newBuffer(maxItems, maxBytes, int64(cfg.DecisionWait)),
		now:     time.Now,
		wake:    make(chan struct{}, 1),
	}
}

// tick is how often the worker decides traces whose wait is over: a
// trace waits decision_wait plus at most one tick.
func (c *core) tick() time.Duration {
	return min(max(c.cfg.DecisionWait/20, 10*time.Millisecond), time.Second)
}

func (c *core) start(_ context.Context, host component.Host) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("evidence_sampling: started after shutdown")
	}
	if c.started {
		return errors.New("evidence_sampling: started twice")
	}
	pins, err := weftpinsextension.Find(host, c.cfg.Pins)
	if err != nil {
		return err
	}
	reg, err := c.registerTelemetry()
	if err != nil {
		return err
	}
	c.pins, c.reg, c.started = pins, reg, true
	if pins != nil {
		c.cancelPin = pins.OnPin(c.onPin)
	} else {
		c.set.Logger.Info("evidence_sampling: no weft_pins extension; traces are kept by sampling alone",
			zap.String("pins", c.cfg.Pins), zap.Float64("sampling_percentage", c.cfg.SamplingPercentage))
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.run(ctx)
	}()
	return nil
}

// onPin is weft_pins' callback (on the goroutine that applied the pin: a
// caller of Pin or the gossip receiver): it releases the trace's waiting
// data and wakes the worker, without blocking.
func (c *core) onPin(id pcommon.TraceID, _ time.Time) {
	if c.dropped.late(id) {
		c.counts.late.Add(1)
	}
	if c.buf.pin(id) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// run is the worker: every tick it decides the traces whose wait is over,
// and at once those a pin released.
func (c *core) run(ctx context.Context) {
	t := time.NewTicker(c.tick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
		c.flush(ctx, false)
	}
}

// flush decides the due traces (all of them at shutdown) and sends the
// kept ones on.
func (c *core) flush(ctx context.Context, shutdown bool) {
	entries := c.buf.due(c.now().UnixNano(), shutdown)
	if len(entries) == 0 {
		return
	}
	reason := droppedUnsampled
	if shutdown {
		reason = droppedShutdown
	}
	keep, items := c.decide(entries, reason)
	if len(keep) == 0 {
		return
	}
	if err := c.send(ctx, keep); err != nil {
		c.drop(droppedRefused, items, err)
	}
}

// decide keeps the entries whose trace is pinned (released by a pin, or
// pinned now) and drops the others for reason. It returns the kept chunks
// and their items.
func (c *core) decide(entries []*entry, reason int) (keep []chunk, items int) {
	dropped := 0
	var ids []pcommon.TraceID
	for _, e := range entries {
		if e.pinned || c.pinned(e.id) {
			keep = append(keep, e.chunks...)
			items += e.items
		} else {
			dropped += e.items
			ids = append(ids, e.id)
		}
	}
	c.counts.kept[keptPinned].Add(int64(items))
	if dropped > 0 {
		c.dropped.add(ids)
		c.drop(reason, dropped, nil)
	}
	return keep, items
}

// pinned reports whether id is pinned; false without pins.
func (c *core) pinned(id pcommon.TraceID) bool { return c.pins != nil && c.pins.Pinned(id) }

// pin pins id for reason's default ttl unless it is pinned already (a
// pin per error item would extend the pin, and gossip it, every second).
func (c *core) pin(id pcommon.TraceID) {
	if c.pins == nil || id.IsEmpty() || c.pins.Pinned(id) {
		return
	}
	if c.pins.Pin(id, time.Time{}, c.kind.pinReason) {
		c.counts.pins.Add(1)
	}
}

// wait puts ch (n items of trace id) into the buffer. It returns the
// chunks of traces the buffer decided early to make room that are kept
// (pinned), for the caller's batch; the others, and a chunk too large to
// wait, are dropped as buffer_full.
func (c *core) wait(id pcommon.TraceID, ch chunk, n int, now int64) []chunk {
	evicted, fits := c.buf.add(id, ch, n, now)
	var keep []chunk
	if len(evicted) > 0 {
		keep, _ = c.decide(evicted, droppedBufferFull)
	}
	if !fits {
		if c.pinned(id) {
			c.counts.kept[keptPinned].Add(int64(n))
			keep = append(keep, ch)
		} else {
			c.dropped.add([]pcommon.TraceID{id})
			c.drop(droppedBufferFull, n, nil)
		}
	}
	return keep
}

// dropLogInterval bounds the log lines about drops other than unsampled:
// one per reason per interval, with the count since the last one.
const dropLogInterval = time.Minute

func (c *core) drop(reason, n int, err error) {
	c.counts.dropped[reason].Add(int64(n))
	if reason == droppedUnsampled || reason == droppedShutdown {
		return // the sampler's purpose, counted only
	}
	c.unlogged[reason].Add(int64(n))
	now := c.now().UnixNano()
	last := c.lastWarn[reason].Load()
	if now-last < int64(dropLogInterval) || !c.lastWarn[reason].CompareAndSwap(last, now) {
		return
	}
	fields := []zap.Field{
		zap.String("reason", droppedReasons[reason]), zap.Int64(c.kind.items, c.unlogged[reason].Swap(0)),
		zap.Int("max_items", c.buf.maxItems), zap.Int("max_bytes", c.buf.maxBytes),
	}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	c.set.Logger.Warn("evidence_sampling: data dropped", fields...)
}

// shutdown stops the worker, then decides everything still waiting
// (pinned: sent on with ctx; else dropped as shutdown). Safe without
// start and twice.
func (c *core) shutdown(ctx context.Context) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	cancel, cancelPin, reg := c.cancel, c.cancelPin, c.reg
	c.mu.Unlock()
	if cancelPin != nil {
		cancelPin()
	}
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
	c.flush(ctx, true)
	if reg != nil {
		return reg.Unregister()
	}
	return nil
}
