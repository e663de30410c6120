package weftpinsextension

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/refusal"
)

// Pins is the weft_pins extension: the node's set of pinned trace IDs,
// shared with the other agents by gossip. Other components find it with
// FromHost and use Pin, Pinned, PinnedUntil and OnPin; all are safe for
// concurrent use, before Start and after Shutdown too (then pins stay
// local).
type Pins struct {
	cfg *Config
	set extension.Settings
	now func() time.Time // the clock; tests replace it before Start

	pins *set

	subMu sync.Mutex                    // serializes OnPin's copy-on-write
	subs  atomic.Pointer[[]*subscriber] // read without a lock by notify

	local    [maxReason + 1]atomic.Int64 // pins set on this node, by reason
	received atomic.Int64                // pins from peers that were new or extended
	clamped  atomic.Int64                // expiries cut to max_ttl
	refused  *refusal.Counts             // refused pins (reason, origin)
	refMsgs  sync.Map                    // refused messages: reason → *atomic.Int64

	gossip atomic.Pointer[gossip] // nil unless running with gossip

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	telReg  metric.Registration
	started bool
	stopped bool
}

// subscriber is one OnPin callback; its pointer identifies it for removal.
type subscriber struct {
	fn func(pcommon.TraceID, time.Time)
}

func newPins(set extension.Settings, cfg *Config) *Pins {
	p := &Pins{cfg: cfg, set: set, now: time.Now, refused: refusal.New()}
	statePins := 0
	if cfg.Gossip.Enabled {
		statePins = cfg.Gossip.StatePins
	}
	p.pins = newSet(cfg.MaxPins, statePins, func() time.Time { return p.now() })
	for _, r := range messageRefusals {
		p.refMsgs.Store(r, new(atomic.Int64))
	}
	return p
}

// FromHost returns the weft_pins extension configured under id.
func FromHost(host component.Host, id component.ID) (*Pins, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("pins: extension %q is not configured; add it under extensions: and service.extensions", id)
	}
	p, ok := ext.(*Pins)
	if !ok {
		return nil, fmt.Errorf("pins: extension %q is a %T, not the weft_pins extension", id, ext)
	}
	return p, nil
}

// None is the value of a component's pins key that turns pinning off.
const None = "none"

// CheckKey checks a component's pins key: empty, None or a component ID.
func CheckKey(key string) error {
	if _, err := keyID(key); err != nil {
		return fmt.Errorf("pins: want a component ID (weft_pins or weft_pins/<name>), %q or empty: %w", None, err)
	}
	return nil
}

// keyID is the extension a pins key names (ok false for "" and None).
func keyID(key string) (id component.ID, err error) {
	if key == "" || key == None {
		return id, nil
	}
	err = id.UnmarshalText([]byte(key))
	return id, err
}

// KeyID is the component ID a pins key names, for a component's
// Dependencies; ok is false for "", None or an invalid key.
func KeyID(key string) (component.ID, bool) {
	id, err := keyID(key)
	return id, err == nil && key != "" && key != None
}

// Find returns the weft_pins extension a component's pins key names: nil
// for None; for "" the first weft_pins extension by ID, nil if the host
// has none; else the one configured under that ID (an error if absent).
func Find(host component.Host, key string) (*Pins, error) {
	switch key {
	case None:
		return nil, nil
	case "":
		var ids []component.ID
		for id := range host.GetExtensions() {
			if id.Type() == componentType {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return nil, nil
		}
		slices.SortFunc(ids, func(a, b component.ID) int { return cmp.Compare(a.String(), b.String()) })
		return FromHost(host, ids[0])
	}
	id, err := keyID(key)
	if err != nil {
		return nil, fmt.Errorf("pins: %w", err)
	}
	return FromHost(host, id)
}

// Pin pins traceID until the given time; a zero until means the
// configured ttl from now. Every expiry is capped at max_ttl from now and
// kept to whole seconds (rounded up). A pin only grows: pinning a trace
// already pinned for longer changes nothing. A new or extended pin is
// announced to the OnPin subscribers and gossiped to the peers. It
// reports whether the pin was new or extended; an empty trace ID, an
// unknown reason or an expiry already past change nothing.
//
// An alert that stays firing should pin again at each notification (with
// its new end + 30m): the pin follows it.
func (p *Pins) Pin(traceID pcommon.TraceID, until time.Time, reason Reason) bool {
	if !reason.valid() {
		return false
	}
	now := p.now()
	if until.IsZero() {
		until = now.Add(p.cfg.TTL)
	}
	if limit := now.Add(p.cfg.MaxTTL); until.After(limit) {
		until = limit
		p.clamped.Add(1)
	}
	u := ceilUnix(until)
	if !p.pins.add(traceID, u, reason) {
		return false
	}
	p.local[reason].Add(1)
	if g := p.gossip.Load(); g != nil {
		g.enqueue(record{id: traceID, until: u, reason: reason})
	}
	p.notify(traceID, u)
	return true
}

// Pinned reports whether traceID is pinned now. It is the hot path of
// the store's eviction and of export sampling: one read lock of one of 64
// shards and a map lookup, no allocation, no clock read while the
// extension runs (a pin may count up to 250 ms past its expiry).
func (p *Pins) Pinned(traceID pcommon.TraceID) bool { return p.pins.has(traceID) }

// PinnedUntil returns when traceID's pin ends, and false if it is not
// pinned now.
func (p *Pins) PinnedUntil(traceID pcommon.TraceID) (time.Time, bool) {
	u := p.pins.until(traceID)
	if u == 0 {
		return time.Time{}, false
	}
	return time.Unix(u, 0), true
}

// OnPin calls fn for every pin that is new or extended, set here or
// received from a peer, with its expiry. fn runs synchronously on the
// goroutine that applied the pin (a caller of Pin, or the gossip
// receiver), after the pin is visible to Pinned, and must return quickly
// and never call back into OnPin's cancel from inside fn. The returned
// function removes the subscription; it is safe to call twice.
func (p *Pins) OnPin(fn func(traceID pcommon.TraceID, until time.Time)) (cancel func()) {
	s := &subscriber{fn: fn}
	p.subMu.Lock()
	old := p.subs.Load()
	var next []*subscriber
	if old != nil {
		next = append(next, *old...)
	}
	next = append(next, s)
	p.subs.Store(&next)
	p.subMu.Unlock()
	return func() {
		p.subMu.Lock()
		defer p.subMu.Unlock()
		cur := p.subs.Load()
		if cur == nil {
			return
		}
		var next []*subscriber
		for _, o := range *cur {
			if o != s {
				next = append(next, o)
			}
		}
		p.subs.Store(&next)
	}
}

func (p *Pins) notify(id pcommon.TraceID, u int64) {
	subs := p.subs.Load()
	if subs == nil || len(*subs) == 0 {
		return
	}
	t := time.Unix(u, 0)
	for _, s := range *subs {
		s.fn(id, t)
	}
}

// ceilUnix is t in unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// Start starts the expiry sweep and, when gossip is enabled, memberlist:
// it binds the gossip port (a failure fails Start) and joins the peers in
// the background (failures are retried and never stop the agent).
func (p *Pins) Start(_ context.Context, _ component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return errors.New("weft_pins: started after shutdown")
	}
	if p.started {
		return errors.New("weft_pins: started twice")
	}
	reg, err := p.registerTelemetry()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var g *gossip
	if p.cfg.Gossip.Enabled {
		if g, err = newGossip(p, p.cfg.Gossip, p.set.Logger); err != nil {
			cancel()
			if reg != nil {
				err = errors.Join(err, reg.Unregister())
			}
			return err
		}
		p.gossip.Store(g)
	}
	p.started, p.cancel, p.telReg = true, cancel, reg
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.sweep(ctx)
	}()
	if g != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			g.joinLoop(ctx)
		}()
	}
	return nil
}

