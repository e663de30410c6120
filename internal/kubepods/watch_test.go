package kubepods

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	return fmt.Sprintf(`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":%q},"items":[%s]}`, rv, strings.Join(pods, ","))
}

func eventJSON(typ, obj string) string { return fmt.Sprintf(`{"type":%q,"object":%s}`+"\n", typ, obj) }

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

// hang keeps a watch open until the client goes away.
func hang(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// recorder collects the handler's batches.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
}

func (r *recorder) handle(events []Event) {
	var b []string
	for _, e := range events {
		b = append(b, e.Type.String()+" "+e.Pod.Key()+" "+e.Pod.Metadata.ResourceVersion)
	}
	sort.Strings(b)
	r.mu.Lock()
	r.batches = append(r.batches, b)
	r.mu.Unlock()
}

func (r *recorder) get() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.batches...)
}

// run starts w and stops it at the end of the test.
func run(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; w.Close() })
}

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
	wt, err := New(Config{APIServer: s.srv.URL + "/prefix", Namespace: "default", FieldSelector: "spec.nodeName=node-a", LabelSelector: "app=a"}, zaptest.NewLogger(t), rec.handle)
	require.NoError(t, err)
	run(t, wt)
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
		assert.Empty(t, r.Header.Get("Authorization"))
	}
	list, w1, w2 := reqs[0].URL.Query(), reqs[1].URL.Query(), reqs[2].URL.Query()
	assert.Empty(t, list.Get("watch"))
	assert.Equal(t, "0", list.Get("resourceVersion"), "first list may come from the watch cache")
	assert.Equal(t, "true", w1.Get("watch"))
	assert.Equal(t, "true", w1.Get("allowWatchBookmarks"))
	assert.Equal(t, "10", w1.Get("resourceVersion"), "watch from the list's version")
	assert.NotEmpty(t, w1.Get("timeoutSeconds"))
	assert.Equal(t, "17", w2.Get("resourceVersion"), "watch again from the bookmark")
}

func TestRelistOnGone(t *testing.T) {
	gone := `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 10 (40)","reason":"Expired","code":410}`
	for _, tc := range []struct {
		name  string
		watch func(w http.ResponseWriter)
	}{
		{"ERROR event", func(w http.ResponseWriter) { _, _ = fmt.Fprint(w, eventJSON("ERROR", gone)) }},
		{"HTTP 410", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusGone)
			_, _ = fmt.Fprint(w, gone)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
				switch n {
				case 0:
					_, _ = fmt.Fprint(w, listJSON("10", podJSON("ns", "a", "5", "10.0.0.1"), podJSON("ns", "b", "6", "10.0.0.2"), podJSON("ns", "c", "7", "10.0.0.3")))
				case 1:
					_, _ = fmt.Fprint(w, eventJSON("MODIFIED", podJSON("ns", "c", "12", "10.0.0.3")))
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
			wt, err := New(Config{APIServer: s.srv.URL}, zaptest.NewLogger(t), rec.handle)
			require.NoError(t, err)
			wt.minBackoff = time.Hour // after a working watch, a relist must not wait for a backoff
			run(t, wt)
			require.Eventually(t, func() bool { return len(s.requests()) >= 5 }, 10*time.Second, 5*time.Millisecond)
			assert.Equal(t, [][]string{
				{"added ns/a 5", "added ns/b 6", "added ns/c 7"},
				{"modified ns/c 12"},
				{"deleted ns/a 5", "modified ns/c 33", "added ns/d 39"},
			}, sortBatches(rec.get()))
			reqs := s.requests()
			assert.Equal(t, "12", reqs[2].URL.Query().Get("resourceVersion"))
			assert.Equal(t, "/api/v1/pods", reqs[3].URL.Path)
			assert.Empty(t, reqs[3].URL.Query().Get("watch"), "a list follows the 410")
			assert.Empty(t, reqs[3].URL.Query().Get("resourceVersion"), "the relist asks for the latest state")
			assert.Equal(t, "40", reqs[4].URL.Query().Get("resourceVersion"))
		})
	}
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
			wt, err := New(Config{APIServer: s.srv.URL}, zaptest.NewLogger(t), func([]Event) {})
			require.NoError(t, err)
			wt.minBackoff = 100 * time.Millisecond
			run(t, wt)
			require.Eventually(t, func() bool { return len(s.requests()) >= 3 }, 10*time.Second, 5*time.Millisecond)
			s.mu.Lock()
			gap := s.at[2].Sub(s.at[1])
			s.mu.Unlock()
			assert.GreaterOrEqual(t, gap, 50*time.Millisecond)
			assert.Equal(t, tc.list, s.requests()[2].URL.Query().Get("watch") == "")
		})
	}
}

