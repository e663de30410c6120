package weftqueryextension

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
)

// everyPath lists a request to every route (with valid parameters).
func everyPath() []string {
	tid := checkoutTraceID.String()
	return []string{
		"/api/v1/query?query=1", "/api/v1/query_range?query=1&start=0&end=60&step=15",
		"/api/v1/series?match[]=up", "/api/v1/labels", "/api/v1/label/job/values",
		"/api/v1/query_exemplars?query=up", "/api/v1/metadata", "/api/v1/status/buildinfo",
		"/api/v1/rules", "/api/v1/alerts", "/api/services", "/api/services/checkout/operations",
		"/api/traces?service=checkout", "/api/traces/" + tid, "/api/v1/correlate/" + tid, "/api/v1/logs",
		"/", "/nope",
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t, fixtureOpts{mod: func(c *Config) {
		c.Auth.BearerToken = "s3cret-token"
		c.Auth.Basic = &BasicAuthConfig{Username: "grafana", Password: "pw"}
	}})
	for _, p := range []string{"/healthz", "/ready"} {
		code, _ := get(t, f.url+p)
		assert.Equal(t, 200, code, "%s is open", p)
	}
	creds := []struct {
		name   string
		header []string
		ok     bool
	}{
		{"none", nil, false},
		{"bearer", []string{"Authorization", "Bearer s3cret-token"}, true},
		{"bearer, scheme in lowercase (RFC 7235)", []string{"Authorization", "bearer s3cret-token"}, true},
		{"wrong bearer", []string{"Authorization", "Bearer s3cret-tokeN"}, false},
		{"bearer prefix only", []string{"Authorization", "Bearer "}, false},
		{"token without scheme", []string{"Authorization", "s3cret-token"}, false},
		{"basic", []string{"Authorization", basic("grafana", "pw")}, true},
		{"basic wrong password", []string{"Authorization", basic("grafana", "pW")}, false},
		{"basic wrong user", []string{"Authorization", basic("admin", "pw")}, false},
		{"basic with the token", []string{"Authorization", basic("grafana", "s3cret-token")}, false},
	}
	for _, c := range creds {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range everyPath() {
				code, _ := get(t, f.url+p, c.header...)
				if c.ok {
					assert.NotEqual(t, http.StatusUnauthorized, code, p)
				} else {
					assert.Equal(t, http.StatusUnauthorized, code, p)
				}
			}
		})
	}
}

func basic(u, p string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(u, p)
	return r.Header.Get("Authorization")
}

// zeros is an endless reader of '0' bytes, n at most.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), z.n)
	for i := range p[:n] {
		p[i] = '0'
	}
	z.n -= n
	return int(n), nil
}

// TestRequestLimits sends 64 MiB bodies (with and without a length) and a
// 2 MiB URL: all answer 4xx, and the heap does not grow by their size.
func TestRequestLimits(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	const big = 64 << 20
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(client.CloseIdleConnections)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, chunked := range []bool{false, true} {
		for range 3 {
			body := io.MultiReader(strings.NewReader("query="), &zeros{n: big})
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, f.url+"/api/v1/query", body)
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if !chunked {
				req.ContentLength = big + 6
			}
			resp, err := client.Do(req)
			if err != nil {
				// The server may close the connection before the client finished
				// writing; that is a refusal too, but only after the 413.
				msg := err.Error()
				require.True(t, strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe"), "chunked=%v: %v", chunked, err)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "chunked=%v", chunked)
		}
	}
	code, err := (&httpClient{}).get(f.url + "/api/v1/query?query=" + strings.Repeat("1", 2<<20))
	require.NoError(t, err)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code)

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, grown, int64(16<<20), "heap grew by %d bytes after 6 requests of 64 MiB", grown)

	// A body under the limit still works (POST form).
	code2, env := promPost(t, f.url, "/api/v1/query", url.Values{"query": {"1+1"}})
	assert.Equal(t, 200, code2)
	assert.Equal(t, "success", env.Status)
}

