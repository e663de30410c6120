package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/backoff"
)

// fakeKubeAPI is a small Kubernetes API server for PrometheusRule objects:
// list and a streaming watch (ADDED/MODIFIED/DELETED) per namespace or
// over all namespaces, equality label selectors, a resourceVersion per
// change, and expiry of old resourceVersions (410). The reflector's own
// behaviour (pages, bookmarks, 410 as an ERROR event, backoff) is tested
// in internal/kube; this fake drives the adapter.
type fakeKubeAPI struct {
	mu      sync.Mutex
	changed *sync.Cond // broadcast on every event and on endWatches
	rv      int
	objects map[string]map[string]any // "ns/name" → object
	events  []fakeEvent
	// goneBefore: a watch from an older resourceVersion gets 410.
	goneBefore int
	// fail: the next fail list requests answer failStatus.
	fail       int
	failStatus int
	epoch      int  // endWatches bumps it; open watches end
	down       bool // every request answers 503
	requests   []fakeRequest
}

type fakeEvent struct {
	rv     int
	typ    string
	ns     string
	object map[string]any
}

type fakeRequest struct {
	at    time.Time
	path  string
	query map[string]string
	auth  string
}

func newFakeKubeAPI() *fakeKubeAPI {
	f := &fakeKubeAPI{rv: 100, objects: map[string]map[string]any{}}
	f.changed = sync.NewCond(&f.mu)
	return f
}

const promRulesPath = "/apis/monitoring.coreos.com/v1/prometheusrules"

// namespaceOf parses /apis/monitoring.coreos.com/v1[/namespaces/<ns>]/prometheusrules;
// all is true for the cluster-wide path.
func namespaceOf(path string) (ns string, all, ok bool) {
	if path == promRulesPath {
		return "", true, true
	}
	const pre, post = "/apis/monitoring.coreos.com/v1/namespaces/", "/prometheusrules"
	if !strings.HasPrefix(path, pre) || !strings.HasSuffix(path, post) || len(path) <= len(pre)+len(post) {
		return "", false, false
	}
	return path[len(pre) : len(path)-len(post)], false, true
}

// matches applies an equality label selector ("a=b,c=d").
func matches(obj map[string]any, selector string) bool {
	if selector == "" {
		return true
	}
	lbls, _ := obj["metadata"].(map[string]any)["labels"].(map[string]any)
	for _, term := range strings.Split(selector, ",") {
		k, v, _ := strings.Cut(term, "=")
		if lbls[k] != v {
			return false
		}
	}
	return true
}

func (f *fakeKubeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := map[string]string{}
	for k := range r.URL.Query() {
		q[k] = r.URL.Query().Get(k)
	}
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{at: time.Now(), path: r.URL.Path, query: q, auth: r.Header.Get("Authorization")})
	if f.down {
		f.mu.Unlock()
		http.Error(w, `{"kind":"Status","message":"down"}`, http.StatusServiceUnavailable)
		return
	}
	ns, all, ok := namespaceOf(r.URL.Path)
	if !ok {
		f.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	if q["watch"] == "true" {
		f.serveWatch(w, r, ns, all, q) // unlocks
		return
	}
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		w.WriteHeader(f.failStatus)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "status": "Failure", "message": "injected failure", "code": f.failStatus})
		return
	}
	items := []any{}
	keys := make([]string, 0, len(f.objects))
	for k := range f.objects {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		o := f.objects[k]
		if (all || strings.HasPrefix(k, ns+"/")) && matches(o, q["labelSelector"]) {
			items = append(items, o)
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRuleList",
		"metadata": map[string]any{"resourceVersion": strconv.Itoa(f.rv)}, "items": items,
	})
}

