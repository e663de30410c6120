package podscrapereceiver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// fakeAPI is a Kubernetes API server for pods only: list, watch (also the
// streaming watch-list client-go uses), with the spec.nodeName field
// selector honoured so that the test sees the receiver asking for it. A
// watch from a resourceVersion replays the changes after it; one older
// than Expire's cut gets a 410 Gone ERROR event, as a real server does.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	rv        int
	pods      map[string]*corev1.Pod
	watchers  map[chan event]watchFilter
	selectors []string
	closed    chan struct{}
	// history holds every change, for watches that start from a version.
	history []change
	// expired is the oldest resourceVersion a watch may start from.
	expired int
	// watches counts the watch requests served.
	watches int
}

type watchFilter struct{ node, namespace string }

func (w watchFilter) match(p *corev1.Pod) bool {
	return (w.node == "" || w.node == p.Spec.NodeName) && (w.namespace == "" || w.namespace == p.Namespace)
}

type change struct {
	rv  int
	pod *corev1.Pod
	ev  event
}

type event struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, pods: map[string]*corev1.Pod{}, watchers: map[chan event]watchFilter{}, closed: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.closed)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fakeAPI) URL() string { return f.srv.URL }

// Selectors returns the field selectors the clients sent.
func (f *fakeAPI) Selectors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.selectors...)
}

func nodeFilter(fieldSelector string) string {
	for _, part := range strings.Split(fieldSelector, ",") {
		if v, ok := strings.CutPrefix(part, "spec.nodeName="); ok {
			return v
		}
	}
	return ""
}

func (f *fakeAPI) encode(p *corev1.Pod) json.RawMessage {
	p = p.DeepCopy()
	p.Kind, p.APIVersion = "Pod", "v1"
	b, err := json.Marshal(p)
	if err != nil {
		f.t.Errorf("encode pod: %v", err)
	}
	return b
}

// Expire makes every resourceVersion up to now too old to watch from, as
// an API server's compaction does; open watches get a 410 ERROR event.
func (f *fakeAPI) Expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expired = f.rv
	f.history = nil
	gone := event{Type: "ERROR", Object: json.RawMessage(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version","reason":"Expired","code":410}`)}
	for ch := range f.watchers {
		ch <- gone
	}
}

// Watches returns how many watch requests were served.
func (f *fakeAPI) Watches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watches
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	filter := watchFilter{}
	if ns, ok := strings.CutPrefix(r.URL.Path, "/api/v1/namespaces/"); ok && strings.HasSuffix(ns, "/pods") {
		filter.namespace = strings.TrimSuffix(ns, "/pods")
	} else if r.URL.Path != "/api/v1/pods" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	node := nodeFilter(q.Get("fieldSelector"))
	filter.node = node
	f.mu.Lock()
	f.selectors = append(f.selectors, q.Get("fieldSelector"))
	if q.Get("watch") != "true" && q.Get("watch") != "1" {
		list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		list.ResourceVersion = strconv.Itoa(f.rv)
		for _, name := range f.sortedNames() {
			p := f.pods[name]
			if filter.match(p) {
				list.Items = append(list.Items, *p)
			}
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&list)
		return
	}
	f.watches++
	ch := make(chan event, 64)
	var initial []event
	if q.Get("sendInitialEvents") == "true" {
		for _, name := range f.sortedNames() {
			p := f.pods[name]
			if filter.match(p) {
				initial = append(initial, event{Type: "ADDED", Object: f.encode(p)})
			}
		}
		bm := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			ResourceVersion: strconv.Itoa(f.rv),
			Annotations:     map[string]string{metav1.InitialEventsAnnotationKey: "true"},
		}}
		initial = append(initial, event{Type: "BOOKMARK", Object: f.encode(bm)})
	} else if from, err := strconv.Atoi(q.Get("resourceVersion")); err == nil && from > 0 {
		if from < f.expired {
			initial = append(initial, event{Type: "ERROR", Object: json.RawMessage(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version","reason":"Expired","code":410}`)})
		}
		for _, c := range f.history {
			if c.rv > from && filter.match(c.pod) {
				initial = append(initial, c.ev)
			}
		}
	}
	f.watchers[ch] = filter
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher := w.(http.Flusher)
	for _, e := range initial {
		_ = enc.Encode(e)
	}
	flusher.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-f.closed:
			return
		case e := <-ch:
			if err := enc.Encode(e); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}

func (f *fakeAPI) sortedNames() []string {
	names := make([]string, 0, len(f.pods))
	for n := range f.pods {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (f *fakeAPI) emit(typ string, p *corev1.Pod) {
	f.rv++
	p.ResourceVersion = strconv.Itoa(f.rv)
	e := event{Type: typ, Object: f.encode(p)}
	f.history = append(f.history, change{rv: f.rv, pod: p, ev: e})
	for ch, filter := range f.watchers {
		if filter.match(p) {
			select {
			case ch <- e:
			default:
				f.t.Errorf("fake API watcher is not reading")
			}
		}
	}
}

// Apply adds or changes a pod.
func (f *fakeAPI) Apply(p *corev1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p = p.DeepCopy()
	key := p.Namespace + "/" + p.Name
	typ := "ADDED"
	if _, ok := f.pods[key]; ok {
		typ = "MODIFIED"
	}
	if p.UID == "" {
		p.UID = types.UID("uid-" + p.Name)
	}
	f.pods[key] = p
	f.emit(typ, p)
}

// Delete removes a pod.
func (f *fakeAPI) Delete(namespace, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := namespace + "/" + name
	p, ok := f.pods[key]
	if !ok {
		f.t.Errorf("no pod %s", key)
		return
	}
	delete(f.pods, key)
	f.emit("DELETED", p)
}

// pod builds a running pod.
func pod(namespace, name, node, ip string, labels, annotations map[string]string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels, Annotations: annotations},
		Spec:       corev1.PodSpec{NodeName: node, Containers: containers},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
}

func container(name string, ports ...corev1.ContainerPort) corev1.Container {
	return corev1.Container{Name: name, Ports: ports}
}

func port(name string, n int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP}
}

var _ = fmt.Sprintf
