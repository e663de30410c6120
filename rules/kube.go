package rules

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// In-cluster service account files.
const (
	serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	serviceAccountCA    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// kubeSourcePrefix marks rule sources read from the Kubernetes API.
const kubeSourcePrefix = "kubernetes:"

const (
	// kubeRequestTimeout bounds a list request.
	kubeRequestTimeout = 30 * time.Second
	// kubeWatchSeconds is the server-side timeout of one watch request;
	// the client gives up kubeWatchSlack later if the server does not end it.
	kubeWatchSeconds = 300
	kubeWatchSlack   = 30 * time.Second
	// Backoff after a failed list or watch: doubles from min to max, reset
	// by a successful list or a watch that delivered an event.
	kubeBackoffMin = 500 * time.Millisecond
	kubeBackoffMax = 30 * time.Second
)

// errGone is a watch whose resourceVersion the API server no longer has
// (HTTP 410 or a watch ERROR event with code 410): list again.
var errGone = errors.New("resource version too old (410 Gone)")

// kubeWatcher keeps the PrometheusRule objects selected by namespace and
// label selector in memory, by list and watch (per namespace, or once for
// all namespaces): list for a snapshot and its resourceVersion, then watch
// from there with bookmarks; a 410 Gone lists again; failures back off.
// Every change is signalled on changed (coalesced: one pending signal).
type kubeWatcher struct {
	base      string // API server URL
	paths     []string
	selector  string
	tokenFile string
	client    *http.Client // lists
	watchCl   *http.Client // watches (no overall timeout)
	logger    *zap.Logger

	backoffMin, backoffMax time.Duration

	changed chan struct{}

	mu      sync.Mutex
	objs    map[string]map[string][]byte // path → source name → object JSON
	synced  map[string]bool              // path → listed at least once
	tried   map[string]bool              // path → first list attempted
	lastErr map[string]error             // path → last list/watch error (nil when fine)
	first   chan struct{}                // closed when every path's first list was attempted
	stats   kubeStats
}

// kubeStats counts the watcher's API calls.
type kubeStats struct {
	Lists, Watches, Gone, Failures int64
}

func newKubeWatcher(c KubernetesConfig, logger *zap.Logger) (*kubeWatcher, error) {
	w := &kubeWatcher{
		base: strings.TrimSuffix(c.APIServer, "/"), selector: c.LabelSelector, tokenFile: c.TokenFile, logger: logger,
		backoffMin: kubeBackoffMin, backoffMax: kubeBackoffMax,
		changed: make(chan struct{}, 1), first: make(chan struct{}),
		objs: map[string]map[string][]byte{}, synced: map[string]bool{}, tried: map[string]bool{}, lastErr: map[string]error{},
	}
	caFile := c.CAFile
	if w.base == "" { // in cluster
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("kubernetes.api_server: not set and not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)")
		}
		w.base = "https://" + net.JoinHostPort(host, port)
		if w.tokenFile == "" {
			w.tokenFile = serviceAccountToken
		}
		if caFile == "" {
			caFile = serviceAccountCA
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("kubernetes.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kubernetes.ca_file: no certificate in %s", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	w.client = &http.Client{Transport: tr, Timeout: kubeRequestTimeout}
	w.watchCl = &http.Client{Transport: tr}
	if len(c.Namespaces) == 0 {
		w.paths = []string{"/apis/monitoring.coreos.com/v1/prometheusrules"}
	}
	for _, ns := range c.Namespaces {
		w.paths = append(w.paths, "/apis/monitoring.coreos.com/v1/namespaces/"+url.PathEscape(ns)+"/prometheusrules")
	}
	return w, nil
}

// run lists and watches every path until ctx ends; one goroutine per path.
func (w *kubeWatcher) run(ctx context.Context, wg *sync.WaitGroup) {
	for _, p := range w.paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx, p)
		}()
	}
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

// health is the last list or watch error of any path ("" when none).
func (w *kubeWatcher) health() (string, kubeStats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, p := range w.paths {
		errs = append(errs, w.lastErr[p])
	}
	if err := errors.Join(errs...); err != nil {
		return err.Error(), w.stats
	}
	return "", w.stats
}

func (w *kubeWatcher) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *kubeWatcher) loop(ctx context.Context, path string) {
	backoff := w.backoffMin
	wait := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, w.backoffMax)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	goneStreak, listedAfterGone := 0, false
	for ctx.Err() == nil {
		rv, err := w.list(ctx, path)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.fail(path, err)
			if !wait() {
				return
			}
			continue
		}
		if !listedAfterGone {
			backoff = w.backoffMin
		}
		listedAfterGone = false
		for ctx.Err() == nil {
			began := time.Now()
			progressed, err := w.watch(ctx, path, &rv)
			if ctx.Err() != nil {
				return
			}
			if progressed {
				backoff = w.backoffMin
			}
			if errors.Is(err, errGone) {
				w.mu.Lock()
				w.stats.Gone++
				w.mu.Unlock()
				w.logger.Info("PrometheusRule watch expired, listing again", zap.String("path", path), zap.String("resource_version", rv))
				// The first relist is at once; a list whose version is
				// gone again before any event waits (no list storm).
				if !progressed && goneStreak > 0 && !wait() {
					return
				}
				goneStreak++
				listedAfterGone = true
				break
			}
			goneStreak = 0
			if err != nil {
				w.fail(path, err)
				if !wait() {
					return
				}
				continue
			}
			// A watch the server ended is resumed from rv at once, unless
			// it ended at once without an event (a proxy closing streams):
			// then it backs off like a failure.
			if !progressed && time.Since(began) < time.Second && !wait() {
				return
			}
		}
	}
}

