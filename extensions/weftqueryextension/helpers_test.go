package weftqueryextension

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/promapi"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
	"github.com/weftobs/weft/internal/weftest"
)

var storeID = weftstoretest.ID

// fixture is a store filled with known data and a started weft_query on a
// loopback port.
type fixture struct {
	store *weftstoreextension.Store
	srv   *server
	url   string // base URL of the HTTP server
	t0    time.Time
	// trace IDs of the stored traces
	checkoutTrace, reviewsTrace pcommon.TraceID
}

// fixtureOpts changes a fixture before its server starts; every field may be nil.
type fixtureOpts struct {
	mod   func(*Config)
	store func(*weftstoreextension.Config)                               // the store's configuration (its PromQL engine: query::max_samples)
	rules func(t0 time.Time) component.Component                         // registered as extension weft_rules
	now   func(t0 time.Time) time.Time                                   // the server's clock
	fill  func(t testing.TB, st *weftstoreextension.Store, t0 time.Time) // default querytest.Fill
	// before changes the server before Start (e.g. wraps its queryable).
	before func(s *server, st *weftstoreextension.Store)
	tel    *component.TelemetrySettings // default: nop
}

// newFixture starts weft_query over a store with the fixture's data.
func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	st := weftstoretest.Start(t, o.store)
	t0 := time.Now().Truncate(time.Minute).Add(-10 * time.Minute).UTC()
	if o.fill == nil {
		o.fill = querytest.Fill
	}
	o.fill(t, st, t0)

	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
	if o.mod != nil {
		o.mod(cfg)
	}
	require.NoError(t, cfg.Validate())
	set := componenttest.NewNopTelemetrySettings()
	if o.tel != nil {
		set = *o.tel
	}
	s := newServer(set, cfg)
	if o.before != nil {
		o.before(s, st)
	}
	exts := map[component.ID]component.Component{storeID: st}
	if o.rules != nil {
		exts[component.MustNewID("weft_rules")] = o.rules(t0)
	}
	if o.now != nil {
		s.now = func() time.Time { return o.now(t0) }
	}
	// Bind a free port: start on :0 and read the address back.
	require.NoError(t, s.Start(t.Context(), weftest.Host(exts)))
	require.NoError(t, s.Ready()) // as the collector does once its pipelines run
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	return &fixture{store: st, srv: s, url: "http://" + s.addr(), t0: t0, checkoutTrace: querytest.CheckoutTraceID, reviewsTrace: querytest.ReviewsTraceID}
}

// httpHandler is the fixture server's whole handler as confighttp builds
// it (CORS, body size, decompression around weft's own).
func (f *fixture) httpHandler(t testing.TB) http.Handler {
	t.Helper()
	srv, err := f.srv.httpServer(t.Context(), weftstoretest.Host(f.store))
	require.NoError(t, err)
	return srv.Handler
}

// querytest.TS converts a fixture offset to pdata time.
func get(t testing.TB, rawURL string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// promGet calls a Prometheus API path with params and decodes the envelope.
func promGet(t testing.TB, base, path string, params url.Values) (int, promEnvelope) {
	t.Helper()
	u := base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	code, body := get(t, u)
	var env promEnvelope
	require.NoError(t, json.Unmarshal(body, &env), "body: %s", body)
	return code, env
}

// promEnvelope decodes a Prometheus API answer, data kept raw.
type promEnvelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// secs formats a time as Prometheus API seconds.
func secs(t time.Time) string { return string(promapi.FormatMillis(t.UnixMilli())) }

// httpClient does one GET without keep-alive, returning transport errors.
type httpClient struct{}

func (httpClient) get(u string) (int, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// promPost sends params as a form body.
func promPost(t testing.TB, base, path string, params url.Values) (int, promEnvelope) {
	t.Helper()
	resp, err := http.PostForm(base+path, params)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var env promEnvelope
	require.NoError(t, json.Unmarshal(b, &env), "body: %s", b)
	return resp.StatusCode, env
}

// checkoutTraceID is the fixture's failing trace (querytest's).
var checkoutTraceID = querytest.CheckoutTraceID
