package weftpinsextension

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

const (
	// tcpTimeout bounds one push/pull (a join attempt) with one peer;
	// memberlist's default is 10s. Shutdown waits at most for one.
	tcpTimeout = 5 * time.Second
	// joinSample is how many of the resolved addresses one join attempt
	// contacts: one answering peer is enough, its state names the rest.
	joinSample = 5
	// maxQueued bounds the broadcast queue (messages of up to maxBatch
	// pins); the oldest are pruned beyond it and reach the peers through
	// push/pull state instead.
	maxQueued = 4096
	// maxPending bounds the pins waiting for the next gossip round.
	maxPending = maxQueued * maxBatch
	// maxOrigins bounds the per-origin rate limiters; further origins
	// share one.
	maxOrigins = 1024
	// joinLogInterval: join failures are logged at most once a minute.
	joinLogInterval = time.Minute
)

// gossip runs the memberlist side of the extension: it is the memberlist
// Delegate, batches local pins into broadcasts, relays new pins received
// from peers, and serves recent pins as push/pull state.
type gossip struct {
	p    *Pins
	cfg  GossipConfig
	log  *zap.Logger
	name string

	ml atomic.Pointer[memberlist.Memberlist] // set once Create returns
	q  *memberlist.TransmitLimitedQueue

	pmu     sync.Mutex
	pending []record // local pins not yet in a broadcast

	lim *limiter

	bytesSent     atomic.Int64
	bytesReceived atomic.Int64
	dropped       atomic.Int64 // broadcasts pruned or pins dropped from pending

	// Resolvers, replaced in tests.
	lookupHost func(ctx context.Context, host string) ([]string, error)
	lookupSRV  func(ctx context.Context, name string) ([]*net.SRV, error)
}

var _ memberlist.Delegate = (*gossip)(nil)

// newGossip reads the key, creates the memberlist (binding its port) and
// returns the gossip side, not yet joined.
func newGossip(p *Pins, cfg GossipConfig, logger *zap.Logger) (*gossip, error) {
	g := &gossip{
		p:   p,
		cfg: cfg,
		log: logger,
		lim: newLimiter(float64(cfg.PeerPinsPerSecond), float64(max(cfg.PeerPinsPerSecond, cfg.StatePins))),
		lookupHost: func(ctx context.Context, host string) ([]string, error) {
			return net.DefaultResolver.LookupHost(ctx, host)
		},
		lookupSRV: func(ctx context.Context, name string) ([]*net.SRV, error) {
			_, srvs, err := net.DefaultResolver.LookupSRV(ctx, "", "", name)
			return srvs, err
		},
	}
	g.name = cfg.NodeName
	if g.name == "" {
		g.name = defaultNodeName()
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = g.name
	host, port, err := splitHostPort(cfg.Bind, false)
	if err != nil {
		return nil, fmt.Errorf("gossip::bind: %w", err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise, true)
		if err != nil {
			return nil, fmt.Errorf("gossip::advertise: %w", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	}
	mc.GossipInterval = cfg.GossipInterval
	mc.PushPullInterval = cfg.PushPullInterval
	mc.RetransmitMult = cfg.RetransmitMult
	mc.TCPTimeout = tcpTimeout
	mc.EnableCompression = false // random trace IDs do not compress
	mc.Delegate = g
	mc.Logger = log.New(newLogBridge(logger, p), "", 0)
	if cfg.Insecure {
		logger.Warn("weft_pins: gossip is not encrypted (gossip::insecure: true): any host that reaches the gossip port can join and inject pins")
	} else {
		keys, err := readKeys(cfg.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("gossip::secret_key_file: %w", err)
		}
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip::secret_key_file: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	g.q = &memberlist.TransmitLimitedQueue{NumNodes: g.members, RetransmitMult: cfg.RetransmitMult}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("weft_pins: start gossip on %s: %w", cfg.Bind, err)
	}
	g.ml.Store(ml)
	n := ml.LocalNode()
	logger.Info("weft_pins: gossip listening", zap.String("node", g.name), zap.String("address", n.Address()))
	return g, nil
}

func defaultNodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "weft"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := "-" + hex.EncodeToString(b[:])
	if len(h)+len(suffix) > maxOrigin {
		h = h[:maxOrigin-len(suffix)]
	}
	return h + suffix
}

// members is the count of alive members, this node included.
func (g *gossip) members() int {
	if ml := g.ml.Load(); ml != nil {
		return ml.NumMembers()
	}
	return 1
}

// stop leaves the cluster (bounded by timeout) and closes memberlist.
func (g *gossip) stop(timeout time.Duration) error {
	ml := g.ml.Load()
	if ml == nil {
		return nil
	}
	var errs []error
	if err := ml.Leave(timeout); err != nil {
		errs = append(errs, fmt.Errorf("weft_pins: leave the gossip cluster: %w", err))
	}
	if err := ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("weft_pins: stop gossip: %w", err))
	}
	return errors.Join(errs...)
}

