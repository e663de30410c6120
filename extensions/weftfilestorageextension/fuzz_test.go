package weftfilestorageextension

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

// FuzzReplay: any file content opens without error or panic, every key the
// replay keeps reads back, and the client keeps working.
func FuzzReplay(f *testing.F) {
	valid := appendFrame(nil, []op{
		{kind: opKindSet, key: "meta", value: []byte("m1")},
		{kind: opKindSet, key: "0", value: []byte("item zero"), records: 3},
	}, 3)
	valid = appendFrame(valid, []op{{kind: opKindDelet, key: "0", records: 3}, {kind: opKindSet, key: "1", value: []byte("one"), records: 1}}, 4)
	linked := appendFrame(append([]byte(nil), valid...), []op{{kind: opKindLink, key: "2", records: 3,
		link: entry{frameValOff: headerSize + 20, frameValLen: 11, valOff: 2, valLen: 9}}}, 7)
	f.Add(linked)
	f.Add(valid)
	f.Add(valid[:len(valid)-2])      // torn values
	f.Add(valid[:40])                // torn directory
	f.Add(append(valid, 0, 0, 0, 0)) // preallocated zeros
	f.Add(append([]byte("WFS1"), valid...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.wlog")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		tel, err := newTelemetry(componenttest.NewNopTelemetrySettings().MeterProvider)
		require.NoError(t, err)
		cfg := createDefaultConfig().(*Config)
		cfg.Fsync = false
		cfg.Preallocate = 0
		cfg.Reserve = 0
		c, err := openClient(path, "c", openOSFile, cfg, counterFor("logs"), tel, zap.NewNop())
		require.NoError(t, err)
		defer c.Close(t.Context())
		for key := range c.index {
			_, err := c.Get(t.Context(), key)
			require.NoError(t, err)
		}
		require.NoError(t, c.Batch(t.Context(), storage.SetOperation("k"+strconv.Itoa(len(data)), []byte("v")), storage.DeleteOperation("meta")))
		v, err := c.Get(t.Context(), "k"+strconv.Itoa(len(data)))
		require.NoError(t, err)
		require.Equal(t, "v", string(v))
	})
}
