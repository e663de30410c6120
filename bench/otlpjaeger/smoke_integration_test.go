//go:build integration

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSmoke runs the whole harness on a tiny workload: builds weft and the
// peer, starts Jaeger, one round of each side. Needs Jaeger ($WEFT_JAEGER or
// `jaeger` on PATH; `make tools` builds it).
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := options{
		Spans: 5000, Rate: 20000, BatchSize: 100, SpansPerTrace: 10, Rounds: 1, Senders: 2, Sample: 20,
		GoMaxProcs: "2", GoMemLimit: "768MiB", DrainTimeout: 30 * time.Second, WorkDir: t.TempDir(),
	}
	var log strings.Builder
	rep, err := run(ctx, o, &log)
	require.NoError(t, err, "harness output:\n%s", log.String())
	require.Len(t, rep.Samples, 2)
	assert.Equal(t, []string{sideWeft, sidePeer}, []string{rep.Samples[0].Side, rep.Samples[1].Side})
	for _, s := range rep.Samples {
		assert.Equal(t, o.Sample+1, s.TracesChecked, s.Side)
		assert.Equal(t, (o.Sample+1)*o.SpansPerTrace, s.SpansChecked, s.Side)
		assert.Greater(t, s.WorkloadCPUSec, 0.0, s.Side)
		assert.Greater(t, s.PeakRSSMiB, 10.0, s.Side)
		assert.GreaterOrEqual(t, s.PeakRSSMiB, s.ReadyRSSMiB, s.Side)
		assert.Greater(t, s.PeakAnonMiB, 1.0, s.Side)
		assert.Greater(t, s.ReadyFileMiB, 1.0, s.Side)
		assert.Less(t, s.PeakAnonMiB, s.PeakRSSMiB, s.Side)
		assert.Greater(t, s.StartupCPUSec, 0.0, s.Side)
	}
	md := markdown(rep)
	assert.Contains(t, md, "| weft | 1 |")
	assert.Contains(t, md, "| otelcol, the path's components only (bench/peer) | 1 |")
}
