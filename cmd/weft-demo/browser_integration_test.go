//go:build integration

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/backends"
)

// mustGetJSON decodes the JSON answer of url, which must be 200, into v.
func mustGetJSON(t require.TestingT, ctx context.Context, url string, v any) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, url)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v), url)
}

// TestDemoAlertInAlertmanagerAndBrowser runs the demo as a user would,
// with a real Alertmanager: the error burst fires HighErrorRate (for: 2m),
// Alertmanager receives it with evidence trace IDs the local store knows,
// and the status page, rendered by headless Chromium, shows the firing
// alert and, one click further, the evidence trace's waterfall with its
// logs. Screenshots are kept in the test's artifact directory
// (go test -artifacts -outputdir D).
func TestDemoAlertInAlertmanagerAndBrowser(t *testing.T) {
	amBin, err := backends.FindAlertmanager()
	require.NoError(t, err)
	chromiumBin, err := backends.FindChromium()
	require.NoError(t, err, "headless Chromium is needed: apt-get install chromium (Debian package), or `make tools`")

	// The directory is made first so that it is removed after the demo ends.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, demoFlags{weft: agentBin, rate: 200, errors: true, errorAfter: time.Millisecond, jaeger: "off",
			prometheus: "off", alertmgr: amBin, dir: dir}, out, out)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		if t.Failed() {
			t.Logf("demo output:\n%s", out)
		}
	})

	urlOf := func(label string) string {
		re := regexp.MustCompile(label + `\s+(http://\S+?)/?(?:\s|#|$)`)
		var u string
		require.Eventually(t, func() bool {
			if m := re.FindStringSubmatch(out.String()); m != nil {
				u = m[1]
				return true
			}
			return false
		}, 60*time.Second, 100*time.Millisecond, "the demo prints its %s URL", label)
		return u
	}
	status := urlOf("status page")
	am := urlOf("Alertmanager receives it with its evidence:")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := http.Get(status + "/ready")
		require.NoError(c, err)
		resp.Body.Close()
		assert.Equal(c, http.StatusOK, resp.StatusCode)
	}, 30*time.Second, 100*time.Millisecond, "weft_query is ready once the agent's pipelines run")

	// HighErrorRate: rate over 5m > 0.01 for 2m, evaluated every 5 s.
	type amAlert struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	var evidence []string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var alerts []amAlert
		mustGetJSON(c, t.Context(), am+"/api/v2/alerts", &alerts)
		for _, a := range alerts {
			if a.Labels["alertname"] == "HighErrorRate" && a.Annotations["weft_trace_ids"] != "" {
				evidence = strings.Split(a.Annotations["weft_trace_ids"], ",")
				return
			}
		}
		assert.Fail(c, "HighErrorRate with evidence not in Alertmanager yet")
	}, 4*time.Minute, time.Second)
	t.Logf("HighErrorRate reached Alertmanager with evidence %v", evidence)

	for _, id := range evidence {
		var doc struct {
			Data struct {
				Trace struct {
					Spans []json.RawMessage `json:"spans"`
				} `json:"trace"`
				Logs []json.RawMessage `json:"logs"`
			} `json:"data"`
		}
		mustGetJSON(t, t.Context(), status+"/api/v1/correlate/"+id, &doc)
		assert.NotEmpty(t, doc.Data.Trace.Spans, "evidence trace %s has spans in the local store", id)
		assert.NotEmpty(t, doc.Data.Logs, "evidence trace %s has logs in the local store", id)
	}

	shots := t.ArtifactDir()
	browse := func(url string, args ...string) string {
		html, err := backends.RunChromium(t.Context(), chromiumBin, t.TempDir(), url, append([]string{"--window-size=1280,1600"}, args...)...)
		require.NoError(t, err)
		return html
	}
	dom := browse(status+"/", "--dump-dom")
	assert.Contains(t, dom, "HighErrorRate")
	assert.Contains(t, dom, `<td class="firing">firing</td>`)
	assert.Contains(t, dom, `href="trace/`+evidence[0]+`"`, "the alert links to its evidence trace")
	assert.Contains(t, dom, `<tr class="file">`, "the tailed container logs are listed")
	assert.Contains(t, dom, `<td class="up">up</td>`, "the scrape targets are listed with their health")
	assert.Contains(t, dom, `<tr class="exporter">`, "the exporters are listed from the self-metrics")
	browse(status+"/", "--screenshot="+filepath.Join(shots, "status.png"))

	traceURL := status + "/trace/" + evidence[0]
	dom = browse(traceURL, "--dump-dom")
	assert.Contains(t, dom, `class="bar error"`, "the failing span is marked in the waterfall")
	assert.Contains(t, dom, `<tr class="log">`, "the trace's log lines are under the waterfall")
	assert.Contains(t, dom, "HighErrorRate", "the trace view names the alert that cites it")
	browse(traceURL, "--screenshot="+filepath.Join(shots, "trace.png"))

	for _, name := range []string{"status.png", "trace.png"} {
		b, err := os.ReadFile(filepath.Join(shots, name))
		require.NoError(t, err)
		require.Greater(t, len(b), 1000, name)
		assert.Equal(t, "\x89PNG", string(b[:4]), name)
	}
	t.Logf("screenshots in %s", shots)
}
