package fluentforward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// forwardExporter sends log batches as Forward-mode messages.
type forwardExporter struct {
	cfg    *Config
	logger *zap.Logger
	tel    *telemetry
	enc    encoder
	// ownRetry: with a sending queue the exporter retries a batch itself
	// (retry_on_failure, timeout per attempt), so that it knows exactly
	// which records it gives up on and why. Without a queue the caller gets
	// every error and exporterhelper retries.
	ownRetry bool
	// persistent: the sending queue is stored, so a batch left undelivered
	// at shutdown is kept for the next start instead of dropped.
	persistent bool
	// stopping is closed when Shutdown begins: retries end, and a batch
	// that fails then goes back to the queue (persistent) or is dropped.
	stopping chan struct{}
	stopOnce sync.Once

	mu     sync.Mutex // guards client
	client *client
}

func newExporter(cfg *Config, set component.TelemetrySettings) (*forwardExporter, error) {
	tag, err := parseTagTemplate(cfg.Tag)
	if err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	tel, err := newTelemetry(set.MeterProvider, set.Logger)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return &forwardExporter{
		cfg:        cfg,
		logger:     set.Logger,
		tel:        tel,
		enc:        encoder{tag: tag, requestAck: cfg.RequireAck, now: time.Now},
		ownRetry:   cfg.QueueConfig.HasValue(),
		persistent: cfg.QueueConfig.HasValue() && cfg.QueueConfig.Get().StorageID != nil,
		stopping:   make(chan struct{}),
	}, nil
}

// start loads TLS material and creates the client; it does not connect, so
// it returns at once even when no server is up.
func (e *forwardExporter) start(ctx context.Context, _ component.Host) error {
	var tlsCfg *tls.Config
	var err error
	if tlsCfg, err = e.cfg.TLS.LoadTLSConfig(ctx); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c := newClient(e.cfg, tlsCfg, e.logger)
	e.mu.Lock()
	e.client = c
	e.mu.Unlock()
	return nil
}

// beginShutdown ends retrying; batches still in flight get their current attempt.
func (e *forwardExporter) beginShutdown() {
	e.stopOnce.Do(func() { close(e.stopping) })
}

// abort closes every connection so that sends in flight fail at once.
func (e *forwardExporter) abort() {
	e.mu.Lock()
	c := e.client
	e.mu.Unlock()
	if c != nil {
		_ = c.close()
	}
}

// shutdown closes every connection; it is safe without start and twice.
func (e *forwardExporter) shutdown(context.Context) error {
	e.beginShutdown()
	e.mu.Lock()
	c := e.client
	e.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.close()
}

// pushLogs sends one Forward message per tag. Records whose time cannot be
// encoded are dropped and counted. With a sending queue it retries until
// every message is acknowledged (see deliver); without one, a failure
// returns the records not yet acknowledged as a retryable error, so a
// retry resends only those.
func (e *forwardExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	c := e.client
	e.mu.Unlock()
	if c == nil {
		return errClosed
	}
	msgs, unencodable, err := e.enc.encode(ld)
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	e.tel.drop(unencodable, reasonUnencodable, errUnencodable)
	if e.ownRetry {
		return e.deliver(ctx, c, msgs)
	}
	for i := range msgs {
		if err := c.send(ctx, &msgs[i]); err != nil {
			if i == 0 {
				return err
			}
			return consumererror.NewLogs(err, remainingLogs(ld, &e.enc, msgs[i:]))
		}
	}
	return nil
}

// errUnencodable is logged with reasonUnencodable drops.
var errUnencodable = errors.New("record time after 2106-02-07 does not fit the forward protocol's EventTime")

// deliver sends msgs until each is acknowledged, with retry_on_failure's
// backoff and the timeout per attempt. It returns
//   - nil when everything was acknowledged;
//   - a permanent error after counting the unacknowledged records as
//     retries_exhausted (retry disabled, or max_elapsed_time reached);
//   - a retryable error once Shutdown has begun: exporterhelper's retry
//     turns it into a shutdown error, for which the persistent queue keeps
//     the batch; without a persistent queue the records are counted as
//     shutdown drops.
func (e *forwardExporter) deliver(ctx context.Context, c *client, msgs []message) error {
	rc := e.cfg.BackOffConfig
	bo := newBackoff(rc)
	begin := time.Now()
	for {
		var err error
		if msgs, err = e.sendAll(ctx, c, msgs); err == nil {
			return nil
		}
		pending := 0
		for i := range msgs {
			pending += msgs[i].records
		}
		select {
		case <-e.stopping:
			if !e.persistent {
				e.tel.drop(pending, reasonShutdown, err)
			}
			return err
		default:
		}
		delay := bo.nextDelay()
		if !rc.Enabled || (rc.MaxElapsedTime > 0 && time.Since(begin)+delay > rc.MaxElapsedTime) {
			e.tel.drop(pending, reasonRetriesExhausted, err)
			return consumererror.NewPermanent(fmt.Errorf("giving up on %d records: %w", pending, err))
		}
		e.logger.Info("Export failed, will retry", zap.Error(err), zap.Int("records", pending), zap.Duration("interval", delay))
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-e.stopping:
			timer.Stop()
			if !e.persistent {
				e.tel.drop(pending, reasonShutdown, err)
			}
			return err
		case <-ctx.Done():
			timer.Stop()
			e.tel.drop(pending, reasonRetriesExhausted, ctx.Err())
			return consumererror.NewPermanent(fmt.Errorf("giving up on %d records: %w (%w)", pending, err, ctx.Err()))
		}
	}
}

// sendAll sends msgs in order, each attempt bounded by the export timeout,
// and returns the messages not acknowledged.
func (e *forwardExporter) sendAll(ctx context.Context, c *client, msgs []message) ([]message, error) {
	for i := range msgs {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if t := e.cfg.TimeoutConfig.Timeout; t > 0 {
			actx, cancel = context.WithTimeout(ctx, t)
		}
		err := c.send(actx, &msgs[i])
		cancel()
		if err != nil {
			return msgs[i:], err
		}
	}
	return nil, nil
}

// remainingLogs returns the records of ld whose tag is one of the unsent messages'.
func remainingLogs(ld plog.Logs, enc *encoder, unsent []message) plog.Logs {
	tags := make(map[string]struct{}, len(unsent))
	for _, m := range unsent {
		tags[m.tag] = struct{}{}
	}
	out := plog.NewLogs()
	var buf []byte
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		meta := resourceMetaOf(rl.Resource())
		buf = enc.tag.appendTag(buf[:0], meta.namespace, meta.pod, meta.container)
		if _, ok := tags[string(buf)]; ok {
			rl.CopyTo(out.ResourceLogs().AppendEmpty())
		}
	}
	return out
}
