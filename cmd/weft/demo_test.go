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

// TestDemoSkipsMissingBackends is the bare-machine case `make demo` met: the
// Makefile exports WEFT_JAEGER (and a user may export the others) naming
// binaries that were never built. Each backend is skipped with one line
// that says why and how to get it, and the demo runs.
func TestDemoSkipsMissingBackends(t *testing.T) {
	missing := t.TempDir()
	notExec := filepath.Join(missing, "prometheus")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644))
	t.Setenv("PATH", t.TempDir()) // nothing on PATH either
	t.Setenv("WEFT_JAEGER", filepath.Join(missing, "jaeger-v1.76.0"))
	t.Setenv("WEFT_PROMETHEUS", notExec)
	t.Setenv("WEFT_ALERTMANAGER", filepath.Join(missing, "alertmanager"))

	for _, tc := range []struct {
		name             string
		jaeger, prom, am string
		skips            map[string]string // backend → what its line says
	}{
		{"auto", "auto", "auto", "auto", map[string]string{
			"jaeger":       "$WEFT_JAEGER=" + filepath.Join(missing, "jaeger-v1.76.0") + ": does not exist",
			"prometheus":   "$WEFT_PROMETHEUS=" + notExec + ": not executable",
			"alertmanager": "no prometheus-alertmanager or alertmanager on PATH",
		}},
		{"paths", filepath.Join(missing, "jaeger"), notExec, "off", map[string]string{
			"jaeger":     filepath.Join(missing, "jaeger") + ": does not exist",
			"prometheus": notExec + ": not executable",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runDemo(t.Context(), demoFlags{rate: 200, duration: time.Second, jaeger: tc.jaeger, prometheus: tc.prom, alertmgr: tc.am, dir: t.TempDir()}, &out)
			require.NoError(t, err, "output:\n%s", out.String())
			text := out.String()
			for _, name := range []string{"jaeger", "prometheus", "alertmanager"} {
				lines := regexp.MustCompile(`(?m)^weft demo: `+name+` skipped: .*$`).FindAllString(text, -1)
				want, skipped := tc.skips[name]
				if !skipped {
					assert.Empty(t, lines, "%s is off: no line", name)
					continue
				}
				require.Len(t, lines, 1, "one skip line for %s in:\n%s", name, text)
				assert.Contains(t, lines[0], want)
				assert.Contains(t, lines[0], "make tools", "the line says how to get it")
			}
			assert.Regexp(t, `status page +http://127\.0\.0\.1:\d+/`, text)
			assert.Contains(t, text, "local store only")
			assert.Contains(t, text, "weft demo: stopped:")
		})
	}
}
