package fluentforwardexporter

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/weftobs/weft/internal/weftest"
)

var storageID = component.MustNewID("file_storage")

// startStorage starts a file_storage extension over dir.
func startStorage(t *testing.T, dir string) (extension.Extension, component.Host) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = storageID // stable across restarts, as in a collector config
	ext, err := f.Create(t.Context(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(t.Context(), componenttest.NewNopHost()))
	return ext, weftest.Host{storageID: ext}
}

// TestPersistentQueueSurvivesOutageAndRestart: records accepted while the
// server is down stay in the file_storage queue across an exporter restart
// and all arrive, exactly once, when the server is back.
func TestPersistentQueueSurvivesOutageAndRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // the server is down

	dir := t.TempDir()
	cfg := testConfig(addr)
	cfg.QueueConfig.Get().StorageID = &storageID

	ext, host := startStorage(t, dir)
	exp := startExporter(t, cfg, host)
	const batches, perBatch = 10, 300
	for b := range batches {
		require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(b*perBatch, perBatch)))
	}
	shutdownWithin(t, exp, 5*time.Second)
	require.NoError(t, ext.Shutdown(context.Background()))

	// The server comes back on the same port; a new exporter over the same
	// queue directory delivers everything.
	srv := newFwdServerAt(t, addr, modeAck)
	ext2, host2 := startStorage(t, dir)
	defer func() { require.NoError(t, ext2.Shutdown(context.Background())) }()
	exp2 := startExporter(t, cfg, host2)
	defer shutdownWithin(t, exp2, 5*time.Second)

	require.Eventually(t, func() bool { return ackedSeqs(srv) == batches*perBatch }, 20*time.Second, 10*time.Millisecond, "not every record acknowledged")
	evs, _, unacked, _ := srv.snapshot()
	assert.Len(t, evs, batches*perBatch, "no duplicates: nothing reached the server before the restart")
	assert.Zero(t, unacked)
	seqs := seqsOf(t, evs)
	for i := range int64(batches * perBatch) {
		assert.Equal(t, 1, seqs[i], "seq %d", i)
	}
}
