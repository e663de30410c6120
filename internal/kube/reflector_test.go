package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/weftobs/weft/internal/backoff"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// podJSON is a pod as the API server sends it (with fields this package
// does not decode, which must be skipped).
func podJSON(ns, name, rv, ip string) string {
	return fmt.Sprintf(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":%q,"namespace":%q,"uid":"uid-%s","resourceVersion":%q,
"creationTimestamp":"2026-11-25T10:00:00Z","labels":{"app":"a"},"managedFields":[{"manager":"kubelet","fieldsV1":{"f:status":{}}}]},
"spec":{"nodeName":"node-a","containers":[{"name":"c","image":"img:1","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],
"resources":{"limits":{"cpu":"1"}}}],"volumes":[{"name":"v","emptyDir":{}}]},
"status":{"phase":"Running","podIP":%q,"hostIP":"192.168.0.1","conditions":[{"type":"Ready","status":"True"}],
"containerStatuses":[{"name":"c","containerID":"containerd://x","state":{"running":{}}}]}}`, name, ns, name, rv, ip)
}

func listJSON(rv string, pods ...string) string {
	return pageJSON(rv, "", pods...)
}

// pageJSON is one page of a list; cont is its continue token ("" on the
// last page).
func pageJSON(rv, cont string, pods ...string) string {
	return fmt.Sprintf(`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":%q,"continue":%q},"items":[%s]}`, rv, cont, strings.Join(pods, ","))
}

func eventJSON(typ, obj string) string { return fmt.Sprintf(`{"type":%q,"object":%s}`+"\n", typ, obj) }

const goneStatus = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 10 (40)","reason":"Expired","code":410}`

// script is an API server that answers the n-th request (from 0) with
// step(n, w, r); it records every request.
type script struct {
	mu   sync.Mutex
	reqs []*http.Request
	at   []time.Time
	srv  *httptest.Server
}

func newScript(t *testing.T, tlsServer bool, step func(n int, w http.ResponseWriter, r *http.Request)) *script {
	t.Helper()
	s := &script{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.at = append(s.at, time.Now())
		s.mu.Unlock()
		step(n, w, r)
	})
	if tlsServer {
		s.srv = httptest.NewTLSServer(h)
	} else {
		s.srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

func (s *script) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func (s *script) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.at...)
}

// hang keeps a watch open until the client goes away.
func hang(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// recorder collects the handler's batches, each sorted by pod.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
}

func (r *recorder) handle(events []Event[Pod]) {
	var b []string
	for _, e := range events {
		m := e.Object.Meta()
		b = append(b, e.Type.String()+" "+m.key()+" "+m.ResourceVersion)
	}
	sort.Slice(b, func(i, j int) bool { return strings.Fields(b[i])[1] < strings.Fields(b[j])[1] })
	r.mu.Lock()
	r.batches = append(r.batches, b)
	r.mu.Unlock()
}

func (r *recorder) get() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.batches...)
}

// podReflector is a pod reflector over cfg's connection (lw.Meta set);
// its client is closed at the end of the test.
func podReflector(t testing.TB, cfg APIConfig, lw ListWatch[Pod], h Handler[Pod]) *Reflector[Pod] {
	t.Helper()
	c, err := NewClient(cfg, "")
	require.NoError(t, err)
	t.Cleanup(c.Close)
	if lw.Path == "" {
		lw.Path = CollectionPath("", "v1", "", "pods")
	}
	lw.Meta = (*Pod).Meta
	return NewReflector(c, lw, zap.NewNop(), h)
}

