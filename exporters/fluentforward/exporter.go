package fluentforward

import (
	"context"
	"crypto/tls"
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
	enc    encoder
	mu     sync.Mutex // guards client
	client *client
}

func newExporter(cfg *Config, logger *zap.Logger) (*forwardExporter, error) {
	tag, err := parseTagTemplate(cfg.Tag)
	if err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	return &forwardExporter{
		cfg:    cfg,
		logger: logger,
		enc:    encoder{tag: tag, requestAck: cfg.RequireAck, now: time.Now},
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
	e.mu.Lock()
	c := e.client
	e.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.close()
}

// pushLogs sends one Forward message per tag. A failure returns the records
// not yet acknowledged as a retryable error, so a retry resends only those.
func (e *forwardExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	c := e.client
	e.mu.Unlock()
	if c == nil {
		return errClosed
	}
	msgs, err := e.enc.encode(ld)
	if err != nil {
		return consumererror.NewPermanent(err)
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
