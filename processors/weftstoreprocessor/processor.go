package weftstoreprocessor

import (
	"context"
	"errors"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension"
)

// storeProcessor appends to the extension it found at start and passes
// every batch on as it came.
type storeProcessor struct {
	cfg   *Config
	store atomic.Pointer[weftstoreextension.Store]
}

var errNoStore = errors.New("weft_store processor: not started")

// start finds the extension; extensions start before pipelines.
func (p *storeProcessor) start(_ context.Context, host component.Host) error {
	st, err := weftstoreextension.FromHost(host, p.cfg.Store)
	if err != nil {
		return err
	}
	p.store.Store(st)
	return nil
}

func (p *storeProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	st := p.store.Load()
	if st == nil {
		return td, errNoStore
	}
	return td, st.AppendTraces(ctx, td)
}

func (p *storeProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	st := p.store.Load()
	if st == nil {
		return ld, errNoStore
	}
	return ld, st.AppendLogs(ctx, ld)
}
