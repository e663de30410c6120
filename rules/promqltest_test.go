package rules

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

// storeStorage presents a weft_store as a storage.Storage: queries and
// appends go to the store's TSDB through its public Queryable, Appendable
// and AppendableV2, the paths the rules manager and the query API use.
type storeStorage struct {
	st *weftstoreextension.Store
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
	return s.st.AppendableV2().AppenderV2(ctx)
}

func (s storeStorage) StartTime() (int64, error) { return math.MinInt64, nil }

func (s storeStorage) Close() error { return s.st.Shutdown(context.Background()) }

// newSuiteStorage opens a weft_store configured as Prometheus configures
// its own PromQL test storage (promqltest.RunBuiltinTests): start
// timestamps stored, and a 12h appendable window, since the test files
// load each series in turn from time 0 (a later series starts far behind
// the newest sample of an earlier one).
func newSuiteStorage(tb testing.TB) storage.Storage {
	st := weftstoretest.Start(tb, func(cfg *weftstoreextension.Config) {
		cfg.Directory = tb.TempDir()
		// The test files write samples from 1970 on: keep them.
		cfg.MetricsRetention = 1_000_000 * time.Hour
		cfg.AppendableWindow = 12 * time.Hour
		cfg.StartTimestamps = true
		require.NoError(tb, cfg.Validate())
	})
	return storeStorage{st}
}

// TestPromQLBuiltinSuite runs every PromQL test file of the pinned
// Prometheus module (promql/promqltest/testdata, embedded in the package)
// against weft_store, with the engine Prometheus's own TestEvaluations
// uses.
func TestPromQLBuiltinSuite(t *testing.T) {
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	ran := 0
	promqltest.RunBuiltinTestsWithStorage(t, engine, func(tb testing.TB) storage.Storage {
		ran++
		return newSuiteStorage(tb)
	})
	// 21 files in v0.315.1; each opens at least one storage.
	require.GreaterOrEqual(t, ran, 21, "the suite ran every file")
}
