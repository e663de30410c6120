package weftqueryextension

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/querytest"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/weftapi"
	"github.com/weftobs/weft/extensions/weftstoreextension"
)

// fillSeries writes n series name{i="0".."n-1"} with count samples each,
// every apart, from t0.
func fillSeries(t testing.TB, st *weftstoreextension.Store, t0 time.Time, name string, n, count int, every time.Duration) {
	t.Helper()
	app := st.Appendable().Appender(context.Background())
	for j := range count {
		for i := range n {
			_, err := app.Append(0, labels.FromStrings("__name__", name, "i", fmt.Sprint(i)), t0.Add(time.Duration(j)*every).UnixMilli(), float64(i*j%97))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
}

// blockingQueryable makes every Select announce itself on entered and wait
// until release is closed or the query's context ends: a query that stays
// in evaluation as long as the test wants.
type blockingQueryable struct {
	storage.Queryable
	entered chan struct{}
	release chan struct{}
}

func newBlocking() *blockingQueryable {
	return &blockingQueryable{entered: make(chan struct{}, 64), release: make(chan struct{})}
}

// wrap is a fixtureOpts.before that puts b in front of the store.
func (b *blockingQueryable) wrap(s *server, st *weftstoreextension.Store) {
	b.Queryable = st.Queryable()
	s.queryable = b
}

func (b *blockingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := b.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return blockingQuerier{Querier: q, b: b}, nil
}

type blockingQuerier struct {
	storage.Querier
	b *blockingQueryable
}

func (q blockingQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	q.b.entered <- struct{}{}
	select {
	case <-q.b.release:
	case <-ctx.Done():
		return storage.ErrSeriesSet(ctx.Err())
	}
	return q.Querier.Select(ctx, sortSeries, hints, ms...)
}

// answer is one HTTP answer of a request sent in the background.
type answer struct {
	code   int
	header http.Header
	body   []byte
	err    error
}

// send does a GET in the background; the answer arrives on the channel.
func send(ctx context.Context, rawURL string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			ch <- answer{err: err}
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- answer{code: resp.StatusCode, header: resp.Header, body: b, err: err}
	}()
	return ch
}

func decodeEnvelope(t *testing.T, b []byte) promEnvelope {
	t.Helper()
	var env promEnvelope
	require.NoError(t, json.Unmarshal(b, &env), "body: %s", b)
	return env
}

// TestQueryLengthLimit: expressions over max_query_length are refused with
// 400 before they are parsed, on every route that takes PromQL, by GET and
// POST; one of exactly the limit is answered.
func TestQueryLengthLimit(t *testing.T) {
	const limit = 4096
	f := newFixture(t, fixtureOpts{mod: func(c *Config) { c.MaxQueryLength = limit }})
	at := secs(f.t0.Add(5 * time.Minute))
	nested := strings.Repeat("(", 3000) + "node_temp_celsius" + strings.Repeat(")", 3000) // 6017 bytes
	var alts []string
	for i := range 800 {
		alts = append(alts, fmt.Sprintf("sensor-%03d", i))
	}
	regex := `node_temp_celsius{sensor=~"` + strings.Join(alts, "|") + `"}` // 8,827 bytes
	tests := []struct {
		name, path string
		post       bool
		params     url.Values
		wantLen    int
	}{
		{"nested parentheses", "/api/v1/query", false, url.Values{"query": {nested}, "time": {at}}, len(nested)},
		{"long alternation by POST", "/api/v1/query", true, url.Values{"query": {regex}, "time": {at}}, len(regex)},
		{"range query", "/api/v1/query_range", true, url.Values{"query": {nested}, "start": {secs(f.t0)}, "end": {at}, "step": {"15"}}, len(nested)},
		{"series match[]", "/api/v1/series", false, url.Values{"match[]": {"up", regex}}, len(regex)},
		{"label values match[]", "/api/v1/label/sensor/values", false, url.Values{"match[]": {regex}}, len(regex)},
		{"exemplars", "/api/v1/query_exemplars", true, url.Values{"query": {regex}}, len(regex)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code int
			var env promEnvelope
			if tt.post {
				code, env = promPost(t, f.url, tt.path, tt.params)
			} else {
				code, env = promGet(t, f.url, tt.path, tt.params)
			}
			assert.Equal(t, http.StatusBadRequest, code)
			assert.Equal(t, "error", env.Status)
			assert.Equal(t, "bad_data", env.ErrorType)
			assert.Contains(t, env.Error, fmt.Sprintf("expression is %d bytes, more than max_query_length (%d)", tt.wantLen, limit))
		})
	}
	assert.Equal(t, int64(len(tests)), f.srv.refused.Get(limits.ReasonQueryLength))

	// Exactly the limit: answered.
	prefix, suffix := `node_temp_celsius{sensor!="`, `"}`
	exact := prefix + strings.Repeat("z", limit-len(prefix)-len(suffix)) + suffix
	require.Len(t, exact, limit)
	code, env := promGet(t, f.url, "/api/v1/query", url.Values{"query": {exact}, "time": {at}})
	require.Equal(t, http.StatusOK, code, "%+v", env)
	var qr queryResult
	require.NoError(t, json.Unmarshal(env.Data, &qr))
	var v []vecSample
	require.NoError(t, json.Unmarshal(qr.Result, &v))
	assert.Len(t, v, 2)
}

