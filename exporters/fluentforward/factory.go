package fluentforward

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
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
	timeout, retry := c.TimeoutConfig, c.BackOffConfig
	if e.ownRetry {
		// With a sending queue pushLogs retries and times out each attempt
		// itself (deliver), so that it can count what it gives up on. The
		// retry left to exporterhelper only sees errors returned once
		// Shutdown has begun and turns them into the shutdown error for
		// which the persistent queue keeps a batch.
		timeout = exporterhelper.TimeoutConfig{}
		retry = configretry.NewDefaultBackOffConfig()
		retry.MaxElapsedTime = 0
	}
	inner, err := exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithTimeout(timeout),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithRetry(retry),
	)
	if err != nil {
		return nil, err
	}
	return &logsExporter{Logs: inner, fe: e}, nil
}

// logsExporter counts the records the sending queue does not accept, and
// bounds Shutdown: batches in flight get up to ack_timeout (or until the
// shutdown context ends, if sooner) to be acknowledged, then every
// connection is closed so that nothing waits on a silent server. With a
// persistent queue the unacknowledged batches stay in storage. It also
// makes a second Shutdown a no-op.
type logsExporter struct {
	exporter.Logs
	fe   *forwardExporter
	once sync.Once
	err  error
}

// ConsumeLogs hands ld to the sending queue. When there is a queue and it
// refuses the batch, the records are counted as dropped (the caller also
// gets the error); without a queue the caller gets every export error.
func (l *logsExporter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if !l.fe.ownRetry {
		return l.Logs.ConsumeLogs(ctx, ld)
	}
	n := ld.LogRecordCount() // the queue may take ld over
	err := l.Logs.ConsumeLogs(ctx, ld)
	if err != nil {
		reason := reasonNotPersisted
		if errors.Is(err, exporterhelper.ErrQueueIsFull) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			// Full, or full until the caller stopped waiting.
			reason = reasonQueueFull
		} else if !l.fe.persistent {
			reason = reasonShutdown // a memory queue refuses only once stopped
		}
		l.fe.tel.drop(n, reason, err)
	}
	return err
}

func (l *logsExporter) Shutdown(ctx context.Context) error {
	l.once.Do(func() {
		l.fe.beginShutdown()
		grace, cancel := context.WithTimeout(ctx, l.fe.cfg.AckTimeout)
		defer cancel()
		stop := context.AfterFunc(grace, l.fe.abort)
		defer stop()
		l.err = l.Logs.Shutdown(ctx)
	})
	return l.err
}