// serveWatch streams the events after the request's resourceVersion, then
// new ones as they come, until the client leaves or endWatches. Called
// with f.mu held; releases it.
func (f *fakeKubeAPI) serveWatch(w http.ResponseWriter, r *http.Request, ns string, all bool, q map[string]string) {
	from, err := strconv.Atoi(q["resourceVersion"])
	if err != nil {
		f.mu.Unlock()
		http.Error(w, "bad resourceVersion", http.StatusBadRequest)
		return
	}
	if from < f.goneBefore {
		f.mu.Unlock()
		w.WriteHeader(http.StatusGone)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired",
			"message": fmt.Sprintf("too old resource version: %d", from), "code": 410})
		return
	}
	epoch := f.epoch
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	stop := context.AfterFunc(r.Context(), func() {
		f.mu.Lock()
		f.changed.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	sent := from
	for r.Context().Err() == nil {
		var out []fakeEvent
		for _, ev := range f.events {
			if ev.rv > sent && (all || ev.ns == ns) && matches(ev.object, q["labelSelector"]) {
				out = append(out, ev)
			}
		}
		if len(out) == 0 {
			if f.epoch != epoch {
				break // ended, after the pending events went out
			}
			f.changed.Wait()
			continue
		}
		sent = out[len(out)-1].rv
		f.mu.Unlock()
		enc := json.NewEncoder(w)
		for _, ev := range out {
			_ = enc.Encode(map[string]any{"type": ev.typ, "object": ev.object})
		}
		w.(http.Flusher).Flush()
		f.mu.Lock()
	}
	f.mu.Unlock()
}

// apply records a change as an event (and in the objects, unless silent:
// a change whose event a watch missed, seen only by a new list).
func (f *fakeKubeAPI) apply(typ string, obj map[string]any, silent bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rv++
	meta := obj["metadata"].(map[string]any)
	meta["resourceVersion"] = strconv.Itoa(f.rv)
	key := meta["namespace"].(string) + "/" + meta["name"].(string)
	if typ == "DELETED" {
		delete(f.objects, key)
	} else {
		f.objects[key] = obj
	}
	if !silent {
		f.events = append(f.events, fakeEvent{rv: f.rv, typ: typ, ns: meta["namespace"].(string), object: obj})
	}
	f.changed.Broadcast()
}

// expire makes every resourceVersion up to now too old, and ends the
// open watches (so the client comes back with an expired one).
func (f *fakeKubeAPI) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rv++
	f.goneBefore = f.rv
	f.epoch++
	f.changed.Broadcast()
}

// endWatches ends the open watches as a server-side timeout does.
func (f *fakeKubeAPI) endWatches() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
	f.changed.Broadcast()
}

func (f *fakeKubeAPI) requestLog() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func promRuleObject(ns, name string, lbls map[string]any, rules ...map[string]any) map[string]any {
	rs := make([]any, len(rules))
	for i, r := range rules {
		rs[i] = r
	}
	return map[string]any{
		"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
		"metadata": map[string]any{
			"name": name, "namespace": ns, "uid": "u-" + name, "generation": 1,
			"creationTimestamp": "2026-01-01T00:00:00Z", "labels": lbls,
			"managedFields": []any{map[string]any{"manager": "kubectl"}},
		},
		"spec": map[string]any{"groups": []any{map[string]any{"name": ns + "." + name, "rules": rs}}},
	}
}

func alertRule(name, expr string) map[string]any {
	return map[string]any{"alert": name, "expr": expr, "for": "1m"}
}

var teamA = map[string]any{"team": "a"}

// startKubeEngine starts weft_rules on a store with the Kubernetes
// source on the fake API and fast backoff.
func startKubeEngine(t *testing.T, api *fakeKubeAPI, set Settings, kc KubernetesConfig, ruleFiles ...string) *Engine {
	t.Helper()
	srv := httptest.NewServer(api)
	st := newTestStore(t, "")
	cfg := testConfig()
	cfg.RuleFiles = ruleFiles
	cfg.ReloadInterval = 0 // the watch alone reloads
	kc.Enabled, kc.APIServer = true, srv.URL
	cfg.Kubernetes = kc
	// Stop the engine before the server: Close waits for open watches
	// (cleanups run last first).
	t.Cleanup(srv.Close)
	return startEngine(t, st, cfg, set, func(e *Engine) {
		e.kubeBackoff = backoff.Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	})
}

// eventually waits until the status satisfies cond.
func eventually(t *testing.T, e *Engine, what string, cond func(Status) bool) Status {
	t.Helper()
	var s Status
	require.Eventually(t, func() bool {
		s = e.Status()
		return cond(s)
	}, 10*time.Second, 5*time.Millisecond, "%s; last status %+v", what, s)
	return s
}

