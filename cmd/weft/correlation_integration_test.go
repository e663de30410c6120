//go:build integration

package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/democonfig"
	"github.com/weftobs/weft/internal/loopback"
	"github.com/weftobs/weft/internal/simnode"
)

var probeType = component.MustNewType("weft_probe")

// storeProbe is a test-only extension that hands the running weft_store to
// the test, so the test can ask it what it knows while the agent runs.
type storeProbe struct {
	found chan<- *weftstoreextension.Store
}

func (p storeProbe) Start(_ context.Context, host component.Host) error {
	for id, ext := range host.GetExtensions() {
		if s, ok := ext.(*weftstoreextension.Store); ok && id.Type().String() == "weft_store" {
			p.found <- s
			return nil
		}
	}
	return errors.New("no weft_store extension")
}

func (storeProbe) Shutdown(context.Context) error { return nil }

func (storeProbe) Dependencies() []component.ID {
	return []component.ID{component.MustNewID("weft_store")}
}

// appTraceIDs returns the trace IDs of every simulated request, read from
// the entry containers' log files (productpage and the function each log
// one line per request).
func appTraceIDs(t *testing.T, podsDir string) []string {
	t.Helper()
	re := regexp.MustCompile(`(?:"trace_id":"|"traceparent":"00-)([0-9a-f]{32})`)
	seen := map[string]bool{}
	var ids []string
	for _, pattern := range []string{"bookinfo_productpage-*/productpage/0.log*", "functions_hello-*/user-container/0.log*"} {
		files, err := filepath.Glob(filepath.Join(podsDir, pattern))
		require.NoError(t, err)
		require.NotEmpty(t, files, pattern)
		for _, f := range files {
			fh, err := os.Open(f)
			require.NoError(t, err)
			sc := bufio.NewScanner(fh)
			sc.Buffer(make([]byte, 64*1024), 1<<20)
			for sc.Scan() {
				if m := re.FindStringSubmatch(sc.Text()); m != nil && !seen[m[1]] {
					seen[m[1]] = true
					ids = append(ids, m[1])
				}
			}
			require.NoError(t, sc.Err())
			require.NoError(t, fh.Close())
		}
	}
	return ids
}

func mustTraceID(t *testing.T, id string) pcommon.TraceID {
	t.Helper()
	var tid pcommon.TraceID
	_, err := hex.Decode(tid[:], []byte(id))
	require.NoError(t, err)
	return tid
}

