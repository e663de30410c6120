//go:build integration

package storeapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/backends"
)

// TestThanosQuery runs a real Thanos Query (v0.42.4, `make tools`) over
// this package's server on loopback and reads series, labels, rules and
// exemplars through its HTTP API.
func TestThanosQuery(t *testing.T) {
	bin, err := backends.FindThanos()
	require.NoError(t, err, "`make tools` builds Thanos and `make test` sets WEFT_THANOS")
	st := startStore(t, nil)
	t0 := time.Now().Add(-26 * time.Minute).UnixMilli()
	write(t, st, testSeries(t0), map[string][]exemplar.Exemplar{`{__name__="req", job="a", le="1"}`: {
		{Labels: labels.FromStrings("trace_id", "0af7651916cd43dd8448eb211c80319c"), Value: 1, Ts: t0 + 5_000, HasTs: true},
	}})
	srv, _ := serve(t, st, func(o *Options) { o.Rules = fakeRules{} })
	// A second node with other series.
	st2 := startStore(t, func(c *weftstoreextension.Config) {
		c.ExternalLabels = map[string]string{"cluster": "c1", "node": "n2"}
	})
	write(t, st2, map[string][]sample{`{__name__="up", job="a"}`: floats(t0, 300, 1)}, nil)
	srv2, _ := serve(t, st2, nil)
	q, err := backends.StartThanosQuery(t.Context(), bin, t.TempDir(), []string{srv.Addr(), srv2.Addr()}, []string{"--query.partial-response"}, os.Stderr)
	require.NoError(t, err)
	t.Cleanup(q.Stop)

	get := func(path string, params url.Values) map[string]any {
		t.Helper()
		resp, err := http.Get(q.URL() + path + "?" + params.Encode())
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		var env map[string]any
		require.NoError(t, json.Unmarshal(b, &env))
		return env
	}
	end := strconv.FormatInt(time.Now().Unix(), 10)
	start := strconv.FormatInt(t0/1000, 10)
	require.Eventually(t, func() bool {
		env := get("/api/v1/query", url.Values{"query": {`count(up{node="n1"})`}, "time": {strconv.FormatInt(t0/1000+60, 10)}})
		res := env["data"].(map[string]any)["result"].([]any)
		return len(res) == 1 && res[0].(map[string]any)["value"].([]any)[1] == "6"
	}, 30*time.Second, 200*time.Millisecond, "Thanos Query counts the six up series through the StoreAPI")

	require.Eventually(t, func() bool {
		env := get("/api/v1/query", url.Values{"query": {`count by (node) (up)`}, "time": {strconv.FormatInt(t0/1000+60, 10)}})
		return len(env["data"].(map[string]any)["result"].([]any)) == 2
	}, 30*time.Second, 200*time.Millisecond, "both nodes answer")
	// {__name__="up", job="a"} is value i at sample i on both nodes.
	sum := get("/api/v1/query", url.Values{"query": {`sum by (node) (up{job="a", instance="", mode="", zone=""})`}, "time": {strconv.FormatFloat(float64(t0+150*5_000)/1000, 'f', 3, 64)}})
	require.Len(t, sum["data"].(map[string]any)["result"].([]any), 2)
	for _, r := range sum["data"].(map[string]any)["result"].([]any) {
		require.Equal(t, "150", r.(map[string]any)["value"].([]any)[1])
	}

	series := get("/api/v1/series", url.Values{"match[]": {`{__name__=~".+", node="n1"}`}, "start": {start}, "end": {end}})["data"].([]any)
	require.Len(t, series, 12)
	for _, s := range series {
		require.Equal(t, "n1", s.(map[string]any)["node"])
	}
	vals := get("/api/v1/label/node/values", url.Values{"start": {start}, "end": {end}})["data"].([]any)
	require.Equal(t, []any{"n1", "n2"}, vals)

	hist := get("/api/v1/query", url.Values{"query": {`histogram_count(lat)`}, "time": {strconv.FormatInt(t0/1000+60, 10)}})
	require.Len(t, hist["data"].(map[string]any)["result"].([]any), 1)

	rules := get("/api/v1/rules", nil)["data"].(map[string]any)["groups"].([]any)
	require.Len(t, rules, 1)
	alerts := get("/api/v1/alerts", nil)["data"].(map[string]any)["alerts"].([]any)
	require.Len(t, alerts, 1)
	require.Equal(t, "n1", alerts[0].(map[string]any)["labels"].(map[string]any)["node"])

	ex := get("/api/v1/query_exemplars", url.Values{"query": {`req{node="n1"}`}, "start": {start}, "end": {end}})["data"].([]any)
	require.Len(t, ex, 1)
}
