package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// When WEFT_TEST_RUN_MAIN is set the test binary acts as the weft binary, so
// tests can check exit codes and output of the real command line.
func TestMain(m *testing.M) {
	if os.Getenv("WEFT_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"weft"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	if os.Getenv("WEFT_TEST_TIMER_SLACK_CHILD") == "1" {
		timerSlackChild()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		// The collector's OpenCensus/zap and gRPC internals start package-level
		// goroutines on first use that live for the process.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}
