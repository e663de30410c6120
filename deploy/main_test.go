package deploy

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// buildDir holds the weft binary the integration tests build once (from
// the Dockerfile's build line); removed after the tests.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weft-deploy-test-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	// goleak.VerifyTestMain exits; run the check by hand to clean up first.
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