// TestQueryNodesLimit: expressions of more than max_query_nodes nodes are
// refused with 400 before evaluation; the count is exact at the boundary.
func TestQueryNodesLimit(t *testing.T) {
	const limit = 50
	f := newFixture(t, fixtureOpts{mod: func(c *Config) { c.MaxQueryNodes = limit }})
	at := secs(f.t0.Add(5 * time.Minute))
	sumOf := func(n int) string { // n selectors and n-1 additions: 2n-1 nodes
		return strings.TrimSuffix(strings.Repeat(`node_temp_celsius{sensor="a"} + `, n), " + ")
	}
	nestedAbs := strings.Repeat("abs(", 60) + "node_temp_celsius" + strings.Repeat(")", 60) // 61 nodes, 1.1 KB
	tests := []struct {
		name, path, query string
		refused           bool
	}{
		{"49 nodes", "/api/v1/query", sumOf(25), false},
		{"51 nodes", "/api/v1/query", sumOf(26), true},
		{"nested calls", "/api/v1/query", nestedAbs, true},
		{"nested calls, range", "/api/v1/query_range", nestedAbs, true},
		{"exemplars", "/api/v1/query_exemplars", nestedAbs, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := url.Values{"query": {tt.query}, "time": {at}, "start": {secs(f.t0)}, "end": {at}, "step": {"15"}}
			code, env := promGet(t, f.url, tt.path, params)
			if !tt.refused {
				require.Equal(t, http.StatusOK, code, "%+v", env)
				var qr queryResult
				require.NoError(t, json.Unmarshal(env.Data, &qr))
				var v []vecSample
				require.NoError(t, json.Unmarshal(qr.Result, &v))
				require.Len(t, v, 1)
				assert.Equal(t, "500", v[0].Value[1], "25 × 20")
				return
			}
			assert.Equal(t, http.StatusBadRequest, code)
			assert.Equal(t, "bad_data", env.ErrorType)
			assert.Contains(t, env.Error, fmt.Sprintf("more than max_query_nodes (%d) syntax-tree nodes", limit))
		})
	}
	assert.Equal(t, int64(4), f.srv.refused.Get(limits.ReasonQueryNodes))
}

