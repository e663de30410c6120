// Package limits holds weft_query's query bounds: the query slots and
// their queue, the PromQL parser bounded by length and syntax-tree nodes,
// the connection cap with its probe reserve, the body read deadline, and
// counters of refusals by reason.
package limits

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Reasons a request is refused or a query is cut short, counted by reason
// (README "Telemetry").
const (
	ReasonQueryLength  = "max_query_length"
	ReasonQueryNodes   = "max_query_nodes"
	ReasonSamples      = "max_samples"
	ReasonQueueFull    = "queue_full"
	ReasonQueueTimeout = "queue_timeout"
	ReasonBodyTimeout  = "read_body_timeout"
	ReasonConnections  = "max_connections"

	ReasonCanceled = "canceled" // the client went away
	ReasonTimeout  = "timeout"  // timeout (or the timeout parameter) passed
)

var (
	RefusalReasons     = []string{ReasonQueryLength, ReasonQueryNodes, ReasonSamples, ReasonQueueFull, ReasonQueueTimeout, ReasonBodyTimeout, ReasonConnections}
	InterruptedReasons = []string{ReasonCanceled, ReasonTimeout}
)

// Counters counts events by a fixed set of reasons.
type Counters map[string]*atomic.Int64

func NewCounters(reasons ...[]string) Counters {
	c := Counters{}
	for _, rs := range reasons {
		for _, r := range rs {
			c[r] = new(atomic.Int64)
		}
	}
	return c
}

// Add counts one event of reason.
func (c Counters) Add(reason string) { c[reason].Add(1) }

// Get is the count of reason.
func (c Counters) Get(reason string) int64 { return c[reason].Load() }

// Error is a request refused by a configured limit; its message names
// the key and its value.
type Error struct {
	Key string // the config key, also the refusal reason
	msg string
}

func (e *Error) Error() string { return e.msg }

// CheckQueryLength refuses an expression longer than max_query_length.
func CheckQueryLength(q string, maxLen int) error {
	if len(q) > maxLen {
		return &Error{Key: ReasonQueryLength, msg: fmt.Sprintf("expression is %d bytes, more than max_query_length (%d)", len(q), maxLen)}
	}
	return nil
}

// Parser is the PromQL parser of the handlers, run on every expression
// before the store's engine (whose parser is plain) sees it: it refuses
// an expression longer than max_query_length before parsing it (parsing
// is not interruptible, and its cost grows with the square of the
// nesting: README "Query bounds"), and one of more than max_query_nodes
// syntax-tree nodes before it is evaluated.
type Parser struct {
	parser.Parser
	maxLen, maxNodes int
}

// NewParser bounds p by max_query_length and max_query_nodes.
func NewParser(p parser.Parser, maxLen, maxNodes int) Parser {
	return Parser{Parser: p, maxLen: maxLen, maxNodes: maxNodes}
}

func (p Parser) ParseExpr(input string) (parser.Expr, error) {
	if err := CheckQueryLength(input, p.maxLen); err != nil {
		return nil, err
	}
	expr, err := p.Parser.ParseExpr(input)
	if err != nil {
		return nil, err
	}
	if CountNodes(expr, p.maxNodes+1) > p.maxNodes {
		return nil, &Error{Key: ReasonQueryNodes, msg: fmt.Sprintf("expression has more than max_query_nodes (%d) syntax-tree nodes", p.maxNodes)}
	}
	return expr, nil
}

func (p Parser) ParseMetricSelector(input string) ([]*labels.Matcher, error) {
	if err := CheckQueryLength(input, p.maxLen); err != nil {
		return nil, err
	}
	return p.Parser.ParseMetricSelector(input)
}

func (p Parser) ParseMetricSelectors(inputs []string) ([][]*labels.Matcher, error) {
	for _, in := range inputs {
		if err := CheckQueryLength(in, p.maxLen); err != nil {
			return nil, err
		}
	}
	return p.Parser.ParseMetricSelectors(inputs)
}

// errEnoughNodes stops a walk once the count is reached.
var errEnoughNodes = errors.New("enough nodes")