// run starts r and stops it at the end of the test.
func run[T any](t *testing.T, r *Reflector[T]) {
	t.Helper()
	r.logger = zaptest.NewLogger(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestCollectionPath(t *testing.T) {
	assert.Equal(t, "/api/v1/pods", CollectionPath("", "v1", "", "pods"))
	assert.Equal(t, "/api/v1/namespaces/default/pods", CollectionPath("", "v1", "default", "pods"))
	assert.Equal(t, "/apis/monitoring.coreos.com/v1/prometheusrules", CollectionPath("monitoring.coreos.com", "v1", "", "prometheusrules"))
	assert.Equal(t, "/apis/monitoring.coreos.com/v1/namespaces/shop/prometheusrules", CollectionPath("monitoring.coreos.com", "v1", "shop", "prometheusrules"))
}

// TestListThenWatchWithBookmarks: the first list (from the watch cache),
// a watch from its version with bookmarks, and a watch the server ends
// resumed from the last version seen (the bookmark's), with the selectors
// and headers on every request.
func TestListThenWatchWithBookmarks(t *testing.T) {
	s := newScript(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0:
			_, _ = fmt.Fprint(w, listJSON("10", podJSON("default", "a", "9", "10.0.0.1")))
		case 1:
			_, _ = fmt.Fprint(w, eventJSON("ADDED", podJSON("default", "b", "11", "10.0.0.2"))+
				eventJSON("MODIFIED", podJSON("default", "a", "12", "10.0.0.3"))+
				eventJSON("BOOKMARK", `{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"17"}}`))
			// The server ends the watch (timeoutSeconds): the client
			// watches again from the bookmark's version.
		case 2:
			_, _ = fmt.Fprint(w, eventJSON("DELETED", podJSON("default", "b", "18", "10.0.0.2")))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			hang(w, r)
		}
	})
	rec := &recorder{}
	c, err := NewClient(APIConfig{APIServer: s.srv.URL + "/prefix"}, "weft-test")
	require.NoError(t, err)
	t.Cleanup(c.Close)
	rf := NewReflector(c, ListWatch[Pod]{
		Path: CollectionPath("", "v1", "default", "pods"), FieldSelector: "spec.nodeName=node-a", LabelSelector: "app=a", Meta: (*Pod).Meta,
	}, zap.NewNop(), rec.handle)
	run(t, rf)
	want := [][]string{
		{"added default/a 9"},
		{"added default/b 11"},
		{"modified default/a 12"},
		{"deleted default/b 18"},
	}
	require.Eventually(t, func() bool { return len(rec.get()) == len(want) }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, want, rec.get())

	reqs := s.requests()
	require.GreaterOrEqual(t, len(reqs), 3)
	for _, r := range reqs {
		assert.Equal(t, "/prefix/api/v1/namespaces/default/pods", r.URL.Path)
		assert.Equal(t, "spec.nodeName=node-a", r.URL.Query().Get("fieldSelector"))
		assert.Equal(t, "app=a", r.URL.Query().Get("labelSelector"))
		assert.Equal(t, "application/json", r.Header.Get("Accept"))
		assert.Equal(t, "weft-test", r.Header.Get("User-Agent"))
		assert.Empty(t, r.Header.Get("Authorization"))
	}
	list, w1, w2 := reqs[0].URL.Query(), reqs[1].URL.Query(), reqs[2].URL.Query()
	assert.Empty(t, list.Get("watch"))
	assert.Equal(t, "0", list.Get("resourceVersion"), "first list may come from the watch cache")
	assert.Equal(t, "500", list.Get("limit"))
	assert.Equal(t, "true", w1.Get("watch"))
	assert.Equal(t, "true", w1.Get("allowWatchBookmarks"))
	assert.Equal(t, "10", w1.Get("resourceVersion"), "watch from the list's version")
	assert.NotEmpty(t, w1.Get("timeoutSeconds"))
	assert.Equal(t, "17", w2.Get("resourceVersion"), "watch again from the bookmark")
	assert.Equal(t, Stats{Lists: 1, Watches: 2}, rf.Stats())
}

// TestListPages: a list is read page by page with limit and continue, and
// applied as one batch; a continue token that expired (410) starts the
// list over, without lost or duplicated pods.
func TestListPages(t *testing.T) {
	s := newScript(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0:
			_, _ = fmt.Fprint(w, pageJSON("10", "page-2", podJSON("ns", "a", "5", "10.0.0.1"), podJSON("ns", "b", "6", "10.0.0.2")))
		case 1:
			w.WriteHeader(http.StatusGone)
			_, _ = fmt.Fprint(w, `{"kind":"Status","status":"Failure","message":"The provided continue parameter is too old","reason":"Expired","code":410}`)
		case 2:
			_, _ = fmt.Fprint(w, pageJSON("20", "page-2", podJSON("ns", "a", "5", "10.0.0.1"), podJSON("ns", "b", "6", "10.0.0.2")))
		case 3:
			_, _ = fmt.Fprint(w, pageJSON("20", "page-3", podJSON("ns", "c", "7", "10.0.0.3")))
		case 4:
			_, _ = fmt.Fprint(w, pageJSON("20", "", podJSON("ns", "d", "8", "10.0.0.4")))
		default:
			hang(w, r)
		}
	})
	rec := &recorder{}
	rf := podReflector(t, APIConfig{APIServer: s.srv.URL}, ListWatch[Pod]{}, rec.handle)
	rf.pageSize = 2
	run(t, rf)
	require.Eventually(t, func() bool { return len(s.requests()) >= 6 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, [][]string{{"added ns/a 5", "added ns/b 6", "added ns/c 7", "added ns/d 8"}}, rec.get())
	reqs := s.requests()
	for i, want := range []struct{ cont, rv string }{{"", "0"}, {"page-2", ""}, {"", "0"}, {"page-2", ""}, {"page-3", ""}} {
		q := reqs[i].URL.Query()
		assert.Equal(t, "2", q.Get("limit"), "request %d", i)
		assert.Equal(t, want.cont, q.Get("continue"), "request %d", i)
		assert.Equal(t, want.rv, q.Get("resourceVersion"), "request %d", i)
	}
	assert.Equal(t, "true", reqs[5].URL.Query().Get("watch"))
	assert.Equal(t, "20", reqs[5].URL.Query().Get("resourceVersion"), "watch from the list's version")
	assert.Equal(t, int64(1), rf.Stats().Lists)
}

