package kubepods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// EventType says what happened to a pod.
type EventType int

const (
	// Added is a pod seen for the first time.
	Added EventType = iota
	// Modified is a known pod that changed.
	Modified
	// Deleted is a pod that is gone; Event.Pod is its last known state.
	Deleted
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "added"
	case Modified:
		return "modified"
	case Deleted:
		return "deleted"
	}
	return "unknown"
}

// Event is one change to the set of watched pods.
type Event struct {
	// Type is what happened.
	Type EventType
	// Pod is the pod's new state (its last known state when Deleted).
	Pod *Pod
}

// Handler receives the changes, in order, from one goroutine. A (re)list
// arrives as one batch: the difference to what was known before (on the
// first list, every pod as Added; the batch may be empty). A watch event
// arrives as a batch of one. The handler must not keep the slice.
type Handler func(events []Event)

// Watcher keeps a pod list in sync with the API server: list, then watch
// from the list's resourceVersion with bookmarks, relist when the version
// has expired (410 Gone), back off on errors.
type Watcher struct {
	cfg     Config
	conn    *conn
	logger  *zap.Logger
	handler Handler

	// pods is the current state, by namespace/name.
	pods map[string]*Pod
	// rv is the resourceVersion to watch from.
	rv string

	// Timing, changed by tests.
	minBackoff, maxBackoff time.Duration
	watchTimeout           func() time.Duration
}

// New checks cfg and returns a watcher; it does not contact the server.
func New(cfg Config, logger *zap.Logger, h Handler) (*Watcher, error) {
	c, err := connect(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "weft"
	}
	return &Watcher{
		cfg:        cfg,
		conn:       c,
		logger:     logger,
		handler:    h,
		pods:       map[string]*Pod{},
		minBackoff: 500 * time.Millisecond,
		maxBackoff: 30 * time.Second,
		// The server ends a watch after timeoutSeconds; spread them over
		// 5–10 minutes as client-go's reflector does.
		watchTimeout: func() time.Duration { return 5*time.Minute + rand.N(5*time.Minute) },
	}, nil
}

// Close releases idle connections; call it after Run returned.
func (w *Watcher) Close() { w.conn.client.CloseIdleConnections() }

// errGone is a list or watch whose resourceVersion is too old.
var errGone = errors.New("resource version expired (410 Gone)")

// Run lists and watches until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	backoff := w.minBackoff
	listed := false
	// watched is set once a watch since the last list applied an event.
	watched := false
	for ctx.Err() == nil {
		var err error
		pause := false
		if !listed {
			err = w.list(ctx)
			listed, watched = err == nil, false
			pause = err != nil
			if err == nil {
				backoff = w.minBackoff
			}
		} else {
			start := time.Now()
			progressed, werr := w.watch(ctx)
			healthy := progressed || time.Since(start) > 30*time.Second
			if healthy {
				backoff = w.minBackoff
			}
			watched = watched || progressed
			switch {
			case errors.Is(werr, errGone):
				// Our version fell out of the server's window: list again,
				// at once if watching worked since the last list; a 410
				// straight after a list waits, so that a confused server is
				// not hammered.
				w.logger.Debug("Pod watch expired; listing again", zap.Error(werr))
				listed = false
				pause = !watched
			case werr != nil:
				err, pause = werr, true
			default:
				// A stream that ended without an event after a short
				// while (a proxy's timeout, a server closing at once)
				// must not make the loop spin.
				pause = !healthy
			}
		}
		if ctx.Err() != nil {
			return
		}
		if !pause {
			continue
		}
		if err != nil {
			w.logger.Warn("Pod list/watch failed; retrying", zap.String("api_server", w.conn.base.Redacted()),
				zap.Duration("backoff", backoff), zap.Error(err))
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, w.maxBackoff)
	}
}

func (w *Watcher) url(extra url.Values) string {
	u := *w.conn.base
	path := "/api/v1/pods"
	if w.cfg.Namespace != "" {
		path = "/api/v1/namespaces/" + url.PathEscape(w.cfg.Namespace) + "/pods"
	}
	u.Path = u.Path + path
	q := url.Values{}
	if w.cfg.FieldSelector != "" {
		q.Set("fieldSelector", w.cfg.FieldSelector)
	}
	if w.cfg.LabelSelector != "" {
		q.Set("labelSelector", w.cfg.LabelSelector)
	}
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// get sends one GET and returns the response if it is 200; any other
// status becomes an error (errGone for 410).
func (w *Watcher) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", w.cfg.UserAgent)
	tok, err := w.conn.token()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if w.conn.user != "" {
		req.SetBasicAuth(w.conn.user, w.conn.password)
	}
	resp, err := w.conn.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusGone {
		return nil, errGone
	}
	var st status
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		return nil, fmt.Errorf("GET %s: %s: %s", redact(u), resp.Status, st.Message)
	}
	return nil, fmt.Errorf("GET %s: %s", redact(u), resp.Status)
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}