// CountNodes counts the nodes of expr, stopping at limit.
func CountNodes(expr parser.Node, limit int) int {
	n := 0
	_ = parser.Walk(nodeCounter(func() error {
		if n++; n >= limit {
			return errEnoughNodes
		}
		return nil
	}), expr, nil)
	return n
}

type nodeCounter func() error

func (c nodeCounter) Visit(node parser.Node, _ []parser.Node) (parser.Visitor, error) {
	if node == nil {
		return nil, nil
	}
	return c, c()
}

// Gate bounds the data requests that run at once
// (max_concurrent_queries) and those that wait for a slot
// (max_queued_queries), each for at most queue_timeout. Waiters are served
// first come, first served: a freed slot goes to the longest-blocked sender
// on slots.
type Gate struct {
	slots chan struct{} // one token per running request
	queue chan struct{} // one token per waiting request
	wait  time.Duration
}

var (
	ErrQueueFull    = errors.New("queue full")
	ErrQueueTimeout = errors.New("queue timeout")
)

func NewGate(running, queued int, wait time.Duration) *Gate {
	return &Gate{slots: make(chan struct{}, running), queue: make(chan struct{}, queued), wait: wait}
}

// Acquire takes a slot, waiting in the queue if there is room; release
// gives it back. Errors: ErrQueueFull, ErrQueueTimeout, or ctx's.
func (g *Gate) Acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	select {
	case g.queue <- struct{}{}:
	default:
		return nil, ErrQueueFull
	}
	defer func() { <-g.queue }()
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, ErrQueueTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// running and queued are the requests holding and waiting for a slot.
// Running is the requests holding a slot.
func (g *Gate) Running() int { return len(g.slots) }

// Queued is the requests waiting for a slot.
func (g *Gate) Queued() int { return len(g.queue) }

// ErrBodyTimeout is a body not read within read_body_timeout.
var ErrBodyTimeout = errors.New("request body read timeout")

// DeadlineBody tags the error of a body read past its connection read
// deadline (set by limits) as ErrBodyTimeout. net/http lifts that deadline
// itself once the body is consumed, when it starts watching the connection
// for a client that goes away, so a query running past read_body_timeout is
// not cancelled (TestSlowBody checks both).
type DeadlineBody struct {
	io.ReadCloser
}

func (b DeadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %w", ErrBodyTimeout, err)
	}
	return n, err
}

// ProbeReserve is how many connections past max_connections are accepted
// to answer /healthz and /ready.
const ProbeReserve = 4

// ConnLimitListener accepts at most max+ProbeReserve connections at once
// (netutil.LimitListener with a reserve); Accept waits for a free one.
// Connections accepted while max or more are open serve only the probes.
type ConnLimitListener struct {
	net.Listener
	max       int64
	sem       chan struct{}
	open      atomic.Int64
	done      chan struct{}
	closeOnce sync.Once
}

func NewConnLimitListener(ln net.Listener, maxConns int) *ConnLimitListener {
	return &ConnLimitListener{Listener: ln, max: int64(maxConns), sem: make(chan struct{}, maxConns+ProbeReserve), done: make(chan struct{})}
}

func (l *ConnLimitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, l: l, probesOnly: l.open.Add(1) > l.max}, nil
}

// Open is the connections accepted and not yet closed.
func (l *ConnLimitListener) Open() int64 { return l.open.Load() }

func (l *ConnLimitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	l          *ConnLimitListener
	probesOnly bool
	closeOnce  sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.l.open.Add(-1)
		<-c.l.sem
	})
	return err
}

// ProbesOnly reports whether ctx is a request's on a connection accepted
// past max_connections.
func ProbesOnly(ctx context.Context) bool { return ctx.Value(probesOnlyKey{}) != nil }

// probesOnlyKey marks the context of a connection accepted past
// max_connections.
type probesOnlyKey struct{}

// ConnContext marks connections accepted past max_connections (under TLS
// too) for ProbesOnly.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok && lc.probesOnly {
		return context.WithValue(ctx, probesOnlyKey{}, true)
	}
	return ctx
}