// TestRelistOnGone: after a bookmark, a 410 (as an ERROR event or an HTTP
// status) lists again at once, after a watch that worked, and the handler
// gets exactly the difference: nothing lost, nothing twice.
func TestRelistOnGone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		watch func(w http.ResponseWriter)
	}{
		{"ERROR event", func(w http.ResponseWriter) { _, _ = fmt.Fprint(w, eventJSON("ERROR", goneStatus)) }},
		{"HTTP 410", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusGone)
			_, _ = fmt.Fprint(w, goneStatus)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
				switch n {
				case 0:
					_, _ = fmt.Fprint(w, listJSON("10", podJSON("ns", "a", "5", "10.0.0.1"), podJSON("ns", "b", "6", "10.0.0.2"), podJSON("ns", "c", "7", "10.0.0.3")))
				case 1:
					_, _ = fmt.Fprint(w, eventJSON("MODIFIED", podJSON("ns", "c", "12", "10.0.0.3"))+
						eventJSON("BOOKMARK", `{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"15"}}`))
				case 2:
					tc.watch(w)
				case 3:
					// b unchanged, c changed, a gone, d new.
					_, _ = fmt.Fprint(w, listJSON("40", podJSON("ns", "b", "6", "10.0.0.2"), podJSON("ns", "c", "33", "10.0.0.9"), podJSON("ns", "d", "39", "10.0.0.4")))
				default:
					hang(w, r)
				}
			})
			rec := &recorder{}
			// After a working watch, a relist must not wait for a backoff.
			rf := podReflector(t, APIConfig{APIServer: s.srv.URL}, ListWatch[Pod]{Backoff: backoff.Backoff{Min: time.Hour}}, rec.handle)
			run(t, rf)
			require.Eventually(t, func() bool { return len(s.requests()) >= 5 }, 10*time.Second, 5*time.Millisecond)
			assert.Equal(t, [][]string{
				{"added ns/a 5", "added ns/b 6", "added ns/c 7"},
				{"modified ns/c 12"},
				{"deleted ns/a 5", "modified ns/c 33", "added ns/d 39"},
			}, rec.get())
			reqs := s.requests()
			assert.Equal(t, "15", reqs[2].URL.Query().Get("resourceVersion"), "the watch resumes from the bookmark")
			assert.Equal(t, "/api/v1/pods", reqs[3].URL.Path)
			assert.Empty(t, reqs[3].URL.Query().Get("watch"), "a list follows the 410")
			assert.Empty(t, reqs[3].URL.Query().Get("resourceVersion"), "the relist asks for the latest state")
			assert.Equal(t, "40", reqs[4].URL.Query().Get("resourceVersion"))
			st := rf.Stats()
			assert.Equal(t, int64(2), st.Lists)
			assert.Equal(t, int64(1), st.Gone)
			assert.Zero(t, st.Failures, "a 410 is no failure")
		})
	}
}

