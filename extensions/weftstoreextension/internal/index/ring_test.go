package index

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/weftobs/weft/extensions/weftstoreextension/internal/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// defaultMaxBytes is weft_store's default traces_max_bytes and
// logs_max_bytes.
const defaultMaxBytes = 64 << 20

// same is the conversion that keeps the index's own types.
func same[T any](v T) T { return v }

// key is the index key of a simulated pod.
func key(p simtest.Pod) Pod { return Pod{Namespace: p.NS, Name: p.Name} }

func TestSeqList(t *testing.T) {
	var l seqList
	for i := range uint64(100) {
		l.push(i)
	}
	for i := range uint64(99) {
		require.False(t, l.popFront(i))
		require.Equal(t, int(99-i), l.len())
	}
	var got []uint64
	l.newestFirst(func(s uint64) bool { got = append(got, s); return true })
	assert.Equal(t, []uint64{99}, got)
	assert.True(t, l.popFront(99))
	assert.Equal(t, 0, l.len())
}

func TestRing(t *testing.T) {
	var r ring[int]
	for i := range 3000 {
		seq, _ := r.push(i)
		require.Equal(t, uint64(i), seq)
		if i%3 == 0 {
			e, seq, ok := r.oldest()
			require.True(t, ok)
			require.Equal(t, int(seq), *e)
			r.pop()
		}
	}
	for seq := r.first; seq < r.next(); seq++ {
		require.Equal(t, int(seq), *r.get(seq))
	}
	assert.Nil(t, r.get(r.first-1))
	assert.Nil(t, r.get(r.next()))
}

// TestSmallestBudgetHoldsNewest: at the smallest budget weft_store
// accepts (64 KiB), the ring's slots leave room for records: the index
// holds its newest batch within the budget. (With a first capacity of
// 1024 slots, charged at once, the slots alone exceeded 64 KiB and every
// append evicted everything.)
func TestSmallestBudgetHoldsNewest(t *testing.T) {
	const smallest = 64 << 10
	var seq uint64
	spans, logs := NewSpans(smallest), NewLogs(smallest)
	for range 50 {
		spans.Append(simtest.SpanBatch(&seq, 10))
		logs.Append(simtest.LogBatch(&seq, 10))
	}
	for name, st := range map[string]Stats{"spans": spans.Stats(), "logs": logs.Stats()} {
		assert.GreaterOrEqual(t, st.Records, int64(10), "%s: the newest batch is held", name)
		assert.LessOrEqual(t, st.Bytes, st.MaxBytes, "%s: within the budget", name)
		assert.Equal(t, int64(500), st.Records+st.Evicted, "%s: held + evicted = fed", name)
	}
}
