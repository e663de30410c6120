package containerlogsreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/weftobs/weft/internal/weftest"
)

// restartCase runs the receiver, stops it, lets change() alter the files
// while it is down, starts it again on the same checkpoints and returns
// what the second run delivered.
func restartCase(t *testing.T, cfg *Config, path string, change func(w *kubeletWriter)) []rec {
	t.Helper()
	w := newKubeletWriter(t, path, "r")
	w.write(100)
	s1 := &sink{}
	run1 := startReceiver(t, cfg, s1)
	require.Eventually(t, func() bool {
		return run1.counter(t, "container_logs.records_acknowledged", "") == 100
	}, 5*time.Second, 10*time.Millisecond)
	run1.stop(t)
	checkTagOnce(t, s1.records(), 100, "r")
	change(w)
	w.close()
	s2 := &sink{}
	run2 := startReceiver(t, cfg, s2)
	want := w.seq - 100
	require.Eventually(t, func() bool { return s2.len() >= want }, 10*time.Second, 10*time.Millisecond,
		"second run: want %d records", want)
	time.Sleep(4 * cfg.PollInterval) // nothing more may arrive (duplicates)
	run2.stop(t)
	return s2.records()
}

// offsetRecs renumbers "r-<seq>" so that the second run must start at 0.
func shifted(t *testing.T, recs []rec, by int) []rec {
	t.Helper()
	out := make([]rec, 0, len(recs))
	for _, r := range recs {
		var seq int
		_, err := fmt.Sscanf(r.body, "r-%d ", &seq)
		require.NoError(t, err, r.body)
		r.body = "r-" + strconv.Itoa(seq-by)
		out = append(out, r)
	}
	return out
}

// Acceptance 5: files changed while the agent is down: no seek past EOF,
// nothing lost, nothing duplicated.
func TestChangedWhileDown(t *testing.T) {
	for _, store := range []string{"checkpoint_directory", "file_storage"} {
		t.Run(store, func(t *testing.T) {
			cases := []struct {
				name   string
				change func(t *testing.T, w *kubeletWriter)
			}{
				{"unchanged then appended", func(_ *testing.T, w *kubeletWriter) { w.write(50) }},
				{"rotated twice, one gzipped", func(t *testing.T, w *kubeletWriter) {
					w.write(50) // unread tail of the checkpointed file
					first := w.rotate()
					w.write(100)
					w.rotate()
					w.write(100)
					gzipAndRemove(t, first)
				}},
				{"truncated and rewritten longer", func(_ *testing.T, w *kubeletWriter) {
					require.NoError(t, w.f.Truncate(0))
					w.write(300)
				}},
				{"truncated and rewritten shorter", func(_ *testing.T, w *kubeletWriter) {
					require.NoError(t, w.f.Truncate(0))
					w.write(10)
				}},
				{"deleted, new file (inode possibly reused)", func(t *testing.T, w *kubeletWriter) {
					var before syscall.Stat_t
					require.NoError(t, syscall.Stat(w.path, &before))
					require.NoError(t, w.f.Close())
					require.NoError(t, os.Remove(w.path))
					w.open()
					var after syscall.Stat_t
					require.NoError(t, syscall.Stat(w.path, &after))
					t.Logf("inode reused: %v", before.Ino == after.Ino)
					w.write(120)
				}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					dir := t.TempDir()
					cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
					if store == "file_storage" {
						cfg.Storage = startFileStorage(t, filepath.Join(dir, "storage"))
					} else {
						cfg.CheckpointDirectory = filepath.Join(dir, "checkpoints")
					}
					path := podLogPath(t, dir, "ns", "pod", "c")
					recs := restartCase(t, cfg, path, func(w *kubeletWriter) { tc.change(t, w) })
					checkTagOnce(t, shifted(t, recs, 100), len(recs), "r")
					require.NotEmpty(t, recs)
				})
			}
		})
	}
}

// Inode reuse, made certain: the checkpoint names the new file's device and
// inode, but its fingerprint is the old file's, so the offset is not used.
func TestInodeReuseByFingerprint(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.CheckpointDirectory = filepath.Join(dir, "checkpoints")
	path := podLogPath(t, dir, "ns", "pod", "c")
	recs := restartCase(t, cfg, path, func(w *kubeletWriter) {
		require.NoError(t, w.f.Close())
		require.NoError(t, os.Remove(w.path))
		w.open()
		w.write(300) // longer than the old file: a seek to the old offset would succeed
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(w.path, &st))
		fs, err := openFileStore(cfg.CheckpointDirectory, "container_logs")
		require.NoError(t, err)
		n := 0
		for k, v := range fs.m {
			if k == indexKey {
				continue
			}
			var cp checkpoint
			require.NoError(t, json.Unmarshal(v, &cp))
			cp.Dev, cp.Ino = uint64(st.Dev), st.Ino //nolint:unconvert
			b, err := json.Marshal(cp)
			require.NoError(t, err)
			require.NoError(t, fs.Set(context.Background(), k, b))
			n++
		}
		require.Equal(t, 1, n, "one checkpoint")
	})
	checkTagOnce(t, shifted(t, recs, 100), 300, "r")
}

