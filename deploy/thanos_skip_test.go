//go:build !integration

package deploy

import "testing"

// noThanos: plain `go test` runs without the tool cache, so the tests that
// need the Thanos binary skip; `make test` (-tags integration, WEFT_THANOS
// set by the Makefile) runs them, and fails without it.
func noThanos(t testing.TB) {
	t.Helper()
	t.Skip("WEFT_THANOS is not set (`make test` sets it to the Thanos binary `make tools` builds)")
}
