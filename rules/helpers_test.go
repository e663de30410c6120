package rules

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql/parser"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

// newTestStore creates and starts a real weft_store with its WAL in dir
// (a new temp dir when empty); it is shut down in t.Cleanup unless the
// test shuts it down itself (Shutdown is safe twice).
func newTestStore(t testing.TB, dir string) *weftstoreextension.Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return weftstoretest.Start(t, func(c *weftstoreextension.Config) { c.Directory = dir })
}

// testConfig is the engine's default configuration.
func testConfig() *Config {
	c := DefaultConfig()
	return &c
}

// startEngine builds an engine over st from cfg (after mod, when set, sees
// the engine before setup) and starts it; it is stopped in t.Cleanup.
func startEngine(t *testing.T, st *weftstoreextension.Store, cfg *Config, set Settings, mod func(*Engine)) *Engine {
	t.Helper()
	require.NoError(t, cfg.Check())
	e := newEngine(cfg, set)
	if mod != nil {
		mod(e)
	}
	require.NoError(t, e.setup(st))
	require.NoError(t, e.Start())
	t.Cleanup(e.Stop)
	return e
}

// reloadResults records the engine's OnReload calls by result.
type reloadResults struct {
	mu sync.Mutex
	n  map[string]int64
}

func (r *reloadResults) record(result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int64{}
	}
	r.n[result]++
}

func (r *reloadResults) byResult() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int64{}
	for k, v := range r.n {
		out[k] = v
	}
	return out
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// sink records notifications.
type sink struct {
	mu    sync.Mutex
	now   time.Time // the evaluation time, set by the test
	sends []sent
}

// sent is one notification and the evaluation time it was sent at.
type sent struct {
	at     time.Time
	alerts []*notifier.Alert
}

func (s *sink) setNow(ts time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = ts
}

func (s *sink) record(as []*notifier.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends = append(s.sends, sent{s.now, as})
}

func (s *sink) take() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sends
	s.sends = nil
	return out
}

// newEvalEngine returns an extension set up over st (no goroutines:
// groups are evaluated by the test at explicit times) and the groups of
// the rule files.
func newEvalEngine(t *testing.T, st *weftstoreextension.Store, mod func(*Config), files ...string) (*Engine, []*promrules.Group, *sink) {
	t.Helper()
	cfg := testConfig()
	cfg.RuleFiles = files
	if mod != nil {
		mod(cfg)
	}
	require.NoError(t, cfg.Check())
	e := newEngine(cfg, Settings{})
	require.NoError(t, e.setup(st))
	s := &sink{}
	e.onSend = s.record
	list, contents, _, err := readSources(cfg.RuleFiles)
	require.NoError(t, err)
	set, err := e.parseSet(list, contents)
	require.NoError(t, err)
	// What apply hands the rule manager: node rules and partials.
	plan, err := PlanRules(list, set, cfg.Scope.options(), e.parser)
	require.NoError(t, err)
	e.loader.set(plan.NodeGroups(cfg.Scope.ClusterRules == clusterRulesNode))
	e.plan = plan
	groups, errs := e.mgr.LoadGroups(cfg.EvaluationInterval, labels.FromMap(cfg.ExternalLabels), cfg.ExternalURL, nil, false, list...)
	require.Empty(t, errs)
	var out []*promrules.Group
	for _, g := range groups {
		out = append(out, g)
	}
	t.Cleanup(e.evidence.wait)
	return e, out, s
}

// appendSample writes one float sample and, when traceID is set, an
// exemplar on it.
func appendSample(t testing.TB, st *weftstoreextension.Store, ls labels.Labels, ts time.Time, v float64, traceID string) {
	t.Helper()
	app := st.Appendable().Appender(context.Background())
	ref, err := app.Append(0, ls, ts.UnixMilli(), v)
	require.NoError(t, err)
	if traceID != "" {
		_, err = app.AppendExemplar(ref, ls, exemplar.Exemplar{
			Labels: labels.FromStrings("trace_id", traceID), Value: 1, Ts: ts.UnixMilli(), HasTs: true,
		})
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
}

// appendFailingSpan stores one failing server span and one log line of
// the trace.
func appendFailingSpan(t testing.TB, st *weftstoreextension.Store, service, ns, pod string, traceID pcommon.TraceID, end time.Time, logBody string) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	a := rs.Resource().Attributes()
	a.PutStr("service.name", service)
	a.PutStr("k8s.namespace.name", ns)
	a.PutStr("k8s.pod.name", pod)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(traceID)
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("GET /reviews")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-50 * time.Millisecond)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	sp.Status().SetCode(ptrace.StatusCodeError)
	require.NoError(t, st.AppendTraces(context.Background(), td))

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	la := rl.Resource().Attributes()
	la.PutStr("service.name", service)
	la.PutStr("k8s.namespace.name", ns)
	la.PutStr("k8s.pod.name", pod)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(end))
	lr.SetTraceID(traceID)
	lr.Body().SetStr(logBody)
	require.NoError(t, st.AppendLogs(context.Background(), ld))
}

func traceID(b byte) pcommon.TraceID {
	return pcommon.TraceID{0xaa, b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b}
}

func writeBenchFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// benchEngine is newEvalEngine for benchmarks.
func benchEngine(b *testing.B, st *weftstoreextension.Store, files ...string) (*Engine, []*promrules.Group) {
	b.Helper()
	cfg := testConfig()
	cfg.RuleFiles = files
	e := newEngine(cfg, Settings{})
	require.NoError(b, e.setup(st))
	list, contents, _, err := readSources(cfg.RuleFiles)
	require.NoError(b, err)
	set, err := e.parseSet(list, contents)
	require.NoError(b, err)
	e.loader.set(set)
	groups, errs := e.mgr.LoadGroups(cfg.EvaluationInterval, labels.EmptyLabels(), "", nil, false, list...)
	require.Empty(b, errs)
	out := make([]*promrules.Group, 0, len(groups))
	for _, g := range groups {
		out = append(out, g)
	}
	b.Cleanup(e.evidence.wait)
	return e, out
}

func e2eParser() parser.Parser { return parser.NewParser(parser.Options{}) }
