package containerlogsreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

func TestFactoryCreatesWorkingReceiver(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "container_logs", f.Type().String())
	assert.Equal(t, component.StabilityLevelAlpha, f.LogsStability())
	cfg := f.CreateDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, []string{"/var/log/pods/*/*/*.log"}, cfg.Include)
	assert.Equal(t, startAtEnd, cfg.StartAt)
	assert.Equal(t, 1<<20, cfg.MaxLogSize)

	dir := t.TempDir()
	cfg.Include = []string{filepath.Join(dir, "*", "*", "*.log")}
	cfg.StartAt = startAtBeginning
	path := podLogPath(t, dir, "ns", "pod", "c")
	appendFile(t, path, seqLines("f", 0, 3))
	s := &sink{}
	r, err := f.CreateLogs(t.Context(), receivertest.NewNopSettings(f.Type()), cfg, s)
	require.NoError(t, err)
	require.NoError(t, r.Start(t.Context(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool { return s.len() == 3 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, r.Shutdown(t.Context()))
	require.NoError(t, r.Shutdown(t.Context()))
}

func TestStartFailsOnMissingStorage(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	id := component.MustNewID("file_storage")
	cfg.Storage = &id
	r, err := newReceiver(receivertestSettings(), cfg, &sink{})
	require.NoError(t, err)
	err = r.Start(t.Context(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "storage:")
	require.NoError(t, r.Shutdown(t.Context()))
}
