package fluentforwardexporter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/weftobs/weft/extensions/weftfilestorageextension"
	"github.com/weftobs/weft/internal/weftest"
)

var weftStorageID = component.MustNewID("weft_file_storage")

// agent is an exporter over a weft_file_storage queue, sharing one
// telemetry so that a test reads both components' self-metrics.
type agent struct {
	exp exporter.Logs
	ext extension.Extension
	tel *componenttest.Telemetry
}

func startAgent(t *testing.T, addr, dir string, tune func(cfg map[string]any)) *agent {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))

	f := weftfilestorageextension.NewFactory()
	scfg := f.CreateDefaultConfig()
	conf := map[string]any{"directory": dir, "fsync": false}
	if tune != nil {
		tune(conf)
	}
	require.NoError(t, unmarshalInto(conf, scfg))
	eset := extensiontest.NewNopSettings(f.Type())
	eset.ID = weftStorageID
	eset.TelemetrySettings = tel.NewTelemetrySettings()
	eset.Logger = logger
	ext, err := f.Create(t.Context(), eset, scfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(t.Context(), componenttest.NewNopHost()))

	cfg := testConfig(addr)
	cfg.QueueConfig.Get().StorageID = &weftStorageID
	set := exportertest.NewNopSettings(componentType)
	set.ID = component.NewID(componentType)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = logger
	exp, err := NewFactory().CreateLogs(t.Context(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(t.Context(), weftest.Host{weftStorageID: ext}),
		"the exporter starts whatever the state of its queue file")
	return &agent{exp: exp, ext: ext, tel: tel}
}

func (a *agent) stop(t *testing.T) {
	t.Helper()
	shutdownWithin(t, a.exp, 5*time.Second)
	require.NoError(t, a.ext.Shutdown(context.Background()))
}

// sum adds up a counter's data points with the given reason ("" = all).
func (a *agent) sum(t *testing.T, name, reason string) int64 {
	t.Helper()
	m, err := a.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	s, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok)
	var n int64
	for _, dp := range s.DataPoints {
		if r, _ := dp.Attributes.Value("reason"); reason == "" || r.AsString() == reason {
			n += dp.Value
		}
	}
	return n
}

// TestCorruptQueueFile: a queue file damaged while the agent was down
// (bytes of one queued batch overwritten) neither stops the exporter from
// starting nor holds back the intact batches; the records lost are
// exactly those of the damaged batch, and the counter says so.
func TestCorruptQueueFile(t *testing.T) {
	addr := closedAddr(t) // the server is down
	dir := t.TempDir()
	a := startAgent(t, addr, dir, nil)
	const batches, perBatch = 10, 300
	for b := range batches {
		require.NoError(t, a.exp.ConsumeLogs(t.Context(), seqLogs(b*perBatch, perBatch)))
	}
	a.stop(t)

	// Damage the body of record 1234, inside batch 4 (1200–1499).
	files, err := filepath.Glob(filepath.Join(dir, "*.wlog"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	raw, err := os.ReadFile(files[0])
	require.NoError(t, err)
	at := bytes.Index(raw, []byte("line 1234"))
	require.Positive(t, at)
	raw[at+5] ^= 0xff
	require.NoError(t, os.WriteFile(files[0], raw, 0o600))

	srv := newFwdServerAt(t, addr, modeAck)
	a2 := startAgent(t, addr, dir, nil)
	defer a2.stop(t)
	lost := a2.sum(t, "weft_file_storage.records_lost", "")
	assert.Equal(t, int64(perBatch), lost, "one batch lost, counted in records")
	require.Eventually(t, func() bool { return ackedSeqs(srv) == batches*perBatch-int(lost) }, 20*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return ackedSeqs(srv) > batches*perBatch-int(lost) }, 300*time.Millisecond, 10*time.Millisecond)
	evs, _, _, _ := srv.snapshot()
	seqs := seqsOf(t, evs)
	for i := range int64(batches * perBatch) {
		if i >= 1200 && i < 1500 {
			assert.Zero(t, seqs[i], "record %d of the damaged batch", i)
		} else {
			assert.Equal(t, 1, seqs[i], "record %d", i)
		}
	}
	assert.Zero(t, a2.sum(t, droppedMetric, ""))
}

// unmarshalInto sets cfg's fields from conf the way the collector does.
func unmarshalInto(conf map[string]any, cfg component.Config) error {
	return confmap.NewFromStringMap(conf).Unmarshal(cfg)
}
