package index

import (
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// skeletonTraces returns the resources and scopes of td, with their schema
// URLs, and no span: marshaled and split, it gives the bytes each scope's
// spans share (core.addScope), while the spans are encoded one by one.
// A resource is copied through pdata, not encoded here, so that whatever
// it holds that pdata's public API does not show (entity references) is
// kept.
func skeletonTraces(td ptrace.Traces) ptrace.Traces {
	sk := ptrace.NewTraces()
	rss := td.ResourceSpans()
	sk.ResourceSpans().EnsureCapacity(rss.Len())
	for _, rs := range rss.All() {
		o := sk.ResourceSpans().AppendEmpty()
		rs.Resource().CopyTo(o.Resource())
		o.SetSchemaUrl(rs.SchemaUrl())
		for _, ss := range rs.ScopeSpans().All() {
			os := o.ScopeSpans().AppendEmpty()
			ss.Scope().CopyTo(os.Scope())
			os.SetSchemaUrl(ss.SchemaUrl())
		}
	}
	return sk
}

// skeletonLogs is skeletonTraces for logs.
func skeletonLogs(ld plog.Logs) plog.Logs {
	sk := plog.NewLogs()
	rls := ld.ResourceLogs()
	sk.ResourceLogs().EnsureCapacity(rls.Len())
	for _, rl := range rls.All() {
		o := sk.ResourceLogs().AppendEmpty()
		rl.Resource().CopyTo(o.Resource())
		o.SetSchemaUrl(rl.SchemaUrl())
		for _, sl := range rl.ScopeLogs().All() {
			os := o.ScopeLogs().AppendEmpty()
			sl.Scope().CopyTo(os.Scope())
			os.SetSchemaUrl(sl.SchemaUrl())
		}
	}
	return sk
}
