//go:build integration

package weftqueryextension

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/backends"
)

// chromium loads target in headless Chromium (kept on loopback by
// backends.RunChromium) and returns what it printed.
func chromium(t *testing.T, target string, args ...string) string {
	t.Helper()
	bin, err := backends.FindChromium()
	require.NoError(t, err, "headless Chromium is needed: apt-get install chromium (Debian package)")
	out, err := backends.RunChromium(t.Context(), bin, t.TempDir(), target, append([]string{"--window-size=1280,1400"}, args...)...)
	require.NoError(t, err)
	return out
}

// TestBrowserStatusPage loads the status page and the trace view of the
// firing alert's evidence in headless Chromium, checks the rendered DOM and
// saves screenshots in the test's artifact directory (go test -artifacts).
func TestBrowserStatusPage(t *testing.T) {
	f := newFixture(t, fixtureOpts{rules: fakeRulesExt})
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