// list reads every page of the pod list, replaces the state with it and
// hands the difference to the handler.
func (w *Watcher) list(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	next := make(map[string]*Pod, len(w.pods))
	var rv, cont string
	for {
		q := url.Values{"limit": {"500"}}
		if cont != "" {
			q.Set("continue", cont)
		} else if w.rv == "" {
			// The first list may be served from the API server's watch
			// cache; a relist after 410 asks for the latest state.
			q.Set("resourceVersion", "0")
		}
		resp, err := w.get(ctx, w.url(q))
		if errors.Is(err, errGone) && cont != "" {
			// The continue token expired: start the list over.
			cont = ""
			clear(next)
			continue
		}
		if err != nil {
			return fmt.Errorf("list pods: %w", err)
		}
		var page podList
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("list pods: decode: %w", err)
		}
		for _, p := range page.Items {
			next[p.Key()] = p
		}
		rv, cont = page.Metadata.ResourceVersion, page.Metadata.Continue
		if cont == "" {
			break
		}
	}
	var events []Event
	for k, p := range next {
		old, ok := w.pods[k]
		switch {
		case !ok:
			events = append(events, Event{Type: Added, Pod: p})
		case old.Metadata.ResourceVersion != p.Metadata.ResourceVersion || old.Metadata.UID != p.Metadata.UID:
			events = append(events, Event{Type: Modified, Pod: p})
		}
	}
	for k, p := range w.pods {
		if _, ok := next[k]; !ok {
			events = append(events, Event{Type: Deleted, Pod: p})
		}
	}
	w.pods, w.rv = next, rv
	w.handler(events)
	return nil
}

// watch follows changes from w.rv until the server ends the stream, the
// context is done or an error occurs. progressed reports whether any event
// arrived (a healthy connection resets the backoff).
func (w *Watcher) watch(ctx context.Context) (progressed bool, err error) {
	timeout := w.watchTimeout()
	// The server closes the stream after timeoutSeconds; the client gives
	// up a little later in case the connection hangs silently.
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	q := url.Values{
		"watch":               {"true"},
		"resourceVersion":     {w.rv},
		"allowWatchBookmarks": {"true"},
		"timeoutSeconds":      {strconv.Itoa(max(1, int(timeout/time.Second)))},
	}
	resp, err := w.get(ctx, w.url(q))
	if err != nil {
		return false, fmt.Errorf("watch pods: %w", err)
	}
	defer resp.Body.Close()
	progressed, err = w.consume(resp.Body)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Our own deadline on a quiet stream: watch again.
		return progressed, nil
	}
	return progressed, err
}

// consume applies the events of one watch stream to the state and hands
// them to the handler, until the stream ends (nil), an ERROR event or a
// malformed line. progressed reports whether any event was applied.
func (w *Watcher) consume(body io.Reader) (progressed bool, err error) {
	dec := json.NewDecoder(body)
	one := make([]Event, 1)
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return progressed, nil
			}
			return progressed, fmt.Errorf("watch pods: decode: %w", err)
		}
		if ev.Type == "ERROR" {
			var st status
			if err := json.Unmarshal(ev.Object, &st); err != nil {
				return progressed, fmt.Errorf("watch pods: decode error event: %w", err)
			}
			if st.Code == http.StatusGone {
				return progressed, errGone
			}
			return progressed, fmt.Errorf("watch pods: server error %d %s: %s", st.Code, st.Reason, st.Message)
		}
		p := new(Pod)
		if err := json.Unmarshal(ev.Object, p); err != nil {
			return progressed, fmt.Errorf("watch pods: decode %s event: %w", ev.Type, err)
		}
		if p.Metadata.ResourceVersion == "" {
			// Watching on from "" would mean "from now" and skip changes.
			return progressed, fmt.Errorf("watch pods: %s event without resourceVersion", ev.Type)
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			progressed = true
			typ := Added
			if _, ok := w.pods[p.Key()]; ok {
				typ = Modified
			}
			w.pods[p.Key()] = p
			w.rv = p.Metadata.ResourceVersion
			one[0] = Event{Type: typ, Pod: p}
			w.handler(one)
		case "DELETED":
			progressed = true
			w.rv = p.Metadata.ResourceVersion
			if old, ok := w.pods[p.Key()]; ok {
				delete(w.pods, p.Key())
				one[0] = Event{Type: Deleted, Pod: old}
				if p.Metadata.UID == old.Metadata.UID {
					// The delete carries the final state.
					one[0].Pod = p
				}
				w.handler(one)
			}
		case "BOOKMARK":
			progressed = true
			w.rv = p.Metadata.ResourceVersion
		default:
			return progressed, fmt.Errorf("watch pods: unknown event type %q", ev.Type)
		}
		one[0] = Event{}
	}
}
