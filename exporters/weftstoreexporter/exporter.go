package weftstoreexporter

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension"
)

// storeExporter writes every signal into the weft_store extension named by
// its config. It keeps no state besides the extension it found at start.
type storeExporter struct {
	store *weftstoreextension.Handle
}

var errNoStore = errors.New("weft_store exporter: not started")

func newExporter(cfg *Config) *storeExporter {
	return &storeExporter{store: weftstoreextension.NewHandle(cfg.Store)}
}

func (e *storeExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	st := e.store.Get()
	if st == nil {
		return errNoStore
	}
	return st.AppendTraces(ctx, td)
}

func (e *storeExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	st := e.store.Get()
	if st == nil {
		return errNoStore
	}
	return st.AppendLogs(ctx, ld)
}

// pushMetrics appends md. Samples the TSDB rejects are counted by the store
// (weft_store.rejected_samples) and are not an error; a failed commit is
// permanent: retrying the same batch cannot succeed.
func (e *storeExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	st := e.store.Get()
	if st == nil {
		return errNoStore
	}
	if err := st.AppendMetrics(ctx, md); err != nil {
		return consumererror.NewPermanent(err)
	}
	return nil
}
