package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/weftobs/weft/internal/gobuild"
)

// agentBin is the weft binary the tests run the demo with, built once per
// test binary by TestMain from this module's cmd/weft.
var agentBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weft-demo-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	agentBin = filepath.Join(dir, "weft")
	if err := buildAgent(agentBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// goleak.VerifyTestMain exits; run the check by hand to clean up first.
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// buildAgent builds cmd/weft of the module this test belongs to into out.
func buildAgent(out string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	if err := gobuild.Build(context.Background(), filepath.Dir(strings.TrimSpace(string(gomod))), out, "./cmd/weft", ""); err != nil {
		return fmt.Errorf("build the agent: %w", err)
	}
	return nil
}

// syncBuffer is an io.Writer safe for the demo's goroutines, the agent's
// output and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
