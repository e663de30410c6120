package fluentforwardexporter

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

var componentType = component.MustNewType("fluent_forward")

// NewFactory returns the factory of the fluent_forward exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(componentType, createDefaultConfig,
		exporter.WithLogs(createLogs, component.StabilityLevelDevelopment),
	)
}

func createDefaultConfig() component.Config {
	queue := exporterhelper.NewDefaultQueueConfig()
	// Bounded in bytes, and blocking when full so that readers slow down
	// (backpressure) before anything is dropped.
	queue.Sizer = exporterhelper.RequestSizerTypeBytes
	queue.QueueSize = 64 << 20
	queue.BlockOnOverflow = true
	queue.NumConsumers = 4
	// Batches are cut after the queue, so records are persisted first.
	batch := exporterhelper.NewDefaultBatchConfig()
	batch.Sizer = exporterhelper.RequestSizerTypeItems
	batch.MinSize = 2048
	batch.MaxSize = 8192
	batch.FlushTimeout = 200 * time.Millisecond
	queue.Batch = configoptional.Some(batch)
	timeout := exporterhelper.NewDefaultTimeoutConfig()
	timeout.Timeout = 30 * time.Second
	// Retry until delivered: giving up after a while would drop records that
	// the (persistent) queue holds; a full queue slows the readers instead.
	retry := configretry.NewDefaultBackOffConfig()
	retry.MaxElapsedTime = 0
	hostname, err := os.Hostname()
	if err != nil || hostname == "" {
		hostname = "weft"
	}
	return &Config{
		SelfHostname:     hostname,
		Tag:              defaultTag,
		RequireAck:       true,
		AckTimeout:       15 * time.Second,
		DialTimeout:      5 * time.Second,
		WriteTimeout:     10 * time.Second,
		Keepalive:        30 * time.Second,
		MaxIdleConns:     4,
		FailoverCooldown: 30 * time.Second,
		TLS:              configtls.ClientConfig{Insecure: true},
		TimeoutConfig:    timeout,
		QueueConfig:      configoptional.Some(queue),
		BackOffConfig:    retry,
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	e, err := newExporter(c, set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	// One path, two exporterhelpers: the outer one holds the sending queue
	// (and the exporter's otelcol_exporter_* telemetry) and hands each batch
	// to export; the inner one retries pushLogs with retry_on_failure and
	// bounds each attempt with timeout. They are split so that export sees
	// the retry's final outcome and counts what is given up, by reason.
	// The inner one reports no telemetry of its own, which would count
	// every batch twice.
	inner := set
	inner.TelemetrySettings.MeterProvider = metricnoop.NewMeterProvider()
	inner.TelemetrySettings.TracerProvider = tracenoop.NewTracerProvider()
	inner.Logger = set.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return skipMessageCore{Core: c, msg: innerFailureMsg}
	}))
	retrying, err := exporterhelper.NewLogs(ctx, inner, cfg, e.pushLogs,
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
	)
	if err != nil {
		return nil, err
	}
	e.retrying = retrying
	queued, err := exporterhelper.NewLogs(ctx, set, cfg, e.export,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}), // per attempt, in the inner one
		exporterhelper.WithQueue(c.QueueConfig),
	)
	if err != nil {
		return nil, err
	}
	return &logsExporter{Logs: queued, retrying: retrying, fe: e}, nil
}

// innerFailureMsg starts the line the inner exporterhelper logs when it
// returns an error; the outer one logs the same error again ("Exporting
// failed. Dropping data." from the queue, or "Rejecting data." without one).
const innerFailureMsg = "Exporting failed. Rejecting data."

// skipMessageCore drops the entries whose message starts with msg, so that
// the retry's own lines ("Exporting failed. Will retry ...") stay and a
// batch's final failure is logged once.
type skipMessageCore struct {
	zapcore.Core
	msg string
}

func (c skipMessageCore) With(fields []zapcore.Field) zapcore.Core {
	return skipMessageCore{Core: c.Core.With(fields), msg: c.msg}
}

func (c skipMessageCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if strings.HasPrefix(e.Message, c.msg) {
		return ce
	}
	return c.Core.Check(e, ce)
}

// logsExporter counts the records the sending queue does not accept, and
// bounds Shutdown: batches in flight get up to ack_timeout (or until the
// shutdown context ends, if sooner) to be acknowledged, then every
// connection is closed so that nothing waits on a silent server. With a
// persistent queue the unacknowledged batches stay in storage. It also
// makes a second Shutdown a no-op.
type logsExporter struct {
	exporter.Logs // the sending queue
	retrying      exporter.Logs
	fe            *forwardExporter
	once          sync.Once
	err           error
}

// ConsumeLogs hands ld to the sending queue. When there is a queue and it
// refuses the batch, the records are counted as dropped (the caller also
// gets the error); without a queue the caller gets every export error.
func (l *logsExporter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if !l.fe.queued {
		return l.Logs.ConsumeLogs(ctx, ld)
	}
	n := ld.LogRecordCount() // the queue may take ld over
	err := l.Logs.ConsumeLogs(ctx, ld)
	if err != nil {
		// Full, full until the caller stopped waiting, or (a memory queue)
		// larger than the whole queue; else the storage failed.
		reason := reasonQueueFull
		full := errors.Is(err, exporterhelper.ErrQueueIsFull) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		if l.fe.persistent && !full {
			reason = reasonNotPersisted
		}
		l.fe.tel.drop(n, reason, err)
	}
	return err
}

func (l *logsExporter) Start(ctx context.Context, host component.Host) error {
	if err := l.retrying.Start(ctx, host); err != nil {
		return err
	}
	return l.Logs.Start(ctx, host)
}

// Shutdown stops the retry first, so that a batch waiting for its next
// attempt ends at once (kept by a persistent queue), then the queue, which
// gives what it still holds in memory one attempt each, then the client.
func (l *logsExporter) Shutdown(ctx context.Context) error {
	l.once.Do(func() {
		grace, cancel := context.WithTimeout(ctx, l.fe.cfg.AckTimeout)
		defer cancel()
		stop := context.AfterFunc(grace, l.fe.abort)
		defer stop()
		l.err = errors.Join(l.retrying.Shutdown(ctx), l.Logs.Shutdown(ctx))
	})
	return l.err
}
