package fluentforwardexporter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// forwardExporter sends log batches as Forward-mode messages. A batch
// takes one path (see createLogs): the sending queue → export, which counts
// what is given up → exporterhelper's retry and timeout (retry_on_failure,
// timeout) → pushLogs, one attempt.
type forwardExporter struct {
	cfg    *Config
	logger *zap.Logger
	tel    *telemetry
	enc    encoder
	// queued: there is a sending queue, so a batch given up is gone and is
	// counted; without one the caller gets every error with the records.
	queued bool
	// persistent: the sending queue is stored, so a batch whose retry
	// Shutdown interrupts is kept for the next start instead of dropped.
	persistent bool
	// retrying is the exporterhelper that retries pushLogs; export hands
	// each batch the queue releases to it.
	retrying consumer.Logs

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
		queued:     cfg.QueueConfig.HasValue(),
		persistent: cfg.QueueConfig.HasValue() && cfg.QueueConfig.Get().StorageID != nil,
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

// export is the sending queue's consumer: it hands ld to exporterhelper's
// retry and counts the records it gives up on, by reason:
//   - a permanent error: already counted by pushLogs;
//   - the retry interrupted by Shutdown: with a persistent queue the batch
//     stays stored (nothing is counted), else it is a shutdown drop;
//   - any other error (retry_on_failure disabled, max_elapsed_time passed):
//     retries_exhausted.
//
// The records counted are those not acknowledged: every retryable error of
// pushLogs carries them (consumererror.Logs), and the retry resends only
// those. Without a sending queue nothing is counted: the caller gets the
// error with the records.
func (e *forwardExporter) export(ctx context.Context, ld plog.Logs) error {
	err := e.retrying.ConsumeLogs(ctx, ld)
	if err == nil || !e.queued || consumererror.IsPermanent(err) {
		return err
	}
	pending := ld.LogRecordCount()
	if le, ok := errors.AsType[consumererror.Logs](err); ok {
		pending = le.Data().LogRecordCount()
	}
	switch {
	case !interruptedByShutdown(err):
		e.tel.drop(pending, reasonRetriesExhausted, err)
	case !e.persistent:
		e.tel.drop(pending, reasonShutdown, err)
	}
	return err
}

// shutdownErrPrefix starts the message of the error exporterhelper's retry
// returns when Shutdown interrupts it; that error's type is internal to
// exporterhelper, and it is the one for which the persistent queue keeps a
// batch. TestDropAtShutdownOnlyWithoutPersistentQueue fails if it changes.
const shutdownErrPrefix = "interrupted due to shutdown: "

// interruptedByShutdown reports whether err, or an error it wraps, is
// exporterhelper's shutdown error.
func interruptedByShutdown(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if strings.HasPrefix(err.Error(), shutdownErrPrefix) {
			return true
		}
	}
	return false
}

// pushLogs is one attempt to send ld: one Forward message per tag, each
// written and acknowledged on a connection the client picks (failing over
// between endpoints). Records whose time cannot be encoded are left out and
// counted (unencodable). An error that can never succeed is permanent and
// counted; any other error is retryable and carries the records not
// acknowledged, without the unencodable ones, so that exporterhelper's
// retry resends only those and nothing is counted twice.
func (e *forwardExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	c := e.client
	e.mu.Unlock()
	if c == nil {
		return consumererror.NewLogs(errClosed, ld)
	}
	msgs, unencodable, err := e.enc.encode(ld)
	if err != nil {
		n := ld.LogRecordCount()
		e.tel.drop(n, reasonUnencodable, err)
		return consumererror.NewPermanent(fmt.Errorf("encode %d records: %w", n, err))
	}
	e.tel.drop(unencodable, reasonUnencodable, errUnencodable)
	for i := range msgs {
		if err := c.send(ctx, &msgs[i]); err != nil {
			if i == 0 && unencodable == 0 {
				return consumererror.NewLogs(err, ld)
			}
			return consumererror.NewLogs(err, e.remainingLogs(ld, msgs[i:], unencodable > 0))
		}
	}
	return nil
}

// errUnencodable is logged with reasonUnencodable drops.
var errUnencodable = errors.New("record time after 2106-02-07 does not fit the forward protocol's EventTime")

// remainingLogs returns the records of ld whose tag is one of the unsent
// messages', leaving out the unencodable ones when there are any.
func (e *forwardExporter) remainingLogs(ld plog.Logs, unsent []message, hasUnencodable bool) plog.Logs {
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
		buf = e.enc.tag.appendTag(buf[:0], meta.namespace, meta.pod, meta.container)
		if _, ok := tags[string(buf)]; !ok {
			continue
		}
		cp := out.ResourceLogs().AppendEmpty()
		rl.CopyTo(cp)
		if !hasUnencodable {
			continue
		}
		sls := cp.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sls.At(j).LogRecords().RemoveIf(func(lr plog.LogRecord) bool { return !e.enc.encodable(lr) })
		}
	}
	return out
}
