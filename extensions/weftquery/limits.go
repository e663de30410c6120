package weftquery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// Reasons a request is refused or a query is cut short, counted by reason
// (README "Telemetry").
const (
	reasonQueryLength  = "max_query_length"
	reasonQueryNodes   = "max_query_nodes"
	reasonSamples      = "max_samples"
	reasonQueueFull    = "queue_full"
	reasonQueueTimeout = "queue_timeout"
	reasonBodyTimeout  = "read_body_timeout"
	reasonConnections  = "max_connections"

	reasonCanceled = "canceled" // the client went away
	reasonTimeout  = "timeout"  // timeout (or the timeout parameter) passed
)

var (
	refusalReasons     = []string{reasonQueryLength, reasonQueryNodes, reasonSamples, reasonQueueFull, reasonQueueTimeout, reasonBodyTimeout, reasonConnections}
	interruptedReasons = []string{reasonCanceled, reasonTimeout}
)

// counters counts events by a fixed set of reasons.
type counters map[string]*atomic.Int64

func newCounters(reasons ...[]string) counters {
	c := counters{}
	for _, rs := range reasons {
		for _, r := range rs {
			c[r] = new(atomic.Int64)
		}
	}
	return c
}

func (c counters) add(reason string) { c[reason].Add(1) }

func (c counters) get(reason string) int64 { return c[reason].Load() }

// limitError is a request refused by a configured limit; its message names
// the key and its value.
type limitError struct {
	key string // the config key, also the refusal reason
	msg string
}

func (e *limitError) Error() string { return e.msg }

// checkQueryLength refuses an expression longer than max_query_length.
func checkQueryLength(q string, maxLen int) error {
	if len(q) > maxLen {
		return &limitError{reasonQueryLength, fmt.Sprintf("expression is %d bytes, more than max_query_length (%d)", len(q), maxLen)}
	}
	return nil
}

// boundedParser is the PromQL parser of the engine and of the handlers: it
// refuses an expression longer than max_query_length before parsing it
// (parsing is not interruptible, and its cost grows with the square of the
// nesting: README "Query bounds"), and one of more than max_query_nodes
// syntax-tree nodes before it is evaluated.
type boundedParser struct {
	parser.Parser
	maxLen, maxNodes int
}

func (p boundedParser) ParseExpr(input string) (parser.Expr, error) {
	if err := checkQueryLength(input, p.maxLen); err != nil {
		return nil, err
	}
	expr, err := p.Parser.ParseExpr(input)
	if err != nil {
		return nil, err
	}
	if countNodes(expr, p.maxNodes+1) > p.maxNodes {
		return nil, &limitError{reasonQueryNodes, fmt.Sprintf("expression has more than max_query_nodes (%d) syntax-tree nodes", p.maxNodes)}
	}
	return expr, nil
}

func (p boundedParser) ParseMetricSelector(input string) ([]*labels.Matcher, error) {
	if err := checkQueryLength(input, p.maxLen); err != nil {
		return nil, err
	}
	return p.Parser.ParseMetricSelector(input)
}

func (p boundedParser) ParseMetricSelectors(inputs []string) ([][]*labels.Matcher, error) {
	for _, in := range inputs {
		if err := checkQueryLength(in, p.maxLen); err != nil {
			return nil, err
		}
	}
	return p.Parser.ParseMetricSelectors(inputs)
}

// errEnoughNodes stops a walk once the count is reached.
var errEnoughNodes = errors.New("enough nodes")

// countNodes counts the nodes of expr, stopping at limit.
func countNodes(expr parser.Node, limit int) int {
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

// queryGate bounds the data requests that run at once
// (max_concurrent_queries) and those that wait for a slot
// (max_queued_queries), each for at most queue_timeout. Waiters are served
// first come, first served: a freed slot goes to the longest-blocked sender
// on slots.
type queryGate struct {
	slots chan struct{} // one token per running request
	queue chan struct{} // one token per waiting request
	wait  time.Duration
}

var (
	errQueueFull    = errors.New("queue full")
	errQueueTimeout = errors.New("queue timeout")
)

func newQueryGate(running, queued int, wait time.Duration) *queryGate {
	return &queryGate{slots: make(chan struct{}, running), queue: make(chan struct{}, queued), wait: wait}
}

// acquire takes a slot, waiting in the queue if there is room; release
// gives it back. Errors: errQueueFull, errQueueTimeout, or ctx's.
func (g *queryGate) acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	select {
	case g.queue <- struct{}{}:
	default:
		return nil, errQueueFull
	}
	defer func() { <-g.queue }()
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, errQueueTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// running and queued are the requests holding and waiting for a slot.
func (g *queryGate) running() int { return len(g.slots) }
func (g *queryGate) queued() int  { return len(g.queue) }

// failFunc answers an error in a route's envelope (Prometheus or Jaeger).
type failFunc func(w http.ResponseWriter, aerr *apiError)

func promFail(w http.ResponseWriter, aerr *apiError) {
	writeProm(w, aerr.status, promResponse{Status: "error", ErrorType: aerr.typ, Error: aerr.err.Error()})
}

func jaegerFailAPI(w http.ResponseWriter, aerr *apiError) {
	jaegerFail(w, aerr.status, aerr.err.Error())
}

// gated runs a data request in a query slot. Before taking one it reads the
// whole body (bounded by max_request_bytes and read_body_timeout, so that a
// client that goes away is noticed: net/http watches the connection once
// the body is consumed) and refuses over-long expressions. The answer is
// buffered and written after the slot is released, so a client that reads
// slowly does not hold a slot.
func (s *server) gated(h http.HandlerFunc, fail failFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := r.ParseForm()
		if err == nil {
			_, err = io.Copy(io.Discard, r.Body)
		}
		if err != nil {
			fail(w, s.formError(err))
			return
		}
		for _, q := range append(r.Form["query"], r.Form["match[]"]...) {
			if err := checkQueryLength(q, s.cfg.MaxQueryLength); err != nil {
				s.refused.add(reasonQueryLength)
				fail(w, badData(err))
				return
			}
		}
		release, err := s.gate.acquire(r.Context())
		if err != nil {
			aerr := s.gateError(err)
			if aerr.typ == errorUnavailable {
				w.Header().Set("Retry-After", s.retryAfter())
			}
			fail(w, aerr)
			return
		}
		buf := &bufferedResponse{header: w.Header()}
		func() {
			defer release()
			h(buf, r)
		}()
		if buf.status == 0 {
			buf.status = http.StatusOK
		}
		w.WriteHeader(buf.status)
		_, _ = w.Write(buf.body.Bytes())
	}
}