// TestMaxSamples: a query that would hold more than the store engine's
// max samples (weft_store query::max_samples) fails with 422 "execution"
// (as Prometheus answers) and is counted as refused by max_samples;
// smaller ones pass.
func TestMaxSamples(t *testing.T) {
	f := newFixture(t, fixtureOpts{
		store: func(c *weftstoreextension.Config) { c.Query.MaxSamples = 5000 },
		fill: func(t testing.TB, st *weftstoreextension.Store, t0 time.Time) {
			fillSeries(t, st, t0, "pod_memory_bytes", 300, 40, 15*time.Second)
		},
	})
	end := f.t0.Add(9*time.Minute + 45*time.Second)
	for _, tt := range []struct {
		name, path string
		params     url.Values
		refused    bool
	}{
		{"range over 300 series × 40 steps", "/api/v1/query_range", url.Values{"query": {"pod_memory_bytes"}, "start": {secs(f.t0)}, "end": {secs(end)}, "step": {"15"}}, true},
		{"10m window of 300 series", "/api/v1/query", url.Values{"query": {"pod_memory_bytes[10m]"}, "time": {secs(end)}}, true},
		{"instant sum", "/api/v1/query", url.Values{"query": {"sum(pod_memory_bytes)"}, "time": {secs(end)}}, false},
		{"range over 100 series × 40 steps", "/api/v1/query_range", url.Values{"query": {`pod_memory_bytes{i=~"[0-9]|[0-9][0-9]"}`}, "start": {secs(f.t0)}, "end": {secs(end)}, "step": {"15"}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, env := promGet(t, f.url, tt.path, tt.params)
			if !tt.refused {
				assert.Equal(t, http.StatusOK, code, "%+v", env)
				return
			}
			assert.Equal(t, http.StatusUnprocessableEntity, code)
			assert.Equal(t, "execution", env.ErrorType)
			assert.Contains(t, env.Error, "query processing would load too many samples into memory")
		})
	}
	assert.Equal(t, int64(2), f.srv.refused.Get(limits.ReasonSamples))
}

// TestQueryConcurrency: with the slots and the queue taken by queries that
// stay in evaluation, the next data request of any API gets 503
// "unavailable" with Retry-After, while the probes and cheap endpoints
// answer; released, every admitted query completes.
func TestQueryConcurrency(t *testing.T) {
	b := newBlocking()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := tel.NewTelemetrySettings()
	f := newFixture(t, fixtureOpts{
		mod: func(c *Config) {
			c.MaxConcurrentQueries, c.MaxQueuedQueries, c.QueueTimeout = 2, 1, time.Minute
		},
		before: b.wrap,
		tel:    &set,
	})
	q := f.url + "/api/v1/query?" + url.Values{"query": {"sum(node_temp_celsius)"}, "time": {secs(f.t0.Add(5 * time.Minute))}}.Encode()
	first, second := send(t.Context(), q), send(t.Context(), q)
	<-b.entered
	<-b.entered
	third := send(t.Context(), q)
	require.Eventually(t, func() bool { return f.srv.gate.Queued() == 1 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 2, f.srv.gate.Running())

	for _, p := range []string{"/api/v1/query?query=1", "/api/v1/labels", "/api/v1/logs", "/api/v1/correlate/" + checkoutTraceID.String()} {
		resp := <-send(t.Context(), f.url+p)
		require.NoError(t, resp.err)
		assert.Equal(t, http.StatusServiceUnavailable, resp.code, p)
		assert.Equal(t, "60", resp.header.Get("Retry-After"), p)
		env := decodeEnvelope(t, resp.body)
		assert.Equal(t, "unavailable", env.ErrorType, p)
		assert.Contains(t, env.Error, "max_concurrent_queries (2) running and max_queued_queries (1) waiting", p)
	}
	resp := <-send(t.Context(), f.url+"/api/traces?service=checkout")
	require.NoError(t, resp.err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.code)
	assert.Equal(t, "60", resp.header.Get("Retry-After"))
	assert.Contains(t, string(resp.body), `"code":503`, "Jaeger envelope")

	for _, p := range []string{"/healthz", "/ready", "/api/v1/status/buildinfo", "/api/services"} {
		code, _ := get(t, f.url+p)
		assert.Equal(t, http.StatusOK, code, "%s while the query slots are taken", p)
	}
	assert.Equal(t, int64(5), f.srv.refused.Get(limits.ReasonQueueFull))
	m, err := tel.GetMetric("weft_query.refused_requests")
	require.NoError(t, err)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%T", m.Data)
	published := map[string]int64{}
	for _, dp := range sum.DataPoints {
		r, _ := dp.Attributes.Value("reason")
		published[r.AsString()] = dp.Value
	}
	assert.Equal(t, int64(5), published[limits.ReasonQueueFull])
	assert.Equal(t, int64(0), published[limits.ReasonQueryLength])

	close(b.release)
	for _, ch := range []<-chan answer{first, second, third} {
		a := <-ch
		require.NoError(t, a.err)
		assert.Equal(t, http.StatusOK, a.code, "%s", a.body)
	}
	assert.Equal(t, 0, f.srv.gate.Running())
	assert.Equal(t, 0, f.srv.gate.Queued())
}

// TestQueueTimeout: a request that waits longer than queue_timeout for a
// slot gets 503 "unavailable" with Retry-After.
func TestQueueTimeout(t *testing.T) {
	b := newBlocking()
	f := newFixture(t, fixtureOpts{
		mod: func(c *Config) {
			c.MaxConcurrentQueries, c.MaxQueuedQueries, c.QueueTimeout = 1, 1, 200*time.Millisecond
		},
		before: b.wrap,
	})
	q := f.url + "/api/v1/query?" + url.Values{"query": {"node_temp_celsius"}}.Encode()
	held := send(t.Context(), q)
	<-b.entered
	resp := <-send(t.Context(), f.url+"/api/v1/series?match[]=node_temp_celsius")
	require.NoError(t, resp.err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.code)
	assert.Equal(t, "1", resp.header.Get("Retry-After"))
	env := decodeEnvelope(t, resp.body)
	assert.Equal(t, "unavailable", env.ErrorType)
	assert.Contains(t, env.Error, "no query slot free within queue_timeout (200ms)")
	assert.Equal(t, int64(1), f.srv.refused.Get(limits.ReasonQueueTimeout))
	close(b.release)
	a := <-held
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusOK, a.code)
}