// TestResumeAfterCut: a watch stream cut in the middle of an event (a
// proxy dropping the connection) resumes from the last complete event's
// resourceVersion without a list, and the half event is not applied.
func TestResumeAfterCut(t *testing.T) {
	s := newScript(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0:
			_, _ = fmt.Fprint(w, listJSON("10", podJSON("ns", "a", "5", "10.0.0.1")))
		case 1:
			w.WriteHeader(http.StatusOK)
			_, _ = fmt.Fprint(w, eventJSON("ADDED", podJSON("ns", "b", "11", "10.0.0.2")))
			full := eventJSON("MODIFIED", podJSON("ns", "a", "12", "10.0.0.3"))
			_, _ = fmt.Fprint(w, full[:len(full)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // cut the connection
		case 2:
			_, _ = fmt.Fprint(w, eventJSON("MODIFIED", podJSON("ns", "a", "12", "10.0.0.3")))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			hang(w, r)
		}
	})
	rec := &recorder{}
	rf := podReflector(t, APIConfig{APIServer: s.srv.URL}, ListWatch[Pod]{Backoff: backoff.Backoff{Min: 10 * time.Millisecond}}, rec.handle)
	run(t, rf)
	require.Eventually(t, func() bool { return len(rec.get()) == 3 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, [][]string{{"added ns/a 5"}, {"added ns/b 11"}, {"modified ns/a 12"}}, rec.get())
	reqs := s.requests()
	assert.Equal(t, "true", reqs[2].URL.Query().Get("watch"), "no list after a cut stream")
	assert.Equal(t, "11", reqs[2].URL.Query().Get("resourceVersion"), "resume from the last event applied")
	assert.Equal(t, int64(1), rf.Stats().Lists)
}

// TestNoSpin checks that watches which end at once, or a 410 straight
// after a list, wait for the backoff instead of hammering the server.
func TestNoSpin(t *testing.T) {
	gone := eventJSON("ERROR", `{"kind":"Status","status":"Failure","reason":"Expired","code":410}`)
	for _, tc := range []struct {
		name  string
		watch string
		list  bool // the request after the watch is a list
	}{
		{"empty watch", "", false},
		{"410 after list", gone, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
				switch n {
				case 0:
					_, _ = fmt.Fprint(w, listJSON("10"))
				case 1:
					_, _ = fmt.Fprint(w, tc.watch)
				case 2:
					if tc.list {
						_, _ = fmt.Fprint(w, listJSON("11"))
						return
					}
					hang(w, r)
				default:
					hang(w, r)
				}
			})
			rf := podReflector(t, APIConfig{APIServer: s.srv.URL}, ListWatch[Pod]{Backoff: backoff.Backoff{Min: 100 * time.Millisecond}}, func([]Event[Pod]) {})
			run(t, rf)
			require.Eventually(t, func() bool { return len(s.requests()) >= 3 }, 10*time.Second, 5*time.Millisecond)
			at := s.times()
			assert.GreaterOrEqual(t, at[2].Sub(at[1]), 50*time.Millisecond)
			assert.Equal(t, tc.list, s.requests()[2].URL.Query().Get("watch") == "")
		})
	}
}

// TestBackoffOnErrors: failed lists are retried after jittered, doubling,
// capped waits; each failure is counted and reported to OnError with the
// server's message.
func TestBackoffOnErrors(t *testing.T) {
	s := newScript(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
		switch {
		case n < 3:
			w.WriteHeader(http.StatusForbidden)
			_, _ = fmt.Fprint(w, `{"kind":"Status","status":"Failure","message":"pods is forbidden: User \"system:serviceaccount:obs:weft\" cannot list resource \"pods\"","reason":"Forbidden","code":403}`)
		case n == 3:
			_, _ = fmt.Fprint(w, listJSON("3"))
		default:
			hang(w, r)
		}
	})
	rec := &recorder{}
	var mu sync.Mutex
	var errs []string
	rf := podReflector(t, APIConfig{APIServer: s.srv.URL}, ListWatch[Pod]{
		Backoff: backoff.Backoff{Min: 40 * time.Millisecond, Max: 100 * time.Millisecond},
		OnError: func(err error) { mu.Lock(); errs = append(errs, err.Error()); mu.Unlock() },
	}, rec.handle)
	run(t, rf)
	require.Eventually(t, func() bool { return len(s.requests()) >= 5 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, [][]string{nil}, rec.get(), "one (empty) batch once the list succeeds")
	at := s.times()
	// Sleeps are in [b/2, b] for b = 40, 80, 100 (capped) ms.
	for i, least := range []time.Duration{20, 40, 50} {
		assert.GreaterOrEqual(t, at[i+1].Sub(at[i]), least*time.Millisecond, "gap after failure %d", i+1)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, errs, 3)
	assert.Contains(t, errs[0], `list: GET `+s.srv.URL+`/api/v1/pods: 403 Forbidden: pods is forbidden`)
	st := rf.Stats()
	assert.Equal(t, int64(1), st.Lists)
	assert.Equal(t, int64(3), st.Failures)
}

