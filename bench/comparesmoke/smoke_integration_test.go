//go:build integration

package comparesmoke

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchCompareSmoke runs every workload of the side-by-side harness for
// a few seconds, one round (weft, then the peer; freshness: weft alone): the harness builds weft,
// both peer builds (bench/peer core and -tags contrib) and itself, starts
// Prometheus 2.42 for the rules, scrape-agent, nominal and store-memory
// workloads, and the test checks that every run
// of both sides delivered exactly what was sent and was measured.
func TestBenchCompareSmoke(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil && os.Getenv("WEFT_PROMETHEUS") == "" {
		t.Fatal("the rules workload needs Prometheus 2.42 on PATH: run hack/install-debian-tools.sh (Debian package prometheus) or set WEFT_PROMETHEUS")
	}
	// Builds included: a cold contrib peer build alone takes minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "smoke.json")
	cmd := exec.CommandContext(ctx, "go", "run", ".", "-smoke", "-json", out, "-workdir", t.TempDir())
	cmd.Dir = filepath.Join("..", "compare")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	require.NoError(t, cmd.Run(), "harness output:\n%s", stderr.String())
	t.Logf("harness ran in %s (builds included)", time.Since(start).Round(time.Second))

	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var rep struct {
		Machine struct {
			NProc string `json:"nproc"`
		} `json:"machine"`
		Samples []struct {
			Workload, Side, Unit, Detail string
			Sent, Received               int64
			Duplicates, Invalid          int64
			Verified                     bool
			CPUSec                       float64 `json:"cpu_s"`
			WallSec                      float64 `json:"wall_s"`
			PeakRSSMiB                   float64 `json:"peak_rss_mib"`
			ReadyRSSMiB                  float64 `json:"ready_rss_mib"`
			Points                       []json.RawMessage
			Freshness                    []struct {
				Signal         string
				Markers, Found int
				Latency        []float64 `json:"latency_s"`
			}
			Memory []struct {
				Series, Stored int
				Exemplars      int     `json:"exemplars"`
				RSSMiB         float64 `json:"rss_mib"`
				AnonMiB        float64 `json:"rss_anon_mib"`
			} `json:"store_memory"`
		} `json:"samples"`
	}
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.NotEmpty(t, rep.Machine.NProc, "the machine is described")
	seen := map[string][]string{}
	for _, s := range rep.Samples {
		seen[s.Workload] = append(seen[s.Workload], s.Side)
		name := s.Workload + "/" + s.Side
		assert.True(t, s.Verified, "%s not verified: %s", name, s.Detail)
		assert.Equal(t, s.Sent, s.Received, "%s: sent = received", name)
		assert.Zero(t, s.Duplicates, name)
		assert.Zero(t, s.Invalid, name)
		if s.Workload == "idle" {
			assert.Zero(t, s.Sent, name)
		} else {
			assert.Positive(t, s.Sent, name)
			assert.Positive(t, s.CPUSec, "%s used CPU for its workload", name)
		}
		assert.Positive(t, s.WallSec, name)
		assert.Greater(t, s.PeakRSSMiB, 10.0, name)
		assert.GreaterOrEqual(t, s.PeakRSSMiB, s.ReadyRSSMiB, name)
		assert.GreaterOrEqual(t, len(s.Points), 2, "%s: RSS sampled over the window", name)
	}
	compared := []string{"logs-10k", "logs-max", "scrape", "scrape-wal", "scrape-agent", "scrape-otlp", "traces", "idle", "rules", "nominal", "store-memory"}
	for _, wl := range compared {
		assert.Equal(t, []string{"weft", "peer"}, seen[wl], wl)
	}
	// freshness measures weft alone: one run per round, a latency for
	// every marker of each signal.
	assert.Equal(t, []string{"weft"}, seen["freshness"], "freshness")
	for _, s := range rep.Samples {
		if s.Workload != "freshness" {
			continue
		}
		require.Len(t, s.Freshness, 3, "logs, samples, spans")
		for _, f := range s.Freshness {
			assert.Positive(t, f.Markers, f.Signal)
			assert.Equal(t, f.Markers, f.Found, f.Signal)
			assert.Len(t, f.Latency, f.Found, f.Signal)
		}
	}
	// store-memory: two sizes per run, each stored in full with its
	// exemplars, RSS read at each.
	for _, s := range rep.Samples {
		if s.Workload != "store-memory" {
			continue
		}
		require.Len(t, s.Memory, 2, s.Side)
		assert.Less(t, s.Memory[0].Series, s.Memory[1].Series, s.Side)
		for _, m := range s.Memory {
			assert.Equal(t, m.Series, m.Stored, s.Side)
			assert.Greater(t, m.Exemplars, m.Series/2, "%s: every carrier series' exemplar of the last two scrapes", s.Side)
			assert.Greater(t, m.RSSMiB, m.AnonMiB, s.Side)
			assert.Positive(t, m.AnonMiB, s.Side)
		}
	}
	md := stdout.String()
	assert.Equal(t, len(compared), strings.Count(md, "| **ratio weft / peer** |"), md)
	assert.Contains(t, md, "Peer: none, weft alone")
	assert.Contains(t, md, "Goal (issue #21): weft slope ≤ 2 KiB per series")
	assert.NotContains(t, md, "NOT VERIFIED")
}
