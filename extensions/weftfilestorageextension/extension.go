package weftfilestorageextension

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

// fileStorage is the extension: it hands each component its own log file.
type fileStorage struct {
	cfg    *Config
	logger *zap.Logger
	tel    *telemetry
	open   func(string) (segmentFile, error) // tests inject a failing file

	mu      sync.Mutex
	clients map[string]*fileClient // by file path
}

var _ storage.Extension = (*fileStorage)(nil)

func newExtension(cfg *Config, set extension.Settings) (*fileStorage, error) {
	tel, err := newTelemetry(set.MeterProvider)
	if err != nil {
		return nil, err
	}
	return &fileStorage{cfg: cfg, logger: set.Logger, tel: tel, open: openOSFile, clients: map[string]*fileClient{}}, nil
}

// Start checks that the directory exists and is a directory, creating it
// first when create_directory is set.
func (s *fileStorage) Start(context.Context, component.Host) error {
	if s.cfg.CreateDirectory {
		if err := os.MkdirAll(s.cfg.Directory, 0o750); err != nil {
			return fmt.Errorf("create_directory: %w", err)
		}
	}
	st, err := os.Stat(s.cfg.Directory)
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("directory: %q is not a directory", s.cfg.Directory)
	}
	return nil
}

// Shutdown closes the clients still open; it is safe without Start and twice.
func (s *fileStorage) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	clients := make([]*fileClient, 0, len(s.clients))
	for _, c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	var errs []error
	for _, c := range clients {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}

// GetClient opens (replaying) the log of one component's storage. A
// damaged file never fails it: what can be read is kept, the rest is
// counted (weft_file_storage.records_lost, bytes_skipped).
func (s *fileStorage) GetClient(_ context.Context, kind component.Kind, id component.ID, storageName string) (storage.Client, error) {
	name := clientName(kind, id, storageName)
	path := filepath.Join(s.cfg.Directory, name+".wlog")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[path]; ok {
		return nil, fmt.Errorf("storage %q is already open", name)
	}
	c, err := openClient(path, name, s.open, s.cfg, counterFor(storageName), s.tel, s.logger)
	if err != nil {
		return nil, err
	}
	c.release = func() {
		s.mu.Lock()
		delete(s.clients, path)
		s.mu.Unlock()
	}
	s.clients[path] = c
	return c, nil
}

// clientName is a file name for kind, id and storage name: lower case
// letters, digits, '-' and '_' kept, anything else as '~' and its hex code.
func clientName(kind component.Kind, id component.ID, storageName string) string {
	raw := strings.ToLower(kind.String()) + "_" + id.Type().String() + "_" + id.Name()
	if storageName != "" {
		raw += "_" + storageName
	}
	var b strings.Builder
	for _, r := range raw {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "~%x", r)
		}
	}
	return b.String()
}
