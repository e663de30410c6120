package containerlogsreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// kvStore is what the receiver needs from a checkpoint store. A storage
// extension's client (file_storage) satisfies it, and so do fileStore and
// memStore below.
type kvStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Set(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	Close(ctx context.Context) error
}

// checkpoint is what is saved for one file after the next consumer accepted
// everything before Offset.
type checkpoint struct {
	Path   string `json:"path"`   // where the file was found
	Dev    uint64 `json:"dev"`    // device of the file
	Ino    uint64 `json:"ino"`    // inode of the file
	FP     []byte `json:"fp"`     // the file's first bytes (up to fingerprintSize)
	Offset int64  `json:"offset"` // everything before this was acknowledged
	Size   int64  `json:"size"`   // the file's size when this was saved (known unread: Size-Offset)
}

// indexKey holds the list of checkpoint keys (storage clients cannot list).
const indexKey = "index"

// checkpoints owns the checkpoints of every file a receiver reads and the
// index of their keys, both in one store (as contrib's pkg/stanza
// fileconsumer keeps its known files in one place). Tailers ask it to save
// their file's checkpoint; discovery asks it for new keys, to load what an
// earlier run saved, and to forget a file that was read to its end.
//
// The index lists every key, and is written again whenever a key is added
// or removed: with N files followed, adding one writes N keys (quadratic in
// the number of files over a node's life, one index write per new file).
// The checkpoint_directory store writes its whole file on every change
// anyway; a storage extension pays the index rewrite on each new file only.
type checkpoints struct {
	store  kvStore // set by Start, before any tailer runs
	logger *zap.Logger
	seq    atomic.Int64 // makes keys made in the same nanosecond differ

	mu   sync.Mutex      // held while the index is written
	keys map[string]bool // the keys listed in the index
}

func newCheckpoints(logger *zap.Logger) *checkpoints {
	return &checkpoints{logger: logger, keys: map[string]bool{}}
}

// newKey names the checkpoint of a newly found file. Keys sort by creation
// time, which load relies on.
func (c *checkpoints) newKey() string {
	return fmt.Sprintf("file/%d-%d", time.Now().UnixNano(), c.seq.Add(1))
}

// keyed is a checkpoint with its key, loaded at restart.
type keyed struct {
	key     string
	cp      checkpoint
	claimed bool // resumed as part of another checkpoint's sibling chain
}

// load reads the index and every checkpoint it lists, oldest key first.
// Unreadable checkpoints are dropped from the index. first reports that
// there is no index at all (the very first start); an empty one is written
// then, so that the next start is not a first start.
func (c *checkpoints) load(ctx context.Context) (cps []keyed, first bool) {
	b, err := c.store.Get(ctx, indexKey)
	if err != nil {
		c.logger.Warn("read checkpoint index; starting without checkpoints", zap.Error(err))
	}
	if len(b) == 0 {
		c.mu.Lock()
		c.writeIndexLocked(ctx)
		c.mu.Unlock()
		return nil, true
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		c.logger.Warn("checkpoint index unreadable; starting without checkpoints", zap.Error(err))
		return nil, false
	}
	sort.Strings(keys)
	c.mu.Lock()
	for _, k := range keys {
		c.keys[k] = true
	}
	c.mu.Unlock()
	// Load all first: a rotated sibling may be the file of a later checkpoint.
	for _, k := range keys {
		v, err := c.store.Get(ctx, k)
		if err != nil || len(v) == 0 {
			c.removeKey(ctx, k)
			continue
		}
		var cp checkpoint
		if err := json.Unmarshal(v, &cp); err != nil {
			c.logger.Warn("checkpoint unreadable; dropped", zap.String("key", k), zap.Error(err))
			c.removeKey(ctx, k)
			continue
		}
		cps = append(cps, keyed{key: k, cp: cp})
	}
	return cps, false
}

// save stores the checkpoint of key, listing key in the index before its
// first value is written, so that no checkpoint exists that a restart
// cannot find.
func (c *checkpoints) save(ctx context.Context, key string, cp checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	c.addKey(ctx, key)
	return c.store.Set(ctx, key, b)
}

// forget deletes the checkpoint of key and removes key from the index
// (also when the delete failed: a value the index does not list is never
// read again).
func (c *checkpoints) forget(ctx context.Context, key string) error {
	err := c.store.Delete(ctx, key)
	c.removeKey(ctx, key)
	return err
}

// close closes the store; it is safe before Start.
func (c *checkpoints) close(ctx context.Context) error {
	if c.store == nil {
		return nil
	}
	return c.store.Close(ctx)
}

func (c *checkpoints) addKey(ctx context.Context, k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys[k] {
		return
	}
	c.keys[k] = true
	c.writeIndexLocked(ctx)
}

func (c *checkpoints) removeKey(ctx context.Context, k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.keys[k] {
		return
	}
	delete(c.keys, k)
	c.writeIndexLocked(ctx)
}

func (c *checkpoints) writeIndexLocked(ctx context.Context) {
	keys := make([]string, 0, len(c.keys))
	for k := range c.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b, _ := json.Marshal(keys)
	if err := c.store.Set(ctx, indexKey, b); err != nil {
		c.logger.Warn("write checkpoint index", zap.Error(err))
	}
}

// memStore keeps checkpoints in memory only.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) Get(_ context.Context, k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k], nil
}

func (s *memStore) Set(_ context.Context, k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = append([]byte(nil), v...)
	return nil
}

func (s *memStore) Delete(_ context.Context, k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

func (s *memStore) Close(context.Context) error { return nil }

// fileStore keeps all checkpoints of one receiver in one JSON file, written
// atomically on every change: a temp file in the same directory, fsync,
// rename over the old file, fsync of the directory. A crash at any point
// leaves either the old or the new file, never a torn one.
type fileStore struct {
	mu   sync.Mutex
	path string
	m    map[string][]byte
}

func openFileStore(dir, name string) (*fileStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("checkpoint_directory %q: %w", dir, err)
	}
	s := &fileStore{path: filepath.Join(dir, name+".json"), m: map[string][]byte{}}
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read checkpoints %q: %w", s.path, err)
	}
	if err := json.Unmarshal(b, &s.m); err != nil {
		return nil, fmt.Errorf("parse checkpoints %q: %w", s.path, err)
	}
	return s, nil
}

func (s *fileStore) Get(_ context.Context, k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k], nil
}

func (s *fileStore) Set(_ context.Context, k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.m[k]
	s.m[k] = append([]byte(nil), v...)
	if err := s.writeLocked(); err != nil {
		if had {
			s.m[k] = old
		} else {
			delete(s.m, k)
		}
		return err
	}
	return nil
}

func (s *fileStore) Delete(_ context.Context, k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok {
		return nil
	}
	delete(s.m, k)
	return s.writeLocked()
}

func (s *fileStore) Close(context.Context) error { return nil }

func (s *fileStore) writeLocked() error {
	b, err := json.Marshal(maps.Clone(s.m))
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write checkpoints: %w", err)
	}
	_, werr := tmp.Write(b)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), s.path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write checkpoints %q: %w", s.path, werr)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
