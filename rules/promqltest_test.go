package rules

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/weftobs/weft/extensions/weftstore"
)

// storeStorage presents a weft_store as a storage.Storage: queries and
// appends go to the store's TSDB through its public Queryable and
// Appendable, exactly the paths the rules manager uses.
type storeStorage struct {
	st *weftstore.Store
}

func (s storeStorage) Querier(mint, maxt int64) (storage.Querier, error) {
	return s.st.Queryable().Querier(mint, maxt)
}

func (s storeStorage) ChunkQuerier(int64, int64) (storage.ChunkQuerier, error) {
	return nil, storage.ErrNotFound // the engine uses Querier only
}

func (s storeStorage) Appender(ctx context.Context) storage.Appender {
	return s.st.Appendable().Appender(ctx)
}

func (s storeStorage) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return v1Appender{s.st.Appendable().Appender(ctx)}
}

func (s storeStorage) StartTime() (int64, error) { return math.MinInt64, nil }

func (s storeStorage) Close() error { return s.st.Shutdown(context.Background()) }

// v1Appender adapts the store's appender to AppenderV2 (the interface the
// PromQL test loader writes through); start timestamps are not stored.
type v1Appender struct{ storage.Appender }

func (a v1Appender) Append(ref storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return a.Appender.AppendHistogram(ref, ls, t, h, fh)
	}
	return a.Appender.Append(ref, ls, t, v)
}

// storeGaps are the built-in test files that weft_store cannot pass, and
// why. Everything else runs.
var storeGaps = map[string]string{
	// The store keeps no start timestamps (tsdb EnableSTStorage is off).
	"start_timestamps.test": "no start-timestamp storage",
	// These load samples more than an hour older than the newest sample
	// already loaded; the store's head-only TSDB has no out-of-order window
	// and rejects them as out of bounds (counted as out_of_bounds).
	"at_modifier.test": "load older than the head's appendable window",
	"selectors.test":   "load older than the head's appendable window",
}

// builtinTestFiles lists Prometheus's PromQL test files, found next to the
// promqltest package's source in the module cache.
func builtinTestFiles(t *testing.T) []string {
	t.Helper()
	pc := reflect.ValueOf(promqltest.RunTest).Pointer()
	file, _ := runtime.FuncForPC(pc).FileLine(pc)
	files, err := filepath.Glob(filepath.Join(filepath.Dir(file), "testdata", "*.test"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "PromQL test files not found next to %s", file)
	return files
}

func newSuiteStorage(tb testing.TB) storage.Storage {
	f := weftstore.NewFactory()
	cfg := f.CreateDefaultConfig().(*weftstore.Config)
	cfg.Directory = tb.TempDir()
	// The test files write samples from 1970 on: keep them.
	cfg.MetricsRetention = 1_000_000 * time.Hour
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(tb, err)
	require.NoError(tb, ext.Start(context.Background(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, ext.Shutdown(context.Background())) })
	return storeStorage{ext.(*weftstore.Store)}
}

// TestPromQLBuiltinSuite runs Prometheus's own PromQL test files (those of
// the pinned Prometheus module) against the weft_store TSDB, except the
// storeGaps.
func TestPromQLBuiltinSuite(t *testing.T) {
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	files := builtinTestFiles(t)
	ran := 0
	for _, fn := range files {
		if _, gap := storeGaps[filepath.Base(fn)]; gap {
			continue
		}
		ran++
		t.Run(filepath.Base(fn), func(t *testing.T) {
			b, err := os.ReadFile(fn)
			require.NoError(t, err)
			promqltest.RunTestWithStorage(t, string(b), engine, newSuiteStorage)
		})
	}
	require.Equal(t, len(files)-len(storeGaps), ran, "every gap names an existing file")
	require.GreaterOrEqual(t, ran, 15, "the suite ran")
}