// gateError turns a refusal of the gate into an API error and counts it.
func (s *server) gateError(err error) *apiError {
	switch {
	case errors.Is(err, errQueueFull):
		s.refused.add(reasonQueueFull)
		return &apiError{errorUnavailable, http.StatusServiceUnavailable, fmt.Errorf(
			"too many queries: max_concurrent_queries (%d) running and max_queued_queries (%d) waiting", s.cfg.MaxConcurrentQueries, s.cfg.MaxQueuedQueries)}
	case errors.Is(err, errQueueTimeout):
		s.refused.add(reasonQueueTimeout)
		return &apiError{errorUnavailable, http.StatusServiceUnavailable, fmt.Errorf(
			"no query slot free within queue_timeout (%s): max_concurrent_queries (%d) running", s.cfg.QueueTimeout, s.cfg.MaxConcurrentQueries)}
	}
	aerr := queryError(err)
	s.countQueryError(aerr)
	return aerr
}

// retryAfter is the Retry-After of a 503 "unavailable": queue_timeout in
// whole seconds, at least 1 (a slot was not free for that long).
func (s *server) retryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(s.cfg.QueueTimeout.Seconds()))))
}

// countQueryError counts the errors of a query that are bounds: limits
// (refusals) and cancellation or timeout (interruptions).
func (s *server) countQueryError(aerr *apiError) {
	var (
		le  *limitError
		tms promql.ErrTooManySamples
	)
	switch {
	case errors.As(aerr.err, &le):
		s.refused.add(le.key)
	case errors.As(aerr.err, &tms):
		s.refused.add(reasonSamples)
	case aerr.typ == errorCanceled:
		s.interrupted.add(reasonCanceled)
	case aerr.typ == errorTimeout:
		s.interrupted.add(reasonTimeout)
	}
}

// formError classifies an error reading the form: body over
// max_request_bytes 413, body slower than read_body_timeout 408, else 400.
func (s *server) formError(err error) *apiError {
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return &apiError{errorTooLarge, http.StatusRequestEntityTooLarge, err}
	}
	if errors.Is(err, errBodyTimeout) {
		s.refused.add(reasonBodyTimeout)
		return &apiError{errorBadData, http.StatusRequestTimeout, fmt.Errorf("request body not read within read_body_timeout (%s)", s.cfg.ReadBodyTimeout)}
	}
	return badData(fmt.Errorf("error parsing form values: %w", err))
}

// bufferedResponse holds an answer until the query slot is released.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// errBodyTimeout is a body not read within read_body_timeout.
var errBodyTimeout = errors.New("request body read timeout")

// deadlineBody tags the error of a body read past its connection read
// deadline (set by limits) as errBodyTimeout. net/http lifts that deadline
// itself once the body is consumed, when it starts watching the connection
// for a client that goes away, so a query running past read_body_timeout is
// not cancelled (TestSlowBody checks both).
type deadlineBody struct {
	io.ReadCloser
}

func (b deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %w", errBodyTimeout, err)
	}
	return n, err
}

// probeReserve is how many connections past max_connections are accepted
// to answer /healthz and /ready.
const probeReserve = 4

// connLimitListener accepts at most max+probeReserve connections at once
// (netutil.LimitListener with a reserve); Accept waits for a free one.
// Connections accepted while max or more are open serve only the probes.
type connLimitListener struct {
	net.Listener
	max       int64
	sem       chan struct{}
	open      atomic.Int64
	done      chan struct{}
	closeOnce sync.Once
}

func newConnLimitListener(ln net.Listener, maxConns int) *connLimitListener {
	return &connLimitListener{Listener: ln, max: int64(maxConns), sem: make(chan struct{}, maxConns+probeReserve), done: make(chan struct{})}
}

func (l *connLimitListener) Accept() (net.Conn, error) {
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

func (l *connLimitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	l          *connLimitListener
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

// probesOnlyKey marks the context of a connection accepted past
// max_connections.
type probesOnlyKey struct{}

// connContext marks connections accepted past max_connections (under TLS
// too) for probesOnly.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok && lc.probesOnly {
		return context.WithValue(ctx, probesOnlyKey{}, true)
	}
	return ctx
}

// probesOnly answers requests on a connection of the probe reserve: the
// probes are served, anything else gets 503 "unavailable"; the connection
// is closed after the answer, so the reserve frees quickly.
func (s *server) probesOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(probesOnlyKey{}) == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		s.refused.add(reasonConnections)
		w.Header().Set("Retry-After", "1")
		promFail(w, &apiError{errorUnavailable, http.StatusServiceUnavailable, fmt.Errorf(
			"connection limit: max_connections (%d) open; this connection answers only /healthz and /ready", s.cfg.MaxConnections)})
	})
}