// TestDemoCorrelation runs the demo workload for 60 s through the demo
// configuration (container_logs → trace_context, pod_scrape, OTLP spans →
// span_metrics, all into weft_store) and checks that every simulated trace
// ID returns its spans, its log records and exemplars pointing at it.
func TestDemoCorrelation(t *testing.T) {
	dir := t.TempDir()
	addrs, err := loopback.FreeAddrs(6)
	require.NoError(t, err)
	cfg := democonfig.Config{Health: addrs[0], PProf: addrs[1], OTLPGRPC: addrs[2], OTLPHTTP: addrs[3], Query: addrs[5], DataDir: filepath.Join(dir, "data")}
	cfg.MetricsHost, cfg.MetricsPort, _ = strings.Cut(addrs[4], ":")

	export, closeExport, err := simnode.OTLPExporter(cfg.OTLPGRPC)
	require.NoError(t, err)
	defer closeExport()
	node, err := simnode.Start(simnode.Options{Dir: dir, Rate: 200, Export: export, ErrorBurst: true, ErrorAfter: 20 * time.Second, Seed: 11})
	require.NoError(t, err)
	defer node.Close()
	cfg.PodsDir = node.PodsDir()
	cfg.ScrapeJobs, err = democonfig.ScrapeJobs(node.Endpoints())
	require.NoError(t, err)

	cfg.RulesDir, err = democonfig.WriteRules(dir)
	require.NoError(t, err)
	var rendered strings.Builder
	require.NoError(t, democonfig.Render(&rendered, cfg))
	yaml := strings.Replace(rendered.String(), "extensions:\n", "extensions:\n  weft_probe: {}\n", 1)
	// The probe joins the service's extension list, whatever it holds.
	svc := strings.Index(yaml, "\nservice:\n")
	require.Positive(t, svc, "rendered demo config has a service section")
	list := strings.Index(yaml[svc:], "  extensions: [")
	require.Positive(t, list, "rendered demo config lists its extensions")
	end := svc + list + strings.Index(yaml[svc+list:], "]")
	yaml = yaml[:end] + ", weft_probe" + yaml[end:]
	cfgPath := filepath.Join(dir, "weft.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(yaml), 0o600))

	found := make(chan *weftstoreextension.Store, 1)
	set := collectorSettings("file:" + cfgPath)
	set.DisableGracefulShutdown = true
	set.Factories = func() (otelcol.Factories, error) {
		f, err := components()
		if err != nil {
			return f, err
		}
		f.Extensions[probeType] = extension.NewFactory(probeType, func() component.Config { return &struct{}{} },
			func(context.Context, extension.Settings, component.Config) (extension.Extension, error) {
				return storeProbe{found: found}, nil
			}, component.StabilityLevelDevelopment)
		return f, nil
	}
	col, err := otelcol.NewCollector(set)
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-done) })
	var store *weftstoreextension.Store
	select {
	case store = <-found:
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the store probe never started")
	}
	require.NoError(t, waitHTTP(t.Context(), "http://"+cfg.Health+"/", nil))

	require.NoError(t, node.Run(t.Context(), 60*time.Second))
	require.NoError(t, node.Close()) // delivers the last spans
	ids := appTraceIDs(t, node.PodsDir())
	require.Greater(t, len(ids), 1000, "the workload ran")

	check := func(id string) (spans, logs, exemplars int) {
		c, err := store.Correlate(t.Context(), mustTraceID(t, id))
		require.NoError(t, err)
		return len(c.Spans), len(c.Logs), len(c.Exemplars)
	}
	// The pipeline drains: the newest trace gets its logs (tailed) and its
	// span-metrics exemplars (flushed every 5 s).
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s, l, e := check(ids[len(ids)-1])
		assert.Positive(c, s)
		assert.Positive(c, l)
		assert.Positive(c, e)
	}, 60*time.Second, 500*time.Millisecond)

	var noSpans, noLogs, noExemplars []string
	for _, id := range ids {
		s, l, e := check(id)
		if s == 0 {
			noSpans = append(noSpans, id)
		}
		if l == 0 {
			noLogs = append(noLogs, id)
		}
		if e == 0 {
			noExemplars = append(noExemplars, id)
		}
	}
	t.Logf("%d traces checked: %d without spans, %d without logs, %d without exemplars; store %+v",
		len(ids), len(noSpans), len(noLogs), len(noExemplars), store.Stats())
	pos := map[string]int{}
	for i, id := range ids {
		pos[id] = i
	}
	for i, id := range noExemplars {
		if i < 20 {
			c, _ := store.Correlate(t.Context(), mustTraceID(t, id))
			var names []string
			for _, s := range c.Spans {
				names = append(names, s.Service+":"+s.Operation+":"+s.End.Format("15:04:05.000"))
			}
			t.Logf("no exemplar: trace %s (#%d) spans %v", id, pos[id], names)
		}
	}
	// The same joins through weft_query's HTTP API, as a dashboard sees them.
	last := ids[len(ids)-1]
	var corr map[string]any
	code, err := getJSON(t.Context(), "http://"+cfg.Query+"/api/v1/correlate/"+last, &corr)
	require.NoError(t, err)
	require.Equal(t, 200, code)
	body, err := json.Marshal(corr)
	require.NoError(t, err)
	assert.Contains(t, string(body), last)
	var q promResult
	// The node is gone, so its series are stale now: look back over the run.
	_, err = getJSON(t.Context(), "http://"+cfg.Query+`/api/v1/query?query=sum(max_over_time(istio_requests_total[10m]))`, &q)
	require.NoError(t, err)
	require.Len(t, q.Data.Result, 1, "scraped Envoy metrics are queryable")

	assert.Empty(t, noSpans, "traces without spans")
	assert.Empty(t, noLogs, "traces without log records")
	assert.Empty(t, noExemplars, "traces without exemplars")
}