func (w *kubeWatcher) fail(path string, err error) {
	w.logger.Warn("PrometheusRule list/watch failed; the known objects stay", zap.String("path", path), zap.Error(err))
	w.mu.Lock()
	w.lastErr[path] = err
	w.stats.Failures++
	first := w.markTried(path)
	w.mu.Unlock()
	if first {
		close(w.first)
		w.signal()
	}
}

// markTried records a path's first list attempt; it reports whether that
// completed the set (the caller closes first). w.mu is held.
func (w *kubeWatcher) markTried(path string) bool {
	if w.tried[path] {
		return false
	}
	w.tried[path] = true
	return len(w.tried) == len(w.paths)
}

// watchMeta is the part of an object or list the watcher reads.
type watchMeta struct {
	Metadata struct {
		Name            string `json:"name"`
		Namespace       string `json:"namespace"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
}

func sourceName(m watchMeta) string {
	return kubeSourcePrefix + m.Metadata.Namespace + "/" + m.Metadata.Name
}

// list replaces the path's objects with a fresh list and returns the
// list's resourceVersion.
func (w *kubeWatcher) list(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, kubeRequestTimeout)
	defer cancel()
	q := url.Values{}
	if w.selector != "" {
		q.Set("labelSelector", w.selector)
	}
	resp, err := w.do(ctx, w.client, path, q)
	if err != nil {
		return "", fmt.Errorf("list: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("list: HTTP %d%s", resp.StatusCode, statusMessage(resp.Body))
	}
	var list struct {
		watchMeta
		Items []json.RawMessage `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return "", fmt.Errorf("list: decode PrometheusRuleList: %w", err)
	}
	objs := make(map[string][]byte, len(list.Items))
	for _, raw := range list.Items {
		var m watchMeta
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", fmt.Errorf("list: decode PrometheusRule: %w", err)
		}
		objs[sourceName(m)] = raw
	}
	w.mu.Lock()
	w.stats.Lists++
	w.objs[path] = objs
	w.synced[path] = true
	w.lastErr[path] = nil
	first := w.markTried(path)
	w.mu.Unlock()
	if first {
		close(w.first)
	}
	w.signal()
	return list.Metadata.ResourceVersion, nil
}

