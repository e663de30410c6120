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
