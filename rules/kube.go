package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/backoff"
	"github.com/weftobs/weft/internal/kube"
)

// kubeSourcePrefix marks rule sources read from the Kubernetes API.
const kubeSourcePrefix = "kubernetes:"

// kubeFirstListWait bounds how long Start waits for the first lists.
const kubeFirstListWait = 30 * time.Second

// promRule is a PrometheusRule as the rule loader reads it: the object's
// JSON, kept whole, and its metadata.
type promRule struct {
	meta kube.ObjectMeta
	raw  []byte
}

func (p *promRule) UnmarshalJSON(b []byte) error {
	var o struct {
		Metadata kube.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	p.meta, p.raw = o.Metadata, bytes.Clone(b)
	return nil
}

func (p *promRule) metadata() *kube.ObjectMeta { return &p.meta }

// sourceName is the object's rule source name,
// "kubernetes:<namespace>/<name>".
func (p *promRule) sourceName() string {
	return kubeSourcePrefix + p.meta.Namespace + "/" + p.meta.Name
}

// kubeWatcher is the PrometheusRule source: one internal/kube reflector
// per namespace (or one for all namespaces) over one client, whose events
// it keeps as rule sources. Every change is signalled on changed
// (coalesced: one pending signal).
type kubeWatcher struct {
	client     *kube.Client
	paths      []string
	reflectors []*kube.Reflector[promRule]

	changed chan struct{}

	mu      sync.Mutex
	objs    map[string]map[string][]byte // path → source name → object JSON
	synced  map[string]bool              // path → listed at least once
	tried   map[string]bool              // path → first list attempted
	lastErr map[string]error             // path → last list/watch error (nil when fine)
	first   chan struct{}                // closed when every path's first list was attempted
}

// newKubeWatcher resolves the connection of c (it does not contact the
// API server); backoff bounds the retries (zero: the defaults).
func newKubeWatcher(c KubernetesConfig, backoff backoff.Backoff, logger *zap.Logger) (*kubeWatcher, error) {
	client, err := kube.NewClient(c.APIConfig, "weft-rules")
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	w := &kubeWatcher{
		client:  client,
		changed: make(chan struct{}, 1), first: make(chan struct{}),
		objs: map[string]map[string][]byte{}, synced: map[string]bool{}, tried: map[string]bool{}, lastErr: map[string]error{},
	}
	namespaces := c.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""} // one cluster-wide list and watch
	}
	logger = logger.With(zap.String("source", "kubernetes"))
	for _, ns := range namespaces {
		path := kube.CollectionPath("monitoring.coreos.com", "v1", ns, "prometheusrules")
		w.paths = append(w.paths, path)
		w.reflectors = append(w.reflectors, kube.NewReflector(client, kube.ListWatch[promRule]{
			Path:          path,
			LabelSelector: c.LabelSelector,
			Meta:          (*promRule).metadata,
			Backoff:       backoff,
			OnError:       func(err error) { w.fail(path, err) },
		}, logger, func(events []kube.Event[promRule]) { w.apply(path, events) }))
	}
	return w, nil
}

// run lists and watches every path until ctx ends, then releases the
// client's connections.
func (w *kubeWatcher) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() {
		var each sync.WaitGroup
		for _, r := range w.reflectors {
			each.Go(func() { r.Run(ctx) })
		}
		each.Wait()
		w.client.Close()
	})
}

// waitFirst waits until every path's first list was attempted, or ctx ends.
func (w *kubeWatcher) waitFirst(ctx context.Context) {
	select {
	case <-w.first:
	case <-ctx.Done():
	}
}

// snapshot returns the objects as rule sources, sorted by name
// ("kubernetes:<namespace>/<name>", content the object's JSON). It fails
// while a path has never been listed.
func (w *kubeWatcher) snapshot() ([]string, [][]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	var names []string
	all := map[string][]byte{}
	for _, p := range w.paths {
		if !w.synced[p] {
			err := w.lastErr[p]
			if err == nil {
				err = errors.New("not listed yet")
			}
			errs = append(errs, fmt.Errorf("kubernetes: PrometheusRules %s: %w", p, err))
			continue
		}
		for n, o := range w.objs[p] {
			names = append(names, n)
			all[n] = o
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	slices.Sort(names)
	objs := make([][]byte, len(names))
	for i, n := range names {
		objs[i] = all[n]
	}
	return names, objs, nil
}

// health is the last list or watch error of any path ("" when none) and
// the request counts of all paths.
func (w *kubeWatcher) health() (string, kube.Stats) {
	var st kube.Stats
	for _, r := range w.reflectors {
		s := r.Stats()
		st.Lists += s.Lists
		st.Watches += s.Watches
		st.Gone += s.Gone
		st.Failures += s.Failures
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, p := range w.paths {
		errs = append(errs, w.lastErr[p])
	}
	if err := errors.Join(errs...); err != nil {
		return err.Error(), st
	}
	return "", st
}

func (w *kubeWatcher) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// apply is a path's reflector handler: a list's difference or one watch
// event. Either means the path is listed and healthy.
func (w *kubeWatcher) apply(path string, events []kube.Event[promRule]) {
	w.mu.Lock()
	objs := w.objs[path]
	if objs == nil {
		objs = map[string][]byte{}
		w.objs[path] = objs
	}
	for _, e := range events {
		if e.Type == kube.Deleted {
			delete(objs, e.Object.sourceName())
		} else {
			objs[e.Object.sourceName()] = e.Object.raw
		}
	}
	w.synced[path] = true
	w.lastErr[path] = nil
	w.markTried(path)
	w.mu.Unlock()
	w.signal()
}

// fail records a path's failed list or watch (the reflector logged it and
// retries); the known objects stay.
func (w *kubeWatcher) fail(path string, err error) {
	w.mu.Lock()
	w.lastErr[path] = err
	last := w.markTried(path)
	w.mu.Unlock()
	if last {
		w.signal() // the files-only set may load now
	}
}

// markTried records a path's first list attempt and closes first when
// that completed the set, which it reports. w.mu is held.
func (w *kubeWatcher) markTried(path string) bool {
	if w.tried[path] {
		return false
	}
	w.tried[path] = true
	if len(w.tried) < len(w.paths) {
		return false
	}
	close(w.first)
	return true
}