// TestKubernetesWatch is the PrometheusRule adapter over internal/kube's
// reflector, driven through the fake API: the first list (namespace path,
// label selector, token_file), watch events of every kind becoming rule
// sources, invalid objects (reported by namespace/name, the others still
// load, a broken object's last valid version runs on), and a 410 Gone
// whose relist applies changes no event carried; the reflector's counts
// reach Status and the self-metrics.
func TestKubernetesWatch(t *testing.T) {
	api := newFakeKubeAPI()
	api.apply("ADDED", promRuleObject("shop", "errors", teamA, alertRule("E", "up == 0")), false)
	api.apply("ADDED", promRuleObject("shop", "teamb", map[string]any{"team": "b"}, alertRule("B", "up == 0")), false)
	api.apply("ADDED", promRuleObject("other", "x", teamA, alertRule("X", "up == 0")), false)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	dir := t.TempDir()
	rf := writeFile(t, dir, "r.yaml", twoRules)

	var results reloadResults
	kc := KubernetesConfig{Namespaces: []string{"shop"}, LabelSelector: "team=a"}
	kc.TokenFile = tokenFile
	e := startKubeEngine(t, api, Settings{OnReload: results.record}, kc, dir)
	s := e.Status()
	require.True(t, s.LastReloadSuccess, s.LastError)
	assert.Equal(t, []string{rf, "kubernetes:shop/errors"}, s.Files, "selector and namespace applied")
	assert.Equal(t, 3, s.Rules)
	require.Eventually(t, func() bool {
		r := api.requestLog()
		return len(r) >= 2 && r[1].query["watch"] == "true"
	}, 10*time.Second, 5*time.Millisecond)
	for _, r := range api.requestLog()[:2] {
		assert.Equal(t, "/apis/monitoring.coreos.com/v1/namespaces/shop/prometheusrules", r.path)
		assert.Equal(t, "team=a", r.query["labelSelector"])
		assert.Equal(t, "Bearer s3cret", r.auth)
	}

	// ADDED and MODIFIED: picked up without any poll.
	api.apply("ADDED", promRuleObject("shop", "latency", teamA, alertRule("L", "up > 1")), false)
	eventually(t, e, "ADDED", func(s Status) bool { return s.Rules == 4 })
	api.apply("MODIFIED", promRuleObject("shop", "latency", teamA, alertRule("L", "up > 1"), alertRule("L2", "up > 2")), false)
	s = eventually(t, e, "MODIFIED", func(s Status) bool { return s.Rules == 5 })
	assert.Equal(t, []string{rf, "kubernetes:shop/errors", "kubernetes:shop/latency"}, s.Files)
	// Another team's object and another namespace never show.
	api.apply("MODIFIED", promRuleObject("shop", "teamb", map[string]any{"team": "b"}, alertRule("B", "up == 0"), alertRule("B2", "up == 0")), false)
	api.apply("ADDED", promRuleObject("other", "y", teamA, alertRule("Y", "up == 0")), false)

	// An invalid new object: reported with namespace/name, the rest runs.
	api.apply("ADDED", promRuleObject("shop", "bad", teamA, alertRule("Bad", "rate(up[5m]")), false)
	s = eventually(t, e, "invalid object reported", func(s Status) bool { return len(s.Rejected) == 1 })
	assert.False(t, s.LastReloadSuccess)
	assert.Contains(t, s.Rejected[0], "kubernetes:shop/bad rejected (not loaded)")
	assert.Contains(t, s.LastError, "kubernetes:shop/bad")
	assert.Equal(t, 5, s.Rules)
	assert.NotContains(t, s.Files, "kubernetes:shop/bad")

	// A valid object turning invalid keeps its last valid version; other
	// objects still change meanwhile.
	api.apply("MODIFIED", promRuleObject("shop", "latency", teamA, alertRule("L", "up >")), false)
	s = eventually(t, e, "broken object reported", func(s Status) bool { return len(s.Rejected) == 2 })
	assert.Contains(t, strings.Join(s.Rejected, "\n"), "kubernetes:shop/latency rejected (its last valid version keeps running)")
	assert.Equal(t, 5, s.Rules)
	assert.Equal(t, "partial", s.State)
	assert.False(t, s.LastReloadSuccess)
	api.apply("ADDED", promRuleObject("shop", "new", teamA, alertRule("N", "up < 1")), false)
	s = eventually(t, e, "valid object added beside invalid ones", func(s Status) bool { return s.Rules == 6 })
	assert.Len(t, s.Rejected, 2)

	// DELETED and fixed: clean again.
	api.apply("DELETED", promRuleObject("shop", "bad", teamA), false)
	api.apply("MODIFIED", promRuleObject("shop", "latency", teamA, alertRule("L", "up > 1")), false)
	s = eventually(t, e, "fixed", func(s Status) bool { return s.LastReloadSuccess && s.Rules == 5 })
	assert.Empty(t, s.Rejected)
	assert.Empty(t, s.LastError)
	assert.Equal(t, "applied", s.State)

	// 410 Gone: the relist's difference reaches the rule set, here a
	// deletion and an addition no watch event carried.
	api.apply("DELETED", promRuleObject("shop", "new", teamA), true)
	api.apply("ADDED", promRuleObject("shop", "silent", teamA, alertRule("S", "up < 1"), alertRule("S2", "up < 2")), true)
	api.expire()
	s = eventually(t, e, "relist after 410", func(s Status) bool { return s.KubernetesGone == 1 && s.Rules == 6 })
	assert.Equal(t, []string{rf, "kubernetes:shop/errors", "kubernetes:shop/latency", "kubernetes:shop/silent"}, s.Files)
	assert.Equal(t, int64(2), s.KubernetesLists)
	assert.Empty(t, s.KubernetesError)
	st := e.Stats()
	require.True(t, st.Kubernetes)
	assert.Equal(t, int64(2), st.KubernetesRequests.Lists)
	assert.Equal(t, int64(1), st.KubernetesRequests.Gone)
	assert.GreaterOrEqual(t, st.KubernetesRequests.Watches, int64(2))
	assert.Zero(t, st.KubernetesRequests.Failures)
	byResult := results.byResult()
	assert.Positive(t, byResult["partial"], "reloads with invalid objects are partial")
	assert.Zero(t, byResult["failure"])

	// After the relist, events flow again.
	api.apply("DELETED", promRuleObject("shop", "errors", teamA), false)
	eventually(t, e, "event after relist", func(s Status) bool { return s.Rules == 5 })
}