// startFileStorage starts a real file_storage extension and returns its ID.
func startFileStorage(t *testing.T, dir string) *component.ID {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig()
	fc := cfg.(*filestorage.Config)
	fc.Directory = dir
	fc.Compaction.Directory = dir
	id := component.MustNewID("file_storage")
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	storageHosts[id] = ext
	return &id
}

var storageHosts = map[component.ID]extension.Extension{}

// storageHost returns a host holding every storage extension the tests
// started.
func storageHost() weftest.Host {
	h := weftest.Host{}
	for id, e := range storageHosts {
		h[id] = e
	}
	return h
}

// A checkpointed file rotated away and deleted while the agent is down: the
// bytes known to be unread are counted as lost to rotation, never silent.
func TestRotatedAwayWhileDownCounted(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.CheckpointDirectory = filepath.Join(dir, "checkpoints")
	cfg.MaxBatchRecords = 50
	path := podLogPath(t, dir, "ns", "pod", "c")
	w := newKubeletWriter(t, path, "r")
	w.write(100)
	s1 := &refuseAfter{n: 1}
	run1 := startReceiver(t, cfg, s1)
	require.Eventually(t, func() bool {
		return run1.counter(t, "container_logs.records_acknowledged", "") == 50 && s1.refusals() > 0
	}, 5*time.Second, 10*time.Millisecond)
	run1.stop(t)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	unread := int64(len(b)) - int64(bytesIndexNth(b, '\n', 50)+1)
	// Rotated, and the rotated file deleted (kubelet keeps only so many).
	rotated := w.rotate()
	require.NoError(t, os.Remove(rotated))
	w.write(10)
	w.close()
	s2 := &sink{}
	run2 := startReceiver(t, cfg, s2)
	require.Eventually(t, func() bool { return s2.len() == 10 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, unread, run2.counter(t, "container_logs.bytes_lost", reasonRotation))
}

// refuseAfter accepts n batches, then refuses everything.
type refuseAfter struct {
	sink
	n int
}

func (s *refuseAfter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	s.mu.Lock()
	if s.batches >= s.n {
		s.sink.refused++
		s.mu.Unlock()
		return errBlocked
	}
	s.mu.Unlock()
	return s.sink.ConsumeLogs(ctx, ld)
}

func bytesIndexNth(b []byte, c byte, n int) int {
	for i, x := range b {
		if x == c {
			n--
			if n == 0 {
				return i
			}
		}
	}
	return -1
}

// Two checkpoints of one path, both files rotated while the agent was
// down: each resumes at its own offset, in order, then the live file.
func TestTwoCheckpointsOfOnePath(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg(filepath.Join(dir, "*", "*", "*.log"))
	cfg.CheckpointDirectory = filepath.Join(dir, "checkpoints")
	path := podLogPath(t, dir, "ns", "pod", "c")
	w := newKubeletWriter(t, path, "r")
	w.write(100)
	a := w.rotate()
	w.write(100)
	bfile := w.rotate()
	w.write(100)
	w.close()
	// Checkpoints as a crashed run would have left them: file a acknowledged
	// up to line 60, file b up to line 130 (30 lines into it).
	fs, err := openFileStore(cfg.CheckpointDirectory, "container_logs")
	require.NoError(t, err)
	mk := func(key, file string, lines int) {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(file, &st))
		cp := checkpoint{Path: path, Dev: uint64(st.Dev), Ino: st.Ino, FP: b[:fingerprintSize], //nolint:unconvert
			Offset: int64(bytesIndexNth(b, '\n', lines) + 1), Size: int64(len(b))}
		v, err := json.Marshal(cp)
		require.NoError(t, err)
		require.NoError(t, fs.Set(context.Background(), key, v))
	}
	mk("file/1-1", a, 60)
	mk("file/2-2", bfile, 30)
	idx, err := json.Marshal([]string{"file/1-1", "file/2-2"})
	require.NoError(t, err)
	require.NoError(t, fs.Set(context.Background(), indexKey, idx))

	s := &sink{}
	startReceiver(t, cfg, s)
	require.Eventually(t, func() bool { return s.len() >= 40+70+100 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(3 * cfg.PollInterval) // nothing more may arrive (duplicates)
	var got []string
	for _, r := range s.records() {
		got = append(got, strings.Fields(r.body)[0])
	}
	var want []string
	for i := 60; i < 100; i++ {
		want = append(want, "r-"+strconv.Itoa(i))
	}
	for i := 130; i < 300; i++ {
		want = append(want, "r-"+strconv.Itoa(i))
	}
	assert.Equal(t, want, got)
}