// TestQueryCanceledByClient: a query that would evaluate for many seconds
// stops when its client goes away: the slot is free again and the query
// ended as canceled, not completed.
func TestQueryCanceledByClient(t *testing.T) {
	f := newFixture(t, fixtureOpts{
		mod: func(c *Config) { c.Timeout = 10 * time.Minute },
		fill: func(t testing.TB, st *weftstoreextension.Store, t0 time.Time) {
			fillSeries(t, st, t0, "cpu_seconds", 400, 600, time.Second) // 10 minutes at 1 s
		},
	})
	// 400 series × 1,100 steps, each step sorting a 600-sample window:
	// seconds of evaluation (measured 5 s without the race detector on a
	// busy 2-core machine), checked for cancellation series by series.
	heavy := f.url + "/api/v1/query_range?" + url.Values{
		"query": {"quantile_over_time(0.5, cpu_seconds[10m])"},
		"start": {secs(f.t0)}, "end": {secs(f.t0.Add(10 * time.Minute))}, "step": {"0.55"},
	}.Encode()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := send(ctx, heavy)
	require.Eventually(t, func() bool { return f.srv.gate.Running() == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	a := <-done
	require.ErrorIs(t, a.err, context.Canceled)
	require.Eventually(t, func() bool { return f.srv.gate.Running() == 0 }, 10*time.Second, 5*time.Millisecond,
		"the evaluation still holds its slot after the client left")
	assert.Equal(t, int64(1), f.srv.interrupted.Get(limits.ReasonCanceled), "the query ended as canceled")
	assert.Equal(t, int64(0), f.srv.interrupted.Get(limits.ReasonTimeout))
}

// TestSlowBody: a POST whose body trickles in is cut at read_body_timeout
// with 408; a body read in time does not leave a deadline behind that would
// cancel the query running after it.
func TestSlowBody(t *testing.T) {
	b := newBlocking()
	const bodyTimeout = 300 * time.Millisecond
	f := newFixture(t, fixtureOpts{mod: func(c *Config) { c.ReadBodyTimeout = bodyTimeout }, before: b.wrap})

	conn, err := net.Dial("tcp", f.srv.addr())
	require.NoError(t, err)
	defer conn.Close()
	// A guard against a hang, far beyond the timeout under test.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
	_, err = fmt.Fprintf(conn, "POST /api/v1/query HTTP/1.1\r\nHost: weft\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nquery=")
	require.NoError(t, err)
	stop, trickled := make(chan struct{}), make(chan struct{})
	go func() { // one byte every 20 ms: 20 s for the whole body
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("1")); err != nil {
					return
				}
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	close(stop)
	<-trickled
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	env := decodeEnvelope(t, body)
	assert.Equal(t, "bad_data", env.ErrorType)
	assert.Contains(t, env.Error, "request body not read within read_body_timeout (300ms)")
	assert.Equal(t, int64(1), f.srv.refused.Get(limits.ReasonBodyTimeout))
	assert.Equal(t, 0, f.srv.gate.Running(), "the body is read before a slot is taken")

	// A POST read in time whose query runs past read_body_timeout.
	res := make(chan answer, 1)
	go func() {
		code, env := 0, promEnvelope{}
		resp, err := http.PostForm(f.url+"/api/v1/query", url.Values{"query": {"sum(node_temp_celsius)"}, "time": {secs(f.t0.Add(5 * time.Minute))}})
		if err == nil {
			code = resp.StatusCode
			err = json.NewDecoder(resp.Body).Decode(&env)
			resp.Body.Close()
		}
		res <- answer{code: code, err: errors.Join(err, errIf(env.Status != "success", env.Error))}
	}()
	<-b.entered
	<-time.After(3 * bodyTimeout) // let the body deadline pass while the query runs
	close(b.release)
	a := <-res
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusOK, a.code)
	assert.Equal(t, int64(0), f.srv.interrupted.Get(limits.ReasonCanceled))
}

func errIf(cond bool, msg string) error {
	if cond {
		return errors.New(msg)
	}
	return nil
}

// TestConnectionLimit: past max_connections the reserve answers the probes
// and 503 for anything else; the API answers again once connections close.
func TestConnectionLimit(t *testing.T) {
	f := newFixture(t, fixtureOpts{mod: func(c *Config) {
		c.MaxConnections, c.MaxConcurrentQueries, c.MaxQueuedQueries = 2, 1, 1
		c.HTTP.ReadHeaderTimeout = time.Minute // the idle connections below stay open
	}})
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", f.srv.addr())
		require.NoError(t, err)
		idle = append(idle, c)
	}
	require.Eventually(t, func() bool { return f.srv.conns.Open() == 2 }, 10*time.Second, 5*time.Millisecond)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(f.url + "/api/v1/labels")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	env := decodeEnvelope(t, body)
	assert.Equal(t, "unavailable", env.ErrorType)
	assert.Contains(t, env.Error, "max_connections (2) open")
	keepAlive := &http.Client{Transport: &http.Transport{}}
	defer keepAlive.CloseIdleConnections()
	for _, p := range []string{"/healthz", "/ready"} {
		resp, err := keepAlive.Get(f.url + p)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, p)
		assert.True(t, resp.Close, "%s: a reserve connection is closed after its answer", p)
	}
	assert.Equal(t, int64(1), f.srv.refused.Get(limits.ReasonConnections))

	for _, c := range idle {
		require.NoError(t, c.Close())
	}
	require.Eventually(t, func() bool { return f.srv.conns.Open() == 0 }, 10*time.Second, 5*time.Millisecond)
	resp, err = client.Get(f.url + "/api/v1/labels")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// fillLogTimes writes four records whose own and observed times differ:
