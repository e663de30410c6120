package weftqueryextension

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// benchServe runs one request against the handler per iteration; SetBytes
// is the answer's size.
func benchServe(b *testing.B, h http.Handler, target string) {
	b.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", target, rec.Code, rec.Body.Bytes())
	}
	b.SetBytes(int64(rec.Body.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	}
}

func BenchmarkPromAPI(b *testing.B) {
	f := newFixture(b, fixtureOpts{})
	h := f.srv.handler()
	at := secs(f.t0.Add(5 * time.Minute))
	for _, bc := range []struct{ name, target string }{
		{"instant_rate", "/api/v1/query?" + url.Values{"query": {"sum by (code) (rate(http_requests_total[1m]))"}, "time": {at}}.Encode()},
		{"range_20_steps", "/api/v1/query_range?" + url.Values{"query": {"node_temp_celsius"}, "start": {secs(f.t0)}, "end": {at}, "step": {"15"}}.Encode()},
		{"series", "/api/v1/series?" + url.Values{"match[]": {`{__name__=~".+"}`}}.Encode()},
		{"label_values", "/api/v1/label/__name__/values"},
	} {
		b.Run(bc.name, func(b *testing.B) { benchServe(b, h, bc.target) })
	}
}

func BenchmarkJaegerAPI(b *testing.B) {
	f := newFixture(b, fixtureOpts{})
	h := f.srv.handler()
	b.Run("trace", func(b *testing.B) { benchServe(b, h, "/api/traces/"+checkoutTraceID.String()) })
	b.Run("search", func(b *testing.B) { benchServe(b, h, "/api/traces?service=checkout&tag=error:true") })
	b.Run("correlate", func(b *testing.B) { benchServe(b, h, "/api/v1/correlate/"+checkoutTraceID.String()) })
}
