package containerlogsreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	storageID := component.MustNewID("file_storage")
	tests := []struct {
		id   component.ID
		want *Config
	}{
		{id: component.NewID(component.MustNewType(typeStr)), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(component.MustNewType(typeStr), "custom"), want: &Config{
			Include:              []string{"/var/log/pods/*/*/*.log"},
			Exclude:              []string{"/var/log/pods/kube-system_*/*/*.log"},
			StartAt:              startAtBeginning,
			PollInterval:         100 * time.Millisecond,
			FallbackPollInterval: 7 * time.Second,
			MinReadInterval:      20 * time.Millisecond,
			RescanInterval:       250 * time.Millisecond,
			FullRescanInterval:   30 * time.Second,
			MaxLogSize:           65536,
			FlushTimeout:         2 * time.Second,
			MaxBatchRecords:      500,
			MaxBatchBytes:        524288,
			MaxInFlightBytes:     8388608,
			Storage:              &storageID,
			Multiline:            MultilineConfig{LineStartPattern: `^\S`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestValidateNamesKey(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		key    string
	}{
		{"no include", func(c *Config) { c.Include = nil }, "include"},
		{"bad glob", func(c *Config) { c.Exclude = []string{"["} }, "include/exclude"},
		{"start_at", func(c *Config) { c.StartAt = "middle" }, "start_at"},
		{"poll_interval zero", func(c *Config) { c.PollInterval = 0 }, "poll_interval"},
		{"poll_interval too long", func(c *Config) { c.PollInterval = 2 * time.Second }, "poll_interval"},
		{"fallback_poll_interval zero", func(c *Config) { c.FallbackPollInterval = 0 }, "fallback_poll_interval"},
		{"fallback_poll_interval below poll_interval", func(c *Config) { c.FallbackPollInterval = c.PollInterval / 2 }, "fallback_poll_interval"},
		{"fallback_poll_interval too long", func(c *Config) { c.FallbackPollInterval = 2 * time.Minute }, "fallback_poll_interval"},
		{"min_read_interval negative", func(c *Config) { c.MinReadInterval = -time.Millisecond }, "min_read_interval"},
		{"min_read_interval too long", func(c *Config) { c.MinReadInterval = 2 * time.Second }, "min_read_interval"},
		{"rescan_interval", func(c *Config) { c.RescanInterval = 0 }, "rescan_interval"},
		{"full_rescan_interval zero", func(c *Config) { c.FullRescanInterval = 0 }, "full_rescan_interval"},
		{"full_rescan_interval below rescan_interval", func(c *Config) { c.FullRescanInterval = c.RescanInterval / 2 }, "full_rescan_interval"},
		{"full_rescan_interval too long", func(c *Config) { c.FullRescanInterval = 2 * time.Hour }, "full_rescan_interval"},
		{"max_log_size", func(c *Config) { c.MaxLogSize = 10 }, "max_log_size"},
		{"flush_timeout", func(c *Config) { c.FlushTimeout = 0 }, "flush_timeout"},
		{"max_batch_records", func(c *Config) { c.MaxBatchRecords = 0 }, "max_batch_records"},
		{"max_batch_bytes", func(c *Config) { c.MaxBatchBytes = 1 }, "max_batch_bytes"},
		{"max_in_flight_bytes", func(c *Config) { c.MaxInFlightBytes = c.MaxBatchBytes - 1 }, "max_in_flight_bytes"},
		{"multiline", func(c *Config) { c.Multiline.LineStartPattern = "(" }, "multiline.line_start_pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			require.NoError(t, cfg.Validate())
			tt.mutate(cfg)
			err := cfg.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.key+":")
		})
	}
}