// a backlog line read late, a live line, one without a timestamp and one
// without an observed timestamp.
func fillLogTimes(t testing.TB, st *weftstoreextension.Store, t0 time.Time) {
	t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	querytest.PutPod(rl.Resource(), "ingest", "ops", "ingest-0", "ingest")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range []struct {
		body           string
		time, observed time.Duration // from t0; 0: unset
	}{
		{"backlog line", time.Minute, 9 * time.Minute},
		{"live line", 5 * time.Minute, 5*time.Minute + time.Second},
		{"no timestamp", 0, 6 * time.Minute},
		{"no observed time", 8 * time.Minute, 0},
	} {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(r.body)
		if r.time != 0 {
			lr.SetTimestamp(querytest.TS(t0.Add(r.time)))
		}
		if r.observed != 0 {
			lr.SetObservedTimestamp(querytest.TS(t0.Add(r.observed)))
		}
	}
	require.NoError(t, st.AppendLogs(context.Background(), ld))
}

// TestLogsSinceAndObservedSince: since filters by the record's own time
// (its observed time when it has none), observed_since by the time it was
// read (its own time when that is unknown); both together.
func TestLogsSinceAndObservedSince(t *testing.T) {
	now := func(t0 time.Time) time.Time { return t0.Add(10 * time.Minute) }
	f := newFixture(t, fixtureOpts{fill: fillLogTimes, now: now})
	at := func(d time.Duration) string { return f.t0.Add(d).Format(time.RFC3339Nano) }
	tests := []struct {
		name   string
		params url.Values
		want   []string // newest first by time
	}{
		{"all", nil, []string{"no observed time", "no timestamp", "live line", "backlog line"}},
		{"since time", url.Values{"since": {at(4 * time.Minute)}}, []string{"no observed time", "no timestamp", "live line"}},
		{"since duration", url.Values{"since": {"6m"}}, []string{"no observed time", "no timestamp", "live line"}},
		{"observed_since time", url.Values{"observed_since": {at(7 * time.Minute)}}, []string{"no observed time", "backlog line"}},
		{"observed_since duration", url.Values{"observed_since": {"2m"}}, []string{"no observed time", "backlog line"}},
		{"observed_since Unix seconds", url.Values{"observed_since": {secs(f.t0.Add(5*time.Minute + 500*time.Millisecond))}}, []string{"no observed time", "no timestamp", "live line", "backlog line"}},
		{"both", url.Values{"since": {at(4 * time.Minute)}, "observed_since": {at(7 * time.Minute)}}, []string{"no observed time"}},
		{"observed_since finds the oldest by time", url.Values{"observed_since": {at(8*time.Minute + 30*time.Second)}, "limit": {"1"}}, []string{"backlog line"}},
		{"observed_since with limit", url.Values{"observed_since": {at(7 * time.Minute)}, "limit": {"1"}}, []string{"no observed time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, env := promGet(t, f.url, "/api/v1/logs", tt.params)
			require.Equal(t, http.StatusOK, code, "%+v", env)
			var logs []weftapi.LogJSON
			require.NoError(t, json.Unmarshal(env.Data, &logs))
			got := []string{}
			for _, l := range logs {
				got = append(got, l.Body)
			}
			assert.Equal(t, tt.want, got)
			assert.Empty(t, env.Warnings)
		})
	}

	code, env := promGet(t, f.url, "/api/v1/logs", nil)
	require.Equal(t, http.StatusOK, code)
	var raw []map[string]any
	require.NoError(t, json.Unmarshal(env.Data, &raw))
	require.Len(t, raw, 4)
	assert.NotContains(t, raw[0], "observedTime", "no observed time")
	assert.Equal(t, at(6*time.Minute), raw[1]["time"], "no timestamp: time is the observed time")
	assert.Equal(t, at(6*time.Minute), raw[1]["observedTime"])
	assert.Equal(t, at(time.Minute), raw[3]["time"])
	assert.Equal(t, at(9*time.Minute), raw[3]["observedTime"])

	for _, bad := range []string{"-1m", "later"} {
		code, env := promGet(t, f.url, "/api/v1/logs", url.Values{"observed_since": {bad}})
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Equal(t, "bad_data", env.ErrorType)
		assert.Contains(t, env.Error, `invalid parameter "observed_since"`)
	}

	// observed_since examines a bounded number of records and says so.
	g := newFixture(t, fixtureOpts{fill: fillLogTimes, now: now, before: func(s *server, _ *weftstoreextension.Store) { s.logScan = 2 }})
	code, env = promGet(t, g.url, "/api/v1/logs", url.Values{"observed_since": {at(8*time.Minute + 30*time.Second)}, "limit": {"1"}})
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `[]`, string(env.Data))
	require.Len(t, env.Warnings, 1)
	assert.Contains(t, env.Warnings[0], "observed_since: examined only the 2 newest records by time")
}

// vecSample and queryResult decode query results.
type (
	vecSample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	queryResult struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
)
