package fluentforwardexporter

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/weftobs/weft/internal/weftest"
)

// TestEvidenceFileStorageDamagedFileFailsStart records why the default
// profile should not keep contrib's file_storage: a bbolt file whose two
// meta pages are damaged makes the exporter's Start fail, even with
// recreate: true, so a collector restarts into the same error. (One
// damaged meta page is survived: bbolt falls back to the other.)
func TestEvidenceFileStorageDamagedFileFailsStart(t *testing.T) {
	dir := t.TempDir()
	start := func() (component.Component, error) {
		f := filestorage.NewFactory()
		cfg := f.CreateDefaultConfig().(*filestorage.Config)
		cfg.Directory, cfg.Compaction.Directory = dir, dir
		cfg.Recreate = true
		set := extensiontest.NewNopSettings(f.Type())
		set.ID = storageID
		ext, err := f.Create(t.Context(), set, cfg)
		require.NoError(t, err)
		require.NoError(t, ext.Start(t.Context(), componenttest.NewNopHost()))
		t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })

		cfgE := testConfig(closedAddr(t))
		cfgE.QueueConfig.Get().StorageID = &storageID
		eset := exportertest.NewNopSettings(componentType)
		eset.ID = component.NewID(componentType)
		exp, err := NewFactory().CreateLogs(t.Context(), eset, cfgE)
		require.NoError(t, err)
		err = exp.Start(t.Context(), weftest.Host{storageID: ext})
		if err == nil {
			require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(0, 100)))
			shutdownWithin(t, exp, 5*time.Second)
			require.NoError(t, ext.Shutdown(context.Background()))
		}
		return exp, err
	}
	_, err := start()
	require.NoError(t, err)

	files, err := filepath.Glob(filepath.Join(dir, "exporter_*"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	raw, err := os.ReadFile(files[0])
	require.NoError(t, err)
	for _, page := range []int{0, 4096} { // bbolt's two meta pages
		for i := page + 16; i < page+64; i++ {
			raw[i] ^= 0xff
		}
	}
	require.NoError(t, os.WriteFile(files[0], raw, 0o600))

	_, err = start()
	require.Error(t, err, "file_storage now opens a damaged file: revisit README's comparison")
	t.Logf("file_storage with recreate: true, damaged file: %v", err)
}