// watchEvent is one line of a watch stream.
type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// watch follows the path from *rv until the server ends the stream, ctx
// ends or an error occurs, applying events and advancing *rv. progressed
// tells whether any event arrived.
func (w *kubeWatcher) watch(ctx context.Context, path string, rv *string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, kubeWatchSeconds*time.Second+kubeWatchSlack)
	defer cancel()
	q := url.Values{}
	q.Set("watch", "true")
	q.Set("allowWatchBookmarks", "true")
	q.Set("resourceVersion", *rv)
	q.Set("timeoutSeconds", fmt.Sprint(kubeWatchSeconds))
	if w.selector != "" {
		q.Set("labelSelector", w.selector)
	}
	resp, err := w.do(ctx, w.watchCl, path, q)
	if err != nil {
		return false, fmt.Errorf("watch: %w", err)
	}
	defer resp.Body.Close()
	w.mu.Lock()
	w.stats.Watches++
	w.mu.Unlock()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusGone:
		return false, errGone
	default:
		return false, fmt.Errorf("watch: HTTP %d%s", resp.StatusCode, statusMessage(resp.Body))
	}
	return w.follow(path, resp.Body, rv)
}

// follow applies the events of a watch stream to the path's objects until
// the stream ends (nil), breaks or carries an ERROR event, advancing *rv.
// progressed tells whether any event was read.
func (w *kubeWatcher) follow(path string, r io.Reader, rv *string) (progressed bool, _ error) {
	dec := json.NewDecoder(r)
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return progressed, nil // the server's timeout: resume
			}
			return progressed, fmt.Errorf("watch: read event: %w", err)
		}
		progressed = true
		switch ev.Type {
		case "ADDED", "MODIFIED", "DELETED":
			var m watchMeta
			if err := json.Unmarshal(ev.Object, &m); err != nil {
				return progressed, fmt.Errorf("watch: decode %s PrometheusRule: %w", ev.Type, err)
			}
			if m.Metadata.Name == "" || m.Metadata.Namespace == "" {
				return progressed, fmt.Errorf("watch: %s PrometheusRule without namespace and name", ev.Type)
			}
			name := sourceName(m)
			w.mu.Lock()
			if w.objs[path] == nil {
				w.objs[path] = map[string][]byte{}
			}
			if ev.Type == "DELETED" {
				delete(w.objs[path], name)
			} else {
				w.objs[path][name] = ev.Object
			}
			w.lastErr[path] = nil
			w.mu.Unlock()
			*rv = m.Metadata.ResourceVersion
			w.signal()
		case "BOOKMARK":
			var m watchMeta
			if err := json.Unmarshal(ev.Object, &m); err != nil {
				return progressed, fmt.Errorf("watch: decode BOOKMARK: %w", err)
			}
			*rv = m.Metadata.ResourceVersion
		case "ERROR":
			var st struct {
				Code    int    `json:"code"`
				Reason  string `json:"reason"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(ev.Object, &st); err != nil {
				return progressed, fmt.Errorf("watch: decode ERROR: %w", err)
			}
			if st.Code == http.StatusGone {
				return progressed, errGone
			}
			return progressed, fmt.Errorf("watch: error event %d %s: %s", st.Code, st.Reason, st.Message)
		default:
			return progressed, fmt.Errorf("watch: unknown event type %q", ev.Type)
		}
	}
}

func (w *kubeWatcher) do(ctx context.Context, cl *http.Client, path string, q url.Values) (*http.Response, error) {
	u := w.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if w.tokenFile != "" {
		tok, err := os.ReadFile(w.tokenFile) // read each time: tokens rotate
		if err != nil {
			return nil, fmt.Errorf("kubernetes.token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	return cl.Do(req)
}

// statusMessage is ": <message>" of a Kubernetes Status body, if any.
func statusMessage(r io.Reader) string {
	var st struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(r, 64<<10)).Decode(&st); err != nil || st.Message == "" {
		return ""
	}
	return ": " + st.Message
}
