//go:build browser

package weftquery

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromium runs headless Chromium on one URL with extra arguments and
// returns its standard output. Every request to a host other than loopback
// goes to a dead proxy on 127.0.0.1, and host names other than 127.0.0.1
// do not resolve, so the browser sends nothing off the machine.
func chromium(t *testing.T, target string, args ...string) string {
	t.Helper()
	bin := os.Getenv("WEFT_CHROMIUM")
	if bin == "" {
		var err error
		bin, err = exec.LookPath("chromium")
		require.NoError(t, err, "headless Chromium not found: apt-get install chromium (Debian package) or set WEFT_CHROMIUM")
	}
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
		"--disable-domain-reliability", "--disable-client-side-phishing-detection", "--no-pings",
		"--metrics-recording-only", "--disable-features=OptimizationHints,MediaRouter,Translate",
		"--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,1400",
	}
	cmd := exec.CommandContext(t.Context(), bin, append(append(base, args...), target)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "chromium: %s", stderr.String())
	return string(out)
}

// TestBrowserStatusPage loads the status page and the trace view of the
// firing alert's evidence in headless Chromium, checks the rendered DOM and
// saves screenshots in the test's artifact directory (go test -artifacts).
func TestBrowserStatusPage(t *testing.T) {
	f := newFixture(t, fixtureOpts{rules: newFakeRules})
	out := t.ArtifactDir()

	dom := chromium(t, f.url+"/", "--dump-dom")
	assert.Contains(t, dom, `<td class="firing">firing</td>`)
	assert.Contains(t, dom, "HighErrorRate")
	link := `href="trace/` + checkoutTraceID.String() + `"`
	require.Contains(t, dom, link, "the alert links to its evidence trace")

	shot := filepath.Join(out, "status.png")
	chromium(t, f.url+"/", "--screenshot="+shot)
	assertPNG(t, shot)

	traceURL := f.url + "/trace/" + checkoutTraceID.String()
	dom = chromium(t, traceURL, "--dump-dom")
	assert.Equal(t, 2, strings.Count(dom, `class="bar error"`), "two failing spans in the waterfall")
	assert.Contains(t, dom, "charge card")
	assert.Equal(t, 3, strings.Count(dom, `<tr class="log">`), "the trace's logs under the waterfall")

	shot = filepath.Join(out, "trace.png")
	chromium(t, traceURL, "--screenshot="+shot)
	assertPNG(t, shot)
	t.Logf("screenshots in %s", out)
}

func assertPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(b), 1000)
	assert.Equal(t, "\x89PNG", string(b[:4]))
}
