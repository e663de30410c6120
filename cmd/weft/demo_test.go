package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemoWithoutJaeger runs the whole demo in-process (simulated node and
// agent, spans to the debug exporter) for a short while.
func TestDemoWithoutJaeger(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := runDemo(t.Context(), demoFlags{rate: 2000, duration: 2 * time.Second, jaeger: "off", prometheus: "off", alertmgr: "off", dir: dir}, &out)
	require.NoError(t, err, "output:\n%s", out.String())
	text := out.String()

	for _, want := range []string{"agent health", "agent OTLP", "local store only", "/stats/prometheus", "/metrics", "Stops after 2s"} {
		assert.Contains(t, text, want)
	}
	m := regexp.MustCompile(`stopped: requests=(\d+) log_records=(\d+) .* spans_sent=(\d+) spans_dropped=(\d+)`).FindStringSubmatch(text)
	require.NotNil(t, m, "no final summary in:\n%s", text)
	records, _ := strconv.Atoi(m[2])
	sent, _ := strconv.Atoi(m[3])
	dropped, _ := strconv.Atoi(m[4])
	assert.Positive(t, records)
	assert.Positive(t, sent, "the agent accepted spans")
	assert.Zero(t, dropped)

	logs, err := filepath.Glob(filepath.Join(dir, "pods", "*", "*", "0.log"))
	require.NoError(t, err)
	assert.Len(t, logs, 10, "one log per simulated container")
	cfg, err := os.ReadFile(filepath.Join(dir, "weft-demo.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "container_logs:")
}
