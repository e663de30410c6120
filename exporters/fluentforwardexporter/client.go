package fluentforwardexporter

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/tinylib/msgp/msgp"
	"go.uber.org/zap"
)

// errClosed is returned once the client is shut down.
var errClosed = errors.New("fluent_forward client is shut down")

// conn is one connection to one endpoint.
type conn struct {
	endpoint int
	nc       net.Conn
	rd       *msgp.Reader
}

// endpointState tracks an endpoint's recent failure for failover ordering.
type endpointState struct {
	addr     string
	failedAt time.Time // zero when healthy
}

// client writes forward messages over a small pool of connections, fails over
// across endpoints and checks acks. It is safe for concurrent use: each
// export takes its own connection, so acks on one connection come back in
// the order their chunks were written.
type client struct {
	cfg    *Config
	tls    *tls.Config
	logger *zap.Logger
	dialer net.Dialer
	now    func() time.Time

	mu        sync.Mutex
	closed    bool
	endpoints []endpointState
	idle      []*conn
	busy      map[*conn]struct{}
}

func newClient(cfg *Config, tlsCfg *tls.Config, logger *zap.Logger) *client {
	c := &client{
		cfg:    cfg,
		tls:    tlsCfg,
		logger: logger,
		dialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: cfg.Keepalive},
		now:    time.Now,
		busy:   make(map[*conn]struct{}),
	}
	for _, ep := range cfg.Endpoints {
		c.endpoints = append(c.endpoints, endpointState{addr: ep})
	}
	return c
}

// send writes msg and, when it carries a chunk ID, waits for its ack.
// Every error is retryable: the batch may be sent again.
func (c *client) send(ctx context.Context, msg *message) error {
	cn, err := c.get(ctx)
	if err != nil {
		return err
	}
	// A cancelled export (or Shutdown) unblocks the pending write or read.
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetDeadline(time.Unix(1, 0)) })
	err = c.roundTrip(cn, msg)
	if !stop() && err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	if err != nil {
		c.markFailed(cn.endpoint)
		c.discard(cn)
		return fmt.Errorf("send %d records with tag %q to %s: %w", msg.records, msg.tag, c.endpoints[cn.endpoint].addr, err)
	}
	c.put(cn)
	return nil
}

func (c *client) roundTrip(cn *conn, msg *message) error {
	if err := cn.nc.SetWriteDeadline(c.now().Add(c.cfg.WriteTimeout)); err != nil {
		return err
	}
	if _, err := cn.nc.Write(msg.data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if msg.chunk == "" {
		return nil
	}
	if err := cn.nc.SetReadDeadline(c.now().Add(c.cfg.AckTimeout)); err != nil {
		return err
	}
	var resp fluent.AckResp
	if c.cfg.SharedKey == "" && isHELO(cn.rd) {
		return errors.New("the server sent HELO: it requires the shared-key handshake; set shared_key (and self_hostname)")
	}
	if err := resp.DecodeMsg(cn.rd); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("no ack for chunk %s within ack_timeout %s: %w", msg.chunk, c.cfg.AckTimeout, err)
		}
		return fmt.Errorf("read ack for chunk %s: %w", msg.chunk, err)
	}
	if resp.Ack != msg.chunk {
		return fmt.Errorf("ack %q does not match chunk %s", resp.Ack, msg.chunk)
	}
	return nil
}

// get returns an idle connection that is still open, else dials.
func (c *client) get(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errClosed
		}
		n := len(c.idle)
		if n == 0 {
			c.mu.Unlock()
			break
		}
		cn := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.busy[cn] = struct{}{}
		c.mu.Unlock()
		if alive(cn) {
			return cn, nil
		}
		c.discard(cn)
	}
	return c.dial(ctx)
}

// alive reports whether an idle connection is still usable: nothing
// buffered and the peer has neither closed it nor written to it.
func alive(cn *conn) bool {
	return cn.rd.Buffered() == 0 && !peerGone(cn.nc)
}

// dialOrder lists endpoint indexes: healthy ones in config order, then the
// ones that failed within failover_cooldown, oldest failure first.
func (c *client) dialOrder() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var healthy, cooling []int
	for i, ep := range c.endpoints {
		if !ep.failedAt.IsZero() && now.Sub(ep.failedAt) < c.cfg.FailoverCooldown {
			cooling = append(cooling, i)
		} else {
			healthy = append(healthy, i)
		}
	}
	for i := 1; i < len(cooling); i++ { // insertion sort: few endpoints
		for j := i; j > 0 && c.endpoints[cooling[j]].failedAt.Before(c.endpoints[cooling[j-1]].failedAt); j-- {
			cooling[j], cooling[j-1] = cooling[j-1], cooling[j]
		}
	}
	return append(healthy, cooling...)
}

func (c *client) dial(ctx context.Context) (*conn, error) {
	var errs []error
	for _, i := range c.dialOrder() {
		addr := c.endpoints[i].addr
		nc, err := c.dialOne(ctx, addr)
		if err != nil {
			c.markFailed(i)
			errs = append(errs, fmt.Errorf("dial %s: %w", addr, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		cn := &conn{endpoint: i, nc: nc, rd: msgp.NewReader(bufio.NewReaderSize(nc, 256))}
		if c.cfg.SharedKey != "" {
			if err := c.handshake(cn, c.now().Add(c.cfg.DialTimeout)); err != nil {
				_ = nc.Close()
				c.markFailed(i)
				errs = append(errs, fmt.Errorf("handshake with %s: %w", addr, err))
				if errors.Is(err, errHandshakeRejected) {
					c.logger.Warn("Forward server rejected the handshake", zap.String("endpoint", addr), zap.Error(err))
				}
				continue
			}
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			_ = nc.Close()
			return nil, errClosed
		}
		c.busy[cn] = struct{}{}
		c.mu.Unlock()
		c.logger.Debug("Connected to forward server", zap.String("endpoint", addr))
		return cn, nil
	}
	return nil, fmt.Errorf("no forward server reachable: %w", errors.Join(errs...))
}

func (c *client) dialOne(ctx context.Context, addr string) (net.Conn, error) {
	if c.tls == nil {
		return c.dialer.DialContext(ctx, "tcp", addr)
	}
	td := tls.Dialer{NetDialer: &c.dialer, Config: c.tls}
	return td.DialContext(ctx, "tcp", addr)
}

func (c *client) markFailed(i int) {
	c.mu.Lock()
	c.endpoints[i].failedAt = c.now()
	c.mu.Unlock()
}

// put returns a healthy connection to the idle pool.
func (c *client) put(cn *conn) {
	c.mu.Lock()
	delete(c.busy, cn)
	if c.closed || len(c.idle) >= c.cfg.MaxIdleConns {
		c.mu.Unlock()
		_ = cn.nc.Close()
		return
	}
	c.endpoints[cn.endpoint].failedAt = time.Time{}
	c.idle = append(c.idle, cn)
	c.mu.Unlock()
}

func (c *client) discard(cn *conn) {
	c.mu.Lock()
	delete(c.busy, cn)
	c.mu.Unlock()
	_ = cn.nc.Close()
}

// close closes every connection, idle or in use, and refuses new sends.
// Sends in flight fail at once.
func (c *client) close() error {
	c.mu.Lock()
	c.closed = true
	conns := c.idle
	c.idle = nil
	for cn := range c.busy {
		conns = append(conns, cn)
	}
	c.mu.Unlock()
	var errs []error
	for _, cn := range conns {
		if err := cn.nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
