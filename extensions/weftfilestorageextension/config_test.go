package weftfilestorageextension

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	for _, tc := range []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(componentType), want: &Config{Directory: "/var/lib/weft/queue", Fsync: true, Preallocate: 4 << 20, Reserve: 1 << 20, CompactionMinDead: 8 << 20}},
		{id: component.NewIDWithName(componentType, "custom"), want: &Config{Directory: "/var/lib/weft/queue2", CreateDirectory: true, Fsync: false, Preallocate: 1 << 20, Reserve: 256 << 10, CompactionMinDead: 1 << 20}},
		{id: component.NewIDWithName(componentType, "bad"), wantErr: "directory: required\nreserve: must be 0 or more bytes, got -1"},
	} {
		t.Run(tc.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tc.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg)
		})
	}
}
