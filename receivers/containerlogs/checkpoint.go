package containerlogs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
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
