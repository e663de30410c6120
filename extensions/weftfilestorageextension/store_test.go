package weftfilestorageextension

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	pdatareq "go.opentelemetry.io/collector/pdata/xpdata/request"
)

func TestSetGetDeleteBatchSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil)
	c := h.client("logs")
	ctx := t.Context()

	v, err := c.Get(ctx, "absent")
	require.NoError(t, err)
	assert.Nil(t, v)
	require.NoError(t, c.Set(ctx, "a", []byte("one")))
	require.NoError(t, c.Set(ctx, "b", []byte("two")))
	require.NoError(t, c.Set(ctx, "a", []byte("uno")))
	require.NoError(t, c.Delete(ctx, "b"))
	get := storage.GetOperation("a")
	require.NoError(t, c.Batch(ctx, storage.SetOperation("c", []byte("three")), get, storage.DeleteOperation("c"), storage.SetOperation("d", nil)))
	assert.Equal(t, []byte("uno"), get.Value)
	require.NoError(t, c.Close(ctx))
	require.ErrorIs(t, c.Set(ctx, "x", nil), errClientClosed)

	c = h.client("logs")
	for key, want := range map[string][]byte{"a": []byte("uno"), "b": nil, "c": nil, "d": {}} {
		got, err := c.Get(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, want == nil, got == nil, key)
		assert.Equal(t, string(want), string(got), key)
	}
	assert.Zero(t, h.counter("weft_file_storage.records_lost", ""))
	assert.Zero(t, h.counter("weft_file_storage.bytes_skipped", ""))

	_, err = h.ext.GetClient(ctx, component.KindExporter, ownerID, "logs")
	require.ErrorContains(t, err, "already open")
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = t.TempDir()
	f := NewFactory()
	ext, err := f.Create(t.Context(), extensiontest.NewNopSettings(componentType), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Shutdown(t.Context()))
	require.NoError(t, ext.Shutdown(t.Context()))
}

func TestStartDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "a", "b")
	s := &fileStorage{cfg: &Config{Directory: missing}}
	require.ErrorContains(t, s.Start(t.Context(), nil), "directory")
	s.cfg.CreateDirectory = true
	require.NoError(t, s.Start(t.Context(), nil))
	st, err := os.Stat(missing)
	require.NoError(t, err)
	assert.True(t, st.IsDir())
}

// queueFile fills a "logs" client the way a persistent queue does: item
// i (decimal key) holds perItem records, every set in its own batch with
// a metadata key; then items listed in deleted are removed.
func queueFile(t *testing.T, h *harness, items, perItem int, deleted ...int) {
	t.Helper()
	c := h.client("logs")
	ctx := t.Context()
	for i := range items {
		require.NoError(t, c.Batch(ctx,
			storage.SetOperation("meta", []byte(strconv.Itoa(i))),
			storage.SetOperation(strconv.Itoa(i), logsValue(t, "item"+strconv.Itoa(i), perItem))))
	}
	for _, i := range deleted {
		require.NoError(t, c.Batch(ctx, storage.SetOperation("meta", []byte("d"+strconv.Itoa(i))), storage.DeleteOperation(strconv.Itoa(i))))
	}
	require.NoError(t, c.Close(ctx))
}

func logPath(dir string) string {
	return filepath.Join(dir, clientName(component.KindExporter, ownerID, "logs")+".wlog")
}

// offsetOf finds where item i's first record body lies in the file.
func offsetOf(t *testing.T, dir string, i int) int64 {
	t.Helper()
	b, err := os.ReadFile(logPath(dir))
	require.NoError(t, err)
	at := bytes.Index(b, []byte(fmt.Sprintf("item%d 0", i)))
	require.GreaterOrEqual(t, at, 0)
	return int64(at)
}

// frameStart finds the start of the frame holding item i.
func frameStart(t *testing.T, dir string, i int) int64 {
	t.Helper()
	b, err := os.ReadFile(logPath(dir))
	require.NoError(t, err)
	at := offsetOf(t, dir, i)
	start := bytes.LastIndex(b[:at], []byte{0x57, 0x46, 0x53, 0x31})
	require.GreaterOrEqual(t, start, 0)
	return int64(start)
}