// clockTick is how often the sweep advances Pinned's coarse clock and
// drops expired pins.
const clockTick = 250 * time.Millisecond

func (p *Pins) sweep(ctx context.Context) {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	defer p.pins.coarse.Store(0)
	p.pins.tick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.pins.tick()
		}
	}
}

// Shutdown stops the sweep and the join loop, leaves the cluster
// gracefully within gossip::leave_timeout and closes the gossip port. It
// waits at most for a join attempt in progress (memberlist's TCP timeout,
// 5s) plus the leave timeout. Safe without Start and twice.
func (p *Pins) Shutdown(context.Context) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	cancel, reg := p.cancel, p.telReg
	p.telReg = nil
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	p.wg.Wait()
	var errs []error
	if g := p.gossip.Swap(nil); g != nil {
		errs = append(errs, g.stop(p.cfg.Gossip.LeaveTimeout))
	}
	if reg != nil {
		errs = append(errs, reg.Unregister())
	}
	return errors.Join(errs...)
}

// Stats is a snapshot of the extension's counters.
type Stats struct {
	Pins              int              // held now (expired ones not yet swept included)
	Local             map[string]int64 // pins set on this node (new or extended), by reason
	Received          int64            // pins from peers that were new or extended here
	Expired           int64            // pins dropped at their expiry
	Evicted           int64            // pins dropped at max_pins, soonest expiry first
	Clamped           int64            // expiries cut to max_ttl (local and received)
	RefusedPins       map[string]int64 // pins from peers refused, by reason
	RefusedMessages   map[string]int64 // gossip messages refused whole, by reason
	BytesSent         int64            // gossip payload bytes (broadcasts and push/pull state)
	BytesReceived     int64
	BroadcastsDropped int64 // broadcasts pruned from a full queue
	Members           int   // alive members of the cluster, this node included (0 without gossip)
}

// Stats returns the extension's counters.
func (p *Pins) Stats() Stats {
	st := Stats{
		Pins:            p.pins.len(),
		Local:           make(map[string]int64, len(reasons)),
		Received:        p.received.Load(),
		Expired:         p.pins.expired.Load(),
		Evicted:         p.pins.evicted.Load(),
		Clamped:         p.clamped.Load(),
		RefusedPins:     make(map[string]int64),
		RefusedMessages: make(map[string]int64),
	}
	for _, r := range reasons {
		st.Local[r.String()] = p.local[r].Load()
	}
	for _, r := range pinRefusals {
		st.RefusedPins[r] = p.refused.Total(r)
	}
	p.refMsgs.Range(func(k, v any) bool {
		st.RefusedMessages[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	if g := p.gossip.Load(); g != nil {
		st.BytesSent = g.bytesSent.Load()
		st.BytesReceived = g.bytesReceived.Load()
		st.BroadcastsDropped = g.dropped.Load()
		st.Members = g.members()
	}
	return st
}

// refusePins counts n pins of origin refused for reason, and logs the
// first refusal of a (reason, origin) pair, then at most one a minute.
func (p *Pins) refusePins(reason, origin string, n int64) {
	if logNow, count := p.refused.Note(p.now(), reason, origin, n); logNow {
		p.set.Logger.Warn("weft_pins: refused pins from a peer",
			zap.String("reason", reason), zap.String("origin", origin), zap.Int64("refused", count))
	}
}

// refuseMessage counts a gossip message refused whole.
func (p *Pins) refuseMessage(reason string) {
	if c, ok := p.refMsgs.Load(reason); ok {
		c.(*atomic.Int64).Add(1)
	}
}