// TestWatchDecodeErrors: what ends a watch stream, and that the events
// before the end were applied.
func TestWatchDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		gone             bool
	}{
		{"server error", eventJSON("ERROR", `{"kind":"Status","status":"Failure","message":"boom","reason":"InternalError","code":500}`), "500 InternalError: boom", false},
		{"gone", eventJSON("ERROR", goneStatus), "410 Expired: too old resource version", true},
		{"unknown type", eventJSON("SURPRISE", podJSON("a", "b", "3", "")), `unknown event type "SURPRISE"`, false},
		{"no version", eventJSON("ADDED", `{"metadata":{"name":"x","namespace":"y"}}`), "ADDED event without resourceVersion", false},
		{"no name", eventJSON("MODIFIED", `{"metadata":{"namespace":"y","resourceVersion":"4"}}`), "MODIFIED event without name", false},
		{"bookmark without version", eventJSON("BOOKMARK", `{"metadata":{}}`), "BOOKMARK event without resourceVersion", false},
		{"truncated", `{"type":"ADDED","object":{"metadata":`, "decode", false},
		{"wrong shape", eventJSON("ADDED", `{"metadata":{"name":1}}`), "decode ADDED event", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			r := &Reflector[Pod]{objs: map[string]*Pod{}, lw: ListWatch[Pod]{Meta: (*Pod).Meta}, handler: rec.handle, rv: "1"}
			body := eventJSON("ADDED", podJSON("ns", "first", "2", "")) + tc.body
			progressed, err := r.consume(strings.NewReader(body))
			require.ErrorContains(t, err, tc.want)
			assert.Equal(t, tc.gone, isGone(err))
			assert.True(t, progressed)
			assert.Equal(t, [][]string{{"added ns/first 2"}}, rec.get())
			assert.Equal(t, "2", r.rv, "the version of the last event applied")
		})
	}
}

// TestDeleteUnknownMovesVersion: a DELETED event of an object never seen
// is no event for the handler, but moves the resourceVersion.
func TestDeleteUnknownMovesVersion(t *testing.T) {
	rec := &recorder{}
	r := &Reflector[Pod]{objs: map[string]*Pod{}, lw: ListWatch[Pod]{Meta: (*Pod).Meta}, handler: rec.handle, rv: "1"}
	_, err := r.consume(strings.NewReader(eventJSON("DELETED", podJSON("ns", "ghost", "7", ""))))
	require.NoError(t, err)
	assert.Empty(t, rec.get())
	assert.Equal(t, "7", r.rv)
}

func TestControllerAndDecode(t *testing.T) {
	var p Pod
	require.NoError(t, json.Unmarshal([]byte(`{"metadata":{"name":"p","namespace":"n","ownerReferences":[
		{"kind":"ConfigMap","name":"cm"},{"kind":"ReplicaSet","name":"rs","controller":true}]},
		"spec":{"initContainers":[{"name":"init","image":"i"}]}}`), &p))
	require.NotNil(t, p.Metadata.Controller())
	assert.Equal(t, "rs", p.Metadata.Controller().Name)
	assert.Equal(t, "n/p", p.Meta().key())
	assert.Equal(t, "init", p.Spec.InitContainers[0].Name)
	p.Metadata.OwnerReferences = p.Metadata.OwnerReferences[:1]
	assert.Nil(t, p.Metadata.Controller())
}

// BenchmarkConsume decodes a watch stream of MODIFIED events of realistic
// pods (managed fields, resources and volumes the decoder skips), the
// steady-state work of a node agent while its pods churn.
func BenchmarkConsume(b *testing.B) {
	var stream strings.Builder
	for i := range 1000 {
		stream.WriteString(eventJSON("MODIFIED", podJSON("default", fmt.Sprintf("p-%d", i%110), fmt.Sprint(i+2), "10.0.0.1")))
	}
	body := stream.String()
	r := &Reflector[Pod]{objs: map[string]*Pod{}, lw: ListWatch[Pod]{Meta: (*Pod).Meta}, handler: func([]Event[Pod]) {}}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := r.consume(strings.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

// BenchmarkList lists a full node (110 pods) through the HTTP client.
func BenchmarkList(b *testing.B) {
	pods := make([]string, 110)
	for i := range pods {
		pods[i] = podJSON("default", fmt.Sprintf("p-%d", i), fmt.Sprint(i+2), "10.0.0.1")
	}
	body := listJSON("200", pods...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprint(w, body) }))
	defer srv.Close()
	r := podReflector(b, APIConfig{APIServer: srv.URL}, ListWatch[Pod]{}, func([]Event[Pod]) {})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r.objs, r.rv = map[string]*Pod{}, ""
		if err := r.list(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
