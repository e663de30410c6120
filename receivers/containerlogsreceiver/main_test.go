package containerlogsreceiver

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if inNxadmWatchChild() {
		// A child of an nxadm/tail/watch evidence test: the library's
		// tracker goroutine, which cannot be stopped, is its subject.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}