func TestCORS(t *testing.T) {
	f := newFixture(t, fixtureOpts{mod: func(c *Config) {
		c.HTTP.CORS = configoptional.Some(confighttp.CORSConfig{AllowedOrigins: []string{"https://grafana.example"}})
	}})
	h := f.httpHandler(t)
	for _, tt := range []struct {
		origin, method string
		wantAllow      string
		wantCode       int
	}{
		{"https://grafana.example", http.MethodGet, "https://grafana.example", 200},
		{"https://evil.example", http.MethodGet, "", 200},
		{"https://grafana.example", http.MethodOptions, "https://grafana.example", 204},
	} {
		req := httptest.NewRequest(tt.method, "/api/v1/labels", nil)
		req.Header.Set("Origin", tt.origin)
		if tt.method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "GET")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, tt.wantCode, rec.Code, tt.origin)
		assert.Equal(t, tt.wantAllow, rec.Header().Get("Access-Control-Allow-Origin"), tt.origin)
	}
	// Default: no CORS headers at all.
	g := newFixture(t, fixtureOpts{})
	req := httptest.NewRequest(http.MethodGet, "/api/v1/labels", nil)
	req.Header.Set("Origin", "https://grafana.example")
	rec := httptest.NewRecorder()
	g.httpHandler(t).ServeHTTP(rec, req)
	assert.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
}

// FuzzQueryParams sends arbitrary query strings to every API route: no
// answer may be a 5xx other than the 503 of a query timeout, and every
// answer of the JSON APIs must be JSON.
func FuzzQueryParams(f *testing.F) {
	paths := []string{
		"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/job/values",
		"/api/v1/query_exemplars", "/api/v1/rules", "/api/traces", "/api/v1/logs", "/api/v1/correlate/abc",
	}
	for _, seed := range []string{
		"query=up", "query=sum(rate(http_requests_total[1m]))&time=1700000000.5",
		"query=1&start=0&end=60&step=0.001", "query=1&start=NaN&end=Inf&step=-1",
		"match[]={__name__=~\".+\"}&start=-62135596800&end=253402300799", "match[]={a=\"\"}",
		"service=checkout&tags={\"error\":\"true\"}&minDuration=1ms&limit=99999999999999999999",
		"service=x&start=18446744073709551615&lookback=1h", "trace_id=00&since=1e300&limit=1",
		"query=%ff%fe&timeout=1e-9", "type=alert", "query=topk(1e300, up)", "query=1&lookback_delta=-1s",
	} {
		for i := range paths {
			f.Add(uint8(i), seed)
		}
	}
	fx := newFixture(f, fixtureOpts{})
	h := fx.srv.handler()
	f.Fuzz(func(t *testing.T, which uint8, rawQuery string) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path, req.URL.RawQuery = path, rawQuery
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s?%s: %d %s", path, rawQuery, rec.Code, rec.Body.Bytes())
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s?%s: not JSON: %q", path, rawQuery, rec.Body.Bytes())
		}
		if bytes.Contains(rec.Body.Bytes(), []byte(`"status":"error"`)) && rec.Code < 400 {
			t.Fatalf("%s?%s: error with status %d", path, rawQuery, rec.Code)
		}
	})
}

// TestMalformedRequestsNoGrowth sends 3000 malformed requests over the
// network and requires 4xx answers and a heap that does not keep them.
func TestMalformedRequestsNoGrowth(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	bad := []string{
		"/api/v1/query?query=" + url.QueryEscape(strings.Repeat("sum(", 5000)),
		"/api/v1/query?query=up&time=" + strings.Repeat("9", 4000),
		"/api/v1/query_range?query=up&start=0&end=1e12&step=1",
		"/api/v1/series?match[]=" + url.QueryEscape("{"+strings.Repeat(`a="b",`, 2000)),
		"/api/v1/label/" + strings.Repeat("-", 3000) + "/values",
		"/api/traces?service=x&tags=" + url.QueryEscape(strings.Repeat("{", 4000)),
		"/api/traces/" + strings.Repeat("f", 4000),
		"/api/v1/logs?trace_id=" + strings.Repeat("z", 4000),
		"/api/v1/correlate/" + strings.Repeat("0", 33),
	}
	client := &http.Client{}
	t.Cleanup(client.CloseIdleConnections)
	send := func(n int) {
		for i := range n {
			p := bad[i%len(bad)]
			resp, err := client.Get(f.url + p)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			require.True(t, resp.StatusCode >= 400 && resp.StatusCode < 500, "%s: %d", p[:min(len(p), 60)], resp.StatusCode)
		}
	}
	send(300) // warm up pools and caches
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	send(3000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, grown, int64(4<<20), "heap grew by %d bytes over 3000 malformed requests", grown)
}
