package weftstoreprocessor

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension"
)

// storeProcessor appends to the store it found at start and passes every
// batch on as it came.
type storeProcessor struct {
	store *weftstoreextension.Handle
}

var errNoStore = errors.New("weft_store processor: not started")

func (p *storeProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	st := p.store.Get()
	if st == nil {
		return td, errNoStore
	}
	return td, st.AppendTraces(ctx, td)
}

func (p *storeProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	st := p.store.Get()
	if st == nil {
		return ld, errNoStore
	}
	return ld, st.AppendLogs(ctx, ld)
}
