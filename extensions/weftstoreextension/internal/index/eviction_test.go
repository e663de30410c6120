package index

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

// TestEvictionBounds feeds 10x the configured bytes into each index and
// checks that the charged bytes stay within the budget, that the heap with
// the arena's blocks (outside it) and the process's RSS stay bounded, that
// exactly the oldest records were evicted and that every eviction was
// counted.
func TestEvictionBounds(t *testing.T) {
	const budget = 8 << 20
	type index struct {
		feed  func(seq *uint64)
		stats func() Stats
		arena func() int64 // bytes held outside the heap
		// oldestKept returns the sequence number of the oldest stored record.
		oldestKept func() uint64
	}
	tests := []struct {
		name string
		new  func() index
	}{
		{"spans", func() index {
			x := NewSpans(budget)
			return index{
				feed:  func(seq *uint64) { x.Append(simtest.SpanBatch(seq, 512)) },
				stats: x.Stats,
				arena: x.arena.mappedBytes,
				oldestKept: func() uint64 {
					e, _, _ := x.ring.oldest()
					return uint64(e.spanID[7])
				},
			}
		}},
		{"logs", func() index {
			x := NewLogs(budget)
			return index{
				feed:  func(seq *uint64) { x.Append(simtest.LogBatch(seq, 512)) },
				stats: x.Stats,
				arena: x.arena.mappedBytes,
				oldestKept: func() uint64 {
					e, _, _ := x.ring.oldest()
					return uint64(e.traceID[15])
				},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := tt.new()
			before := simtest.HeapAlloc()
			rssBefore := simtest.RSSAfterFree(t)
			var seq uint64
			var peak uint64
			var rssPeak int64
			fed := int64(0)
			for x.stats().EvictedBytes+x.stats().Bytes < 10*budget {
				x.feed(&seq)
				fed += 512
				s := x.stats()
				require.LessOrEqual(t, s.Bytes, int64(budget))
				if seq%(512*40) == 0 {
					peak = max(peak, simtest.HeapAlloc()+uint64(x.arena()))
					rssPeak = max(rssPeak, simtest.RSSAfterFree(t))
				}
			}
			s := x.stats()
			peak = max(peak, simtest.HeapAlloc()+uint64(x.arena()))
			rssPeak = max(rssPeak, simtest.RSSAfterFree(t))
			t.Logf("fed %d records, kept %d (%d B charged), evicted %d; heap and arena grew by %d B (arena %d B), RSS by %d B (budget %d B)",
				fed, s.Records, s.Bytes, s.Evicted, int64(peak)-int64(before), x.arena(), rssPeak-rssBefore, budget)
			assert.Equal(t, fed, s.Records+s.Evicted, "every record is stored or counted as evicted")
			assert.Positive(t, s.Evicted)
			assert.Equal(t, uint64(s.Evicted+1)%256, x.oldestKept(), "the oldest records were evicted first")
			assert.Greater(t, s.Bytes, int64(budget)*9/10, "the index fills its budget")
			// The charged bytes estimate the heap: allow 1.5x. Without
			// eviction the heap would grow beyond 10x the budget.
			assert.Less(t, int64(peak)-int64(before), int64(budget*3/2), "heap stays bounded")
			// RSS, measured after the runtime returned its free pages, grows
			// with the retained records only: 10x the budget went through.
			// (Under the race detector RSS is dominated by its shadow memory;
			// TestEvictionBoundsRSSWithoutRace runs this test without it.)
			if !raceEnabled {
				assert.Less(t, rssPeak-rssBefore, int64(budget*2), "RSS stays bounded")
			}
		})
	}
}

// TestEvictionBoundsRSSWithoutRace: when the tests run with the race
// detector (as `make test` runs them), TestEvictionBounds cannot bound RSS;
// this runs it again in a build without the detector, where it does.
func TestEvictionBoundsRSSWithoutRace(t *testing.T) {
	if !raceEnabled {
		return // TestEvictionBounds in this very run checks RSS
	}
	out, err := exec.CommandContext(t.Context(), "go", "test", "-count=1", "-run", "^TestEvictionBounds$", "-v", ".").CombinedOutput()
	require.NoError(t, err, "TestEvictionBounds without -race:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestEvictionBounds/spans")
	require.Contains(t, string(out), "--- PASS: TestEvictionBounds/logs")
	t.Logf("%s", out)
}
