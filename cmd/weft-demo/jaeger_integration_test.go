//go:build integration

package main

import (
	"context"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/backends"
)

// TestDemoSendsTracesToJaeger runs the demo with the real Jaeger and waits
// until every simulated service has traces there.
func TestDemoSendsTracesToJaeger(t *testing.T) {
	bin, err := backends.FindJaeger()
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, demoFlags{weft: agentBin, rate: 500, jaeger: bin, dir: t.TempDir(), errors: true, errorAfter: time.Second}, &out, &out)
	}()

	queryURL := regexp.MustCompile(`Jaeger query API\s+(http://127\.0\.0\.1:\d+)/api/`)
	var query string
	require.Eventually(t, func() bool {
		m := queryURL.FindStringSubmatch(out.String())
		if m != nil {
			query = m[1]
		}
		return m != nil
	}, 60*time.Second, 50*time.Millisecond, "demo output:\n%s", out.String())

	want := []string{"hello", "productpage", "ratings", "reviews"}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var services struct{ Data []string }
		mustGetJSON(c, t.Context(), query+"/api/services", &services)
		for _, s := range want {
			assert.True(c, slices.Contains(services.Data, s), "service %s not in Jaeger yet: %v", s, services.Data)
		}
	}, 60*time.Second, 200*time.Millisecond)

	// The error burst reaches Jaeger as failed reviews spans.
	type tag struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var traces struct {
			Data []struct {
				Spans []struct {
					Tags []tag `json:"tags"`
				} `json:"spans"`
			}
		}
		mustGetJSON(c, t.Context(), query+"/api/traces?service=reviews&lookback=1h&limit=500", &traces)
		failed := 0
		for _, tr := range traces.Data {
			for _, s := range tr.Spans {
				if slices.Contains(s.Tags, tag{Key: "otel.status_code", Value: "ERROR"}) {
					failed++
				}
			}
		}
		assert.Positive(c, failed, "no failed span among %d reviews traces", len(traces.Data))
	}, 60*time.Second, 500*time.Millisecond)

	cancel()
	require.NoError(t, <-done)
	assert.Contains(t, out.String(), "weft demo: stopped:")
}