// ---- broadcasts ----

// enqueue adds a local pin to the next broadcast. memberlist asks for
// broadcasts only when it has a peer to send them to: while this node is
// alone, what waits is dropped (uncounted: nobody missed it; a node that
// joins gets the latest pins in the push/pull state).
func (g *gossip) enqueue(r record) {
	g.pmu.Lock()
	if len(g.pending) >= 4*maxBatch && g.members() <= 1 {
		clear(g.pending)
		g.pending = g.pending[:0]
	}
	if len(g.pending) >= maxPending {
		g.pending = g.pending[1:]
		g.dropped.Add(1)
	}
	g.pending = append(g.pending, r)
	g.pmu.Unlock()
}

// flush moves the pending pins into broadcasts of up to maxBatch pins.
func (g *gossip) flush() {
	g.pmu.Lock()
	pending := g.pending
	g.pending = nil
	g.pmu.Unlock()
	for len(pending) > 0 {
		n := min(len(pending), maxBatch)
		g.queue(appendMessage(make([]byte, 0, messageLen(g.name, n)), kindBatch, g.name, pending[:n]))
		pending = pending[n:]
	}
}

func (g *gossip) queue(msg []byte) {
	g.q.QueueBroadcast(broadcast(msg))
	if n := g.q.NumQueued(); n > maxQueued {
		g.q.Prune(maxQueued)
		g.dropped.Add(int64(n - maxQueued))
	}
}

// broadcast is one message in memberlist's transmit queue; pin batches
// never invalidate each other.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// ---- memberlist.Delegate ----

// NodeMeta implements memberlist.Delegate: no metadata.
func (g *gossip) NodeMeta(int) []byte { return nil }

// GetBroadcasts implements memberlist.Delegate: called every gossip round.
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte {
	g.flush()
	msgs := g.q.GetBroadcasts(overhead, limit)
	for _, m := range msgs {
		g.bytesSent.Add(int64(len(m)))
	}
	return msgs
}

// NotifyMsg implements memberlist.Delegate: a broadcast from a peer.
// Pins new here are applied and relayed, so they reach every member
// however large the cluster.
func (g *gossip) NotifyMsg(buf []byte) {
	g.bytesReceived.Add(int64(len(buf)))
	m, why := decode(buf)
	if why == "" && m.kind != kindBatch {
		why = refusedKind
	}
	if why != "" {
		g.p.refuseMessage(why)
		return
	}
	accepted := g.apply(&m)
	if len(accepted) > 0 {
		g.queue(appendMessage(make([]byte, 0, messageLen(string(m.origin), len(accepted))), kindBatch, string(m.origin), accepted))
	}
}

// LocalState implements memberlist.Delegate: the latest pins (up to
// state_pins), for a push/pull exchange.
func (g *gossip) LocalState(bool) []byte {
	recs := g.p.pins.latest(nil)
	if len(recs) > g.cfg.StatePins {
		recs = recs[:g.cfg.StatePins]
	}
	b := appendMessage(make([]byte, 0, messageLen(g.name, len(recs))), kindState, g.name, recs)
	g.bytesSent.Add(int64(len(b)))
	return b
}

// MergeRemoteState implements memberlist.Delegate: a peer's latest pins.
// They are applied, not relayed: every node exchanges state on its own.
func (g *gossip) MergeRemoteState(buf []byte, _ bool) {
	g.bytesReceived.Add(int64(len(buf)))
	m, why := decode(buf)
	if why == "" && m.kind != kindState {
		why = refusedKind
	}
	if why != "" {
		g.p.refuseMessage(why)
		return
	}
	g.apply(&m)
}

// apply checks and applies a message's records; it returns those that
// were new or extended here (with their expiry as applied).
func (g *gossip) apply(m *message) []record {
	origin := string(m.origin)
	p := g.p
	now := p.now()
	nowU := now.Unix()
	limit := ceilUnix(now.Add(p.cfg.MaxTTL))
	var out []record
	refused := map[string]int64{}
	for i := range m.n {
		r := m.record(i)
		if why := r.check(); why != "" {
			refused[why]++
			continue
		}
		if r.until <= nowU {
			refused[refusedExpired]++
			continue
		}
		if r.until > limit {
			r.until = limit
			p.clamped.Add(1)
		}
		if p.pins.until(r.id) >= r.until {
			continue // known: costs nothing, counts against no budget
		}
		if !g.lim.allow(origin, now) {
			refused[refusedRateLimited]++
			continue
		}
		if p.pins.add(r.id, r.until, r.reason) {
			p.received.Add(1)
			p.notify(r.id, r.until)
			out = append(out, r)
		}
	}
	for why, n := range refused {
		p.refusePins(why, origin, n)
	}
	return out
}
