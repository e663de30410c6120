package weftremotewriteextension

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		// The test binary runs as the process TestKillAndRestart kills.
		os.Exit(runHelper())
	}
	goleak.VerifyTestMain(m)
}