func sortBatches(b [][]string) [][]string {
	for _, x := range b {
		sort.Slice(x, func(i, j int) bool { return strings.Fields(x[i])[1] < strings.Fields(x[j])[1] })
	}
	return b
}

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
	wt, err := New(Config{APIServer: s.srv.URL}, zaptest.NewLogger(t), rec.handle)
	require.NoError(t, err)
	wt.minBackoff, wt.maxBackoff = 40*time.Millisecond, 100*time.Millisecond
	run(t, wt)
	require.Eventually(t, func() bool { return len(s.requests()) >= 5 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, [][]string{nil}, rec.get(), "one (empty) batch once the list succeeds")
	s.mu.Lock()
	at := append([]time.Time(nil), s.at...)
	s.mu.Unlock()
	// Sleeps are in [b/2, b] for b = 40, 80, 100 (capped) ms.
	for i, least := range []time.Duration{20, 40, 50} {
		assert.GreaterOrEqual(t, at[i+1].Sub(at[i]), least*time.Millisecond, "gap after failure %d", i+1)
	}
}

func TestInClusterTokenRotation(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/token", "token-1\n")
	s := newScript(t, true, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0:
			_, _ = fmt.Fprint(w, listJSON("1"))
		case 1:
			// The token rotates while the watch is open; the server
			// then ends the watch.
			writeFile(t, dir+"/token", "token-2\n")
		default:
			hang(w, r)
		}
	})
	writeFile(t, dir+"/ca.crt", certPEM(t, s.srv))
	u, err := url.Parse(s.srv.URL)
	require.NoError(t, err)
	t.Setenv("KUBERNETES_SERVICE_HOST", u.Hostname())
	t.Setenv("KUBERNETES_SERVICE_PORT", u.Port())
	wt, err := New(Config{ServiceAccountDir: dir}, zaptest.NewLogger(t), func([]Event) {})
	require.NoError(t, err)
	run(t, wt)
	require.Eventually(t, func() bool { return len(s.requests()) >= 3 }, 10*time.Second, 5*time.Millisecond)
	reqs := s.requests()
	assert.Equal(t, "Bearer token-1", reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "Bearer token-1", reqs[1].Header.Get("Authorization"))
	assert.Equal(t, "Bearer token-2", reqs[2].Header.Get("Authorization"), "the rotated token is read for the next request")
}

func TestConnectErrors(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no cluster", Config{}, "not in a cluster: KUBERNETES_SERVICE_HOST"},
		{"bad URL", Config{APIServer: "kubernetes.default.svc:443"}, "want http(s)://host[:port]"},
		{"missing kubeconfig", Config{KubeConfigFile: "/nonexistent/kubeconfig"}, "read kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, zaptest.NewLogger(t), func([]Event) {})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("no token", func(t *testing.T) {
		t.Setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
		t.Setenv("KUBERNETES_SERVICE_PORT", "6443")
		_, err := New(Config{ServiceAccountDir: t.TempDir()}, zaptest.NewLogger(t), func([]Event) {})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "in-cluster service account token")
	})
}

func TestWatchDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"server error", eventJSON("ERROR", `{"kind":"Status","status":"Failure","message":"boom","reason":"InternalError","code":500}`), "server error 500 InternalError: boom"},
		{"unknown type", eventJSON("SURPRISE", podJSON("a", "b", "3", "")), `unknown event type "SURPRISE"`},
		{"no version", eventJSON("ADDED", `{"metadata":{"name":"x","namespace":"y"}}`), "without resourceVersion"},
		{"truncated", `{"type":"ADDED","object":{"metadata":`, "decode"},
		{"wrong shape", eventJSON("ADDED", `{"metadata":{"name":1}}`), "decode ADDED event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &Watcher{pods: map[string]*Pod{}, handler: func([]Event) {}}
			_, err := w.consume(strings.NewReader(tc.body))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestControllerAndDecode(t *testing.T) {
	var p Pod
	require.NoError(t, json.Unmarshal([]byte(`{"metadata":{"name":"p","namespace":"n","ownerReferences":[
		{"kind":"ConfigMap","name":"cm"},{"kind":"ReplicaSet","name":"rs","controller":true}]},
		"spec":{"initContainers":[{"name":"init","image":"i"}]}}`), &p))
	require.NotNil(t, p.Metadata.Controller())
	assert.Equal(t, "rs", p.Metadata.Controller().Name)
	assert.Equal(t, "n/p", p.Key())
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
	w := &Watcher{pods: map[string]*Pod{}, handler: func([]Event) {}}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := w.consume(strings.NewReader(body)); err != nil {
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
	w, err := New(Config{APIServer: srv.URL}, zap.NewNop(), func([]Event) {})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		w.pods, w.rv = map[string]*Pod{}, ""
		if err := w.list(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