func TestDamagedFile(t *testing.T) {
	const items, perItem = 10, 7
	for _, tc := range []struct {
		name    string
		deleted []int
		damage  func(t *testing.T, dir string)
		lost    map[string]int64 // records lost by reason
		gone    []int            // items that must not come back
		// skippedBytes, when set, is the exact bytes_skipped by reason.
		skippedBytes map[string]int64
	}{
		{
			name:   "value_bytes_flipped",
			damage: func(t *testing.T, dir string) { flip(t, dir, offsetOf(t, dir, 4)) },
			lost:   map[string]int64{reasonCorrupt: perItem},
			gone:   []int{4},
		},
		{
			name:    "value_damaged_but_item_delivered_later",
			deleted: []int{4},
			damage:  func(t *testing.T, dir string) { flip(t, dir, offsetOf(t, dir, 4)) },
			lost:    map[string]int64{},
			gone:    []int{4},
		},
		{
			name:   "header_damaged",
			damage: func(t *testing.T, dir string) { flip(t, dir, frameStart(t, dir, 6)+5) },
			lost:   map[string]int64{reasonUnreadable: perItem},
			gone:   []int{6},
		},
		{
			name: "two_headers_damaged",
			damage: func(t *testing.T, dir string) {
				flip(t, dir, frameStart(t, dir, 2)+9)
				flip(t, dir, frameStart(t, dir, 3)+1)
			},
			lost: map[string]int64{reasonUnreadable: 2 * perItem},
			gone: []int{2, 3},
		},
		{
			name:    "header_damaged_item_delivered_later",
			deleted: []int{6},
			damage:  func(t *testing.T, dir string) { flip(t, dir, frameStart(t, dir, 6)+5) },
			lost:    map[string]int64{},
			gone:    []int{6},
		},
		{
			name: "zeroed_region",
			damage: func(t *testing.T, dir string) {
				from, to := frameStart(t, dir, 5), frameStart(t, dir, 7)
				writeAt(t, dir, make([]byte, to-from), from)
			},
			lost: map[string]int64{reasonUnreadable: 2 * perItem},
			gone: []int{5, 6},
		},
		{
			name:   "torn_tail",
			damage: func(t *testing.T, dir string) { require.NoError(t, os.Truncate(logPath(dir), offsetOf(t, dir, 9)+3)) },
			lost:   map[string]int64{reasonTorn: perItem},
			gone:   []int{9},
		},
		{
			name: "torn_tail_inside_header",
			damage: func(t *testing.T, dir string) {
				require.NoError(t, os.Truncate(logPath(dir), frameStart(t, dir, 9)+10))
			},
			lost: map[string]int64{}, // nothing of the frame's keys was written: no record is known to be lost
			gone: []int{9},
		},
		{
			name: "torn_header_then_preallocated_zeros",
			damage: func(t *testing.T, dir string) {
				start := frameStart(t, dir, 9)
				writeAt(t, dir, make([]byte, 64<<10), start+4) // the frame cut after its magic, zeros after
				st, err := os.Stat(logPath(dir))
				require.NoError(t, err)
				require.Greater(t, st.Size(), start+64<<10)
			},
			lost:         map[string]int64{},
			gone:         []int{9},
			skippedBytes: map[string]int64{reasonTorn: 4},
		},
		{
			name: "garbage_after_the_end",
			damage: func(t *testing.T, dir string) {
				f, err := os.OpenFile(logPath(dir), os.O_WRONLY|os.O_APPEND, 0)
				require.NoError(t, err)
				_, err = f.Write(bytes.Repeat([]byte("WFS1garbage"), 50))
				require.NoError(t, err)
				require.NoError(t, f.Close())
			},
			lost: map[string]int64{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			queueFile(t, newHarness(t, dir, nil), items, perItem, tc.deleted...)
			tc.damage(t, dir)

			h := newHarness(t, dir, nil)
			c := h.client("logs") // a damaged file never fails the start
			for reason, n := range tc.lost {
				assert.Equal(t, n, h.counter("weft_file_storage.records_lost", reason), reason)
			}
			var total int64
			for _, n := range tc.lost {
				total += n
			}
			assert.Equal(t, total, h.counter("weft_file_storage.records_lost", ""), "no other loss")
			if tc.name != "value_damaged_but_item_delivered_later" && tc.name != "header_damaged_item_delivered_later" {
				assert.Positive(t, h.counter("weft_file_storage.bytes_skipped", ""), "damaged bytes counted")
			}
			for reason, n := range tc.skippedBytes {
				assert.Equal(t, n, h.counter("weft_file_storage.bytes_skipped", reason), reason)
			}
			checkItems(t, c, items, perItem, tc.gone, tc.deleted)

			// The damage was rewritten away: a second start finds a clean
			// file, counts nothing new and keeps the same items.
			require.NoError(t, c.Close(t.Context()))
			h2 := newHarness(t, dir, nil)
			c2 := h2.client("logs")
			assert.Zero(t, h2.counter("weft_file_storage.records_lost", ""))
			assert.Zero(t, h2.counter("weft_file_storage.bytes_skipped", ""))
			checkItems(t, c2, items, perItem, tc.gone, tc.deleted)
			require.NoError(t, c2.Set(t.Context(), "after", []byte("x")))
		})
	}
}