// TestKubernetesFirstListFails: an API server that fails the first lists.
// The file rules run meanwhile, the failure is reported (status and
// failed count), the cluster-wide path is retried, and the first good
// list loads the objects.
func TestKubernetesFirstListFails(t *testing.T) {
	api := newFakeKubeAPI()
	api.apply("ADDED", promRuleObject("shop", "errors", teamA, alertRule("E", "up == 0")), false)
	api.fail, api.failStatus = 3, http.StatusInternalServerError
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", twoRules)

	e := startKubeEngine(t, api, Settings{}, KubernetesConfig{}, dir)
	s := e.Status()
	assert.False(t, s.LastReloadSuccess)
	assert.Equal(t, 2, s.Rules, "the files run while the API fails")
	assert.Contains(t, s.LastError, promRulesPath+": 500 Internal Server Error: injected failure")
	assert.Contains(t, s.KubernetesError, "500 Internal Server Error")

	s = eventually(t, e, "loaded after the failures", func(s Status) bool { return s.LastReloadSuccess && s.Rules == 3 })
	assert.Empty(t, s.KubernetesError)
	lists := 0
	for _, r := range api.requestLog() {
		if r.query["watch"] == "" {
			assert.Equal(t, promRulesPath, r.path, "no namespaces: the cluster-wide path")
			lists++
		}
	}
	assert.Equal(t, 4, lists, "3 failures, 1 success")
	_, st := e.kube.health()
	assert.Equal(t, int64(3), st.Failures)
	assert.Equal(t, int64(1), st.Lists)
}

// TestKubernetesWatchFailureKeepsObjects: a watch that fails (HTTP 503)
// keeps the known objects and is retried; changes then arrive.
func TestKubernetesWatchFailureKeepsObjects(t *testing.T) {
	api := newFakeKubeAPI()
	api.apply("ADDED", promRuleObject("shop", "errors", teamA, alertRule("E", "up == 0")), false)
	e := startKubeEngine(t, api, Settings{}, KubernetesConfig{Namespaces: []string{"shop"}})
	require.Equal(t, 1, e.Status().Rules)

	// Every request fails for a while: watches and lists.
	api.mu.Lock()
	api.down = true
	api.mu.Unlock()
	api.endWatches()
	s := eventually(t, e, "watch failure reported", func(s Status) bool { return strings.Contains(s.KubernetesError, "503 Service Unavailable") })
	assert.Equal(t, 1, s.Rules, "the known objects stay")

	api.mu.Lock()
	api.down = false
	api.mu.Unlock()
	api.apply("ADDED", promRuleObject("shop", "more", teamA, alertRule("M", "up == 0")), false)
	s = eventually(t, e, "recovered", func(s Status) bool { return s.Rules == 2 && s.KubernetesError == "" })
	assert.True(t, s.LastReloadSuccess)
}