// checkItems: every item not gone or deleted is intact.
func checkItems(t *testing.T, c storage.Client, items, perItem int, gone, deleted []int) {
	t.Helper()
	skip := map[int]bool{}
	for _, i := range append(append([]int(nil), gone...), deleted...) {
		skip[i] = true
	}
	for i := range items {
		v, err := c.Get(t.Context(), strconv.Itoa(i))
		require.NoError(t, err)
		if skip[i] {
			assert.Nil(t, v, "item %d", i)
			continue
		}
		assert.Equal(t, logsValue(t, "item"+strconv.Itoa(i), perItem), v, "item %d", i)
	}
}

func flip(t *testing.T, dir string, off int64) {
	t.Helper()
	b := make([]byte, 1)
	f, err := os.OpenFile(logPath(dir), os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= 0x5a
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

func writeAt(t *testing.T, dir string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(logPath(dir), os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, func(c *Config) { c.CompactionMinDead = 64 << 10; c.Preallocate = 0; c.Reserve = 0 })
	c := h.client("logs")
	ctx := t.Context()
	val := bytes.Repeat([]byte("v"), 1000)
	for i := range 2000 {
		require.NoError(t, c.Set(ctx, strconv.Itoa(i), val))
		if i >= 5 {
			require.NoError(t, c.Delete(ctx, strconv.Itoa(i-5)))
		}
	}
	st, err := os.Stat(logPath(dir))
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(200<<10), "dead values were compacted away (2 MB written)")
	for i := 1995; i < 2000; i++ {
		v, err := c.Get(ctx, strconv.Itoa(i))
		require.NoError(t, err)
		assert.Equal(t, val, v)
	}
	_, err = os.Stat(logPath(dir) + ".compact")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestDiskFull: writes past the free space fail with ErrStorageFull
// (wrapping ENOSPC) and change nothing; small bookkeeping writes still
// fit in the reserve; once space returns writes succeed, and after a
// restart exactly the acknowledged items are there.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	q := &quota{limit: 1 << 62, sizes: map[*quotaFile]int64{}}
	h := newHarness(t, dir, func(c *Config) { c.Preallocate = 64 << 10; c.Reserve = 16 << 10 })
	h.ext.open = q.opener()
	c := h.client("logs")
	ctx := t.Context()

	q.setLimit(200 << 10)
	var stored, refused []int
	for i := 0; len(refused) < 3; i++ {
		err := c.Batch(ctx, storage.SetOperation("meta", []byte(strconv.Itoa(i))),
			storage.SetOperation(strconv.Itoa(i), logsValue(t, "item"+strconv.Itoa(i), 50)))
		if err != nil {
			require.ErrorIs(t, err, storage.ErrStorageFull)
			require.ErrorIs(t, err, syscall.ENOSPC)
			refused = append(refused, i)
			continue
		}
		require.Empty(t, refused, "once full, stays full until space returns")
		stored = append(stored, i)
	}
	require.NotEmpty(t, stored)
	assert.Equal(t, int64(len(refused)), h.counter("weft_file_storage.write_failures", "disk_full"))

	// Full, yet the queue's bookkeeping goes on: read and remove an item.
	get := storage.GetOperation(strconv.Itoa(stored[0]))
	require.NoError(t, c.Batch(ctx, storage.SetOperation("meta", []byte("reading")), get))
	require.NotNil(t, get.Value)
	require.NoError(t, c.Batch(ctx, storage.SetOperation("meta", []byte("done")), storage.DeleteOperation(strconv.Itoa(stored[0]))))

	q.setLimit(1 << 62) // space returns
	next := refused[len(refused)-1] + 1
	require.NoError(t, c.Batch(ctx, storage.SetOperation(strconv.Itoa(next), logsValue(t, "item"+strconv.Itoa(next), 50))))
	require.NoError(t, c.Close(ctx))

	h2 := newHarness(t, dir, nil)
	c2 := h2.client("logs")
	assert.Zero(t, h2.counter("weft_file_storage.records_lost", ""), "nothing acknowledged was lost")
	for _, i := range append(stored[1:], next) {
		v, err := c2.Get(ctx, strconv.Itoa(i))
		require.NoError(t, err)
		assert.Equal(t, logsValue(t, "item"+strconv.Itoa(i), 50), v, "item %d", i)
	}
	for _, i := range append(refused, stored[0]) {
		v, err := c2.Get(ctx, strconv.Itoa(i))
		require.NoError(t, err)
		assert.Nil(t, v, "item %d", i)
	}
	meta, err := c2.Get(ctx, "meta")
	require.NoError(t, err)
	assert.Equal(t, "done", string(meta))
}

func TestRecordCounter(t *testing.T) {
	// Several resources and scopes, compared with pdata's own counts, in the
	// request format and in plain OTLP.
	ld := plog.NewLogs()
	td := ptrace.NewTraces()
	for r := range 3 {
		rl, rs := ld.ResourceLogs().AppendEmpty(), td.ResourceSpans().AppendEmpty()
		rl.Resource().Attributes().PutStr("k", "v")
		for s := range r + 2 {
			sl, ss := rl.ScopeLogs().AppendEmpty(), rs.ScopeSpans().AppendEmpty()
			sl.Scope().SetName("scope")
			for i := range r*5 + s {
				lr := sl.LogRecords().AppendEmpty()
				lr.Body().SetStr("x")
				lr.Attributes().PutInt("i", int64(i))
				ss.Spans().AppendEmpty().SetName("span")
			}
		}
	}
	lreq, err := pdatareq.MarshalLogs(t.Context(), ld)
	require.NoError(t, err)
	lraw, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	require.NoError(t, err)
	treq, err := pdatareq.MarshalTraces(t.Context(), td)
	require.NoError(t, err)
	assert.Equal(t, int64(ld.LogRecordCount()), counterFor("logs")("1", lreq))
	assert.Equal(t, int64(ld.LogRecordCount()), counterFor("logs")("1", lraw))
	assert.Equal(t, int64(td.SpanCount()), counterFor("traces")("1", treq))
	md := pmetric.NewMetrics()
	g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge()
	g.DataPoints().AppendEmpty().SetIntValue(1)
	g.DataPoints().AppendEmpty().SetIntValue(2)
	mreq, err := pdatareq.MarshalMetrics(t.Context(), md)
	require.NoError(t, err)
	assert.Equal(t, int64(2), counterFor("metrics")("1", mreq))

	logs := counterFor("logs")
	assert.Equal(t, int64(12), logs("17", logsValue(t, "x", 12)))
	assert.Zero(t, logs("meta", logsValue(t, "x", 12)), "not an item key")
	assert.Zero(t, logs("3", []byte("not protobuf \xff\xff")))
	assert.Zero(t, counterFor("checkpoints")("1", logsValue(t, "x", 3)))
}

func TestClientName(t *testing.T) {
	assert.Equal(t, "exporter_fluent_forward__logs", clientName(component.KindExporter, component.MustNewID("fluent_forward"), "logs"))
	assert.Equal(t, "receiver_container_logs_a~2eb", clientName(component.KindReceiver, component.MustNewIDWithName("container_logs", "a.b"), ""))
}

// TestDiskFullMoveOfStoredValue: at start the persistent queue deletes the
// batches that were in flight and stores them again under new keys. With
// the disk full that store fits anyway: it links to the bytes the file
// already holds. The value survives a restart and a compaction.
func TestDiskFullMoveOfStoredValue(t *testing.T) {
	dir := t.TempDir()
	q := &quota{limit: 1 << 62, sizes: map[*quotaFile]int64{}}
	h := newHarness(t, dir, func(c *Config) { c.Preallocate = 64 << 10; c.Reserve = 16 << 10 })
	h.ext.open = q.opener()
	c := h.client("logs")
	ctx := t.Context()
	val := logsValue(t, "moved", 400)
	require.Greater(t, len(val), smallFrame)
	require.NoError(t, c.Set(ctx, "1", val))

	q.setLimit(0) // nothing more can be allocated: fill what is preallocated
	for i := 0; ; i++ {
		require.Less(t, i, 100)
		if err := c.Set(ctx, "f"+strconv.Itoa(i), logsValue(t, "new", 400)); err != nil {
			require.ErrorIs(t, err, storage.ErrStorageFull, "new data is refused")
			break
		}
	}
	get := storage.GetOperation("1")
	require.NoError(t, c.Batch(ctx, get))
	require.NoError(t, c.Batch(ctx, storage.DeleteOperation("1")))
	require.NoError(t, c.Batch(ctx, storage.SetOperation("meta", []byte("m")), storage.SetOperation("7", get.Value)), "the same bytes again: linked")
	require.NoError(t, c.Close(ctx))

	q.setLimit(1 << 62)
	h2 := newHarness(t, dir, func(c *Config) { c.CompactionMinDead = 0 })
	c2 := h2.client("logs")
	v, err := c2.Get(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, val, v)
	v, err = c2.Get(ctx, "1")
	require.NoError(t, err)
	assert.Nil(t, v)
	// Any write now compacts (min dead 0): the link becomes a value of its own.
	require.NoError(t, c2.Set(ctx, "meta", []byte("m2")))
	raw, err := os.ReadFile(logPath(dir))
	require.NoError(t, err)
	assert.Equal(t, 1, bytes.Count(raw, []byte("moved 0")), "one copy of the value after compaction")
	require.NoError(t, c2.Close(ctx))
	c3 := newHarness(t, dir, nil).client("logs")
	v, err = c3.Get(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, val, v)
}

// TestReadAfterCompactionCopiesOnlyTheValue: a value read from a compacted
// file does not keep its frame's other values in memory, and each large
// value has a frame of its own.
func TestReadAfterCompactionCopiesOnlyTheValue(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, func(c *Config) { c.CompactionMinDead = 0 })
	c := h.client("logs")
	ctx := t.Context()
	val := bytes.Repeat([]byte("x"), 20<<10)
	for i := range 50 {
		require.NoError(t, c.Set(ctx, strconv.Itoa(i), val))
	}
	for i := range 50 {
		require.NoError(t, c.Delete(ctx, strconv.Itoa(i)))
		require.NoError(t, c.Set(ctx, "k"+strconv.Itoa(i), val)) // compacts as it goes (min dead 0)
	}
	fc := c.(*fileClient)
	fc.mu.Lock()
	require.NoError(t, fc.compact())
	fc.mu.Unlock()
	for key, e := range fc.index {
		assert.Equal(t, e.valLen, e.frameValLen, "%s shares a frame", key)
	}
	v, err := c.Get(ctx, "k7")
	require.NoError(t, err)
	assert.Equal(t, val, v)
	assert.Equal(t, len(v), cap(v), "only the value is kept")
}
