package kube

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
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/backoff"
)

// EventType says what happened to an object.
type EventType int

const (
	// Added is an object seen for the first time.
	Added EventType = iota
	// Modified is a known object that changed.
	Modified
	// Deleted is an object that is gone; Event.Object is its last known
	// state.
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

// Event is one change to the set of watched objects.
type Event[T any] struct {
	// Type is what happened.
	Type EventType
	// Object is the object's new state (its last known state when Deleted).
	Object *T
}

// Handler receives the changes, in order, from the reflector's goroutine.
// A (re)list arrives as one batch: the difference to what was known
// before (on the first list, every object as Added; the batch may be
// empty, and says that the list succeeded). A watch event arrives as a
// batch of one. The handler must not keep the slice.
type Handler[T any] func(events []Event[T])

// ListWatch says what a Reflector keeps in sync and how it retries.
type ListWatch[T any] struct {
	// Path is the collection's path, e.g. CollectionPath("", "v1", "",
	// "pods").
	Path string
	// LabelSelector is sent as labelSelector (empty: every object).
	LabelSelector string
	// FieldSelector is sent as fieldSelector (empty: every object).
	FieldSelector string
	// Meta returns an object's metadata, e.g. (*Pod).Meta; required.
	// Objects are decoded into T with encoding/json (a T with its own
	// UnmarshalJSON may keep the raw object).
	Meta func(*T) *ObjectMeta
	// Backoff bounds the waits after failures (zero: 0.5 s doubling to
	// 30 s, jittered).
	Backoff backoff.Backoff
	// OnError, when set, hears every failed list or watch (not a 410,
	// which lists again), after it was logged and before the wait.
	OnError func(error)
}

// Stats counts a reflector's requests.
type Stats struct {
	// Lists counts complete lists (every page), Watches the watch
	// requests the server answered.
	Lists, Watches int64
	// Gone counts watches ended by 410 Gone, each followed by a list.
	Gone int64
	// Failures counts lists and watches that failed (and backed off).
	Failures int64
}

const (
	// pageSize is the limit of one list request.
	pageSize = 500
	// listTimeout bounds a whole list, every page.
	listTimeout = 2 * time.Minute
	// healthyWatch is how long a watch without events must have been open
	// to count as healthy (reset the backoff, watch again at once).
	healthyWatch = 30 * time.Second
	// watchSlack is how long after its timeoutSeconds the client gives up
	// a watch the server did not end (a connection that hangs silently).
	watchSlack = 30 * time.Second
)

// Reflector keeps one collection in sync with the API server, as
// client-go's reflector does: a list (in pages of 500), then a watch from
// the list's resourceVersion with bookmarks, resumed from the last
// resourceVersion seen when the server ends it; 410 Gone lists again and
// hands the handler the difference; failures back off.
type Reflector[T any] struct {
	client  *Client
	lw      ListWatch[T]
	logger  *zap.Logger
	handler Handler[T]
	backoff backoff.Backoff

	// objs is the current state by namespace/name and rv the
	// resourceVersion to watch from; only Run's goroutine uses them.
	objs map[string]*T
	rv   string

	pageSize int
	// watchTimeout is the timeoutSeconds of the next watch.
	watchTimeout func() time.Duration

	lists, watches, gone, failures atomic.Int64
}

// NewReflector returns a reflector of lw over c; Run starts it. Several
// reflectors may share a client.
func NewReflector[T any](c *Client, lw ListWatch[T], logger *zap.Logger, h Handler[T]) *Reflector[T] {
	return &Reflector[T]{
		client:   c,
		lw:       lw,
		logger:   logger,
		handler:  h,
		backoff:  lw.Backoff,
		objs:     map[string]*T{},
		pageSize: pageSize,
		// The server ends a watch after timeoutSeconds; spread them over
		// 5–10 minutes as client-go's reflector does.
		watchTimeout: func() time.Duration { return 5*time.Minute + rand.N(5*time.Minute) },
	}
}

// CollectionPath is the path of a resource collection: group "" is the
// core API (/api/v1/pods), namespace "" every namespace.
func CollectionPath(group, version, namespace, resource string) string {
	p := "/apis/" + group + "/" + version
	if group == "" {
		p = "/api/" + version
	}
	if namespace != "" {
		p += "/namespaces/" + namespace
	}
	return p + "/" + resource
}

// Stats returns the request counts so far; safe from any goroutine.
func (r *Reflector[T]) Stats() Stats {
	return Stats{Lists: r.lists.Load(), Watches: r.watches.Load(), Gone: r.gone.Load(), Failures: r.failures.Load()}
}

// Run lists and watches until ctx is done; call it once.
func (r *Reflector[T]) Run(ctx context.Context) {
	listed := false
	// watched is set once a watch since the last list applied an event;
	// relisted while the last list followed a 410 and no watch has been
	// healthy since (its success does not reset the backoff: a server that
	// answers every watch with 410 gets ever slower lists, not a storm).
	watched, relisted := false, false
	for ctx.Err() == nil {
		var err error
		pause := false
		if !listed {
			err = r.list(ctx)
			if err == nil {
				listed, watched = true, false
				if !relisted {
					r.backoff.Reset()
				}
			} else {
				pause = true
			}
		} else {
			start := time.Now()
			progressed, werr := r.watch(ctx)
			healthy := progressed || time.Since(start) > healthyWatch
			if healthy {
				r.backoff.Reset()
				relisted = false
			}
			watched = watched || progressed
			switch {
			case isGone(werr):
				// Our version fell out of the server's window: list again,
				// at once if watching worked since the last list; a 410
				// straight after a list waits, so that a confused server is
				// not hammered.
				r.gone.Add(1)
				r.logger.Debug("Kubernetes watch expired; listing again", zap.String("resource", r.lw.Path), zap.Error(werr))
				listed, relisted = false, true
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
		wait := r.backoff.Next()
		if err != nil {
			r.failures.Add(1)
			r.logger.Warn("Kubernetes list/watch failed; retrying", zap.String("api_server", r.client.Server()),
				zap.String("resource", r.lw.Path), zap.Duration("retry_in", wait), zap.Error(err))
			if r.lw.OnError != nil {
				r.lw.OnError(err)
			}
		}
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// query holds the selectors of every list and watch request.
func (r *Reflector[T]) query() url.Values {
	q := url.Values{}
	if r.lw.FieldSelector != "" {
		q.Set("fieldSelector", r.lw.FieldSelector)
	}
	if r.lw.LabelSelector != "" {
		q.Set("labelSelector", r.lw.LabelSelector)
	}
	return q
}

// list reads every page of the collection, replaces the state with it and
// hands the difference to the handler.
func (r *Reflector[T]) list(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	next := make(map[string]*T, len(r.objs))
	var rv, cont string
	for {
		q := r.query()
		q.Set("limit", strconv.Itoa(r.pageSize))
		if cont != "" {
			q.Set("continue", cont)
		} else if r.rv == "" {
			// The first list may be served from the API server's watch
			// cache; a relist after 410 asks for the latest state.
			q.Set("resourceVersion", "0")
		}
		var page listPage[T]
		err := r.client.GetJSON(ctx, r.lw.Path, q, &page)
		if cont != "" && isGone(err) {
			// The continue token expired: start the list over.
			cont = ""
			clear(next)
			continue
		}
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		for _, o := range page.Items {
			if o != nil {
				next[r.lw.Meta(o).key()] = o
			}
		}
		rv, cont = page.Metadata.ResourceVersion, page.Metadata.Continue
		if cont == "" {
			break
		}
	}
	if rv == "" {
		// Watching from "" would mean "from now" and skip changes.
		return errors.New("list: answer without resourceVersion")
	}
	var events []Event[T]
	for k, o := range next {
		old, ok := r.objs[k]
		switch {
		case !ok:
			events = append(events, Event[T]{Type: Added, Object: o})
		case changed(r.lw.Meta(old), r.lw.Meta(o)):
			events = append(events, Event[T]{Type: Modified, Object: o})
		}
	}
	for k, o := range r.objs {
		if _, ok := next[k]; !ok {
			events = append(events, Event[T]{Type: Deleted, Object: o})
		}
	}
	r.objs, r.rv = next, rv
	r.lists.Add(1)
	r.handler(events)
	return nil
}

// changed reports whether an object listed again is not the one known.
func changed(old, cur *ObjectMeta) bool {
	return old.ResourceVersion != cur.ResourceVersion || old.UID != cur.UID
}

// watch follows changes from r.rv until the server ends the stream, the
// context is done or an error occurs. progressed reports whether any event
// arrived (a healthy connection resets the backoff).
func (r *Reflector[T]) watch(ctx context.Context) (progressed bool, err error) {
	timeout := r.watchTimeout()
	// The server closes the stream after timeoutSeconds; the client gives
	// up a little later in case the connection hangs silently.
	ctx, cancel := context.WithTimeout(ctx, timeout+watchSlack)
	defer cancel()
	q := r.query()
	q.Set("watch", "true")
	q.Set("resourceVersion", r.rv)
	q.Set("allowWatchBookmarks", "true")
	q.Set("timeoutSeconds", strconv.Itoa(max(1, int(timeout/time.Second))))
	resp, err := r.client.do(ctx, http.MethodGet, r.lw.Path, q, nil)
	var se *StatusError
	if err == nil || errors.As(err, &se) {
		r.watches.Add(1) // the server answered
	}
	if err != nil {
		return false, fmt.Errorf("watch: %w", err)
	}
	defer resp.Body.Close()
	progressed, err = r.consume(resp.Body)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Our own deadline on a quiet stream: watch again.
		return progressed, nil
	}
	if err != nil {
		return progressed, fmt.Errorf("watch: %w", err)
	}
	return progressed, nil
}

// consume applies the events of one watch stream to the state and hands
// them to the handler, until the stream ends (nil), an ERROR event (a
// *StatusError) or a malformed line. progressed reports whether any event
// was applied.
func (r *Reflector[T]) consume(body io.Reader) (progressed bool, err error) {
	dec := json.NewDecoder(body)
	one := make([]Event[T], 1)
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return progressed, nil
			}
			return progressed, fmt.Errorf("decode: %w", err)
		}
		switch ev.Type {
		case "ADDED", "MODIFIED", "DELETED":
		case "BOOKMARK":
			var b bookmark
			if err := json.Unmarshal(ev.Object, &b); err != nil {
				return progressed, fmt.Errorf("decode BOOKMARK event: %w", err)
			}
			if b.Metadata.ResourceVersion == "" {
				return progressed, errors.New("BOOKMARK event without resourceVersion")
			}
			progressed = true
			r.rv = b.Metadata.ResourceVersion
			continue
		case "ERROR":
			var st status
			if err := json.Unmarshal(ev.Object, &st); err != nil {
				return progressed, fmt.Errorf("decode ERROR event: %w", err)
			}
			return progressed, &StatusError{Code: st.Code, Reason: st.Reason, Message: st.Message}
		default:
			return progressed, fmt.Errorf("unknown event type %q", ev.Type)
		}
		o := new(T)
		if err := json.Unmarshal(ev.Object, o); err != nil {
			return progressed, fmt.Errorf("decode %s event: %w", ev.Type, err)
		}
		m := r.lw.Meta(o)
		switch {
		case m.ResourceVersion == "":
			// Watching on from "" would mean "from now" and skip changes.
			return progressed, fmt.Errorf("%s event without resourceVersion", ev.Type)
		case m.Name == "":
			return progressed, fmt.Errorf("%s event without name", ev.Type)
		}
		progressed = true
		r.rv = m.ResourceVersion
		k := m.key()
		if ev.Type == "DELETED" {
			old, ok := r.objs[k]
			if !ok {
				continue
			}
			delete(r.objs, k)
			one[0] = Event[T]{Type: Deleted, Object: old}
			if m.UID == r.lw.Meta(old).UID {
				// The delete carries the final state.
				one[0].Object = o
			}
		} else {
			typ := Added
			if _, ok := r.objs[k]; ok {
				typ = Modified
			}
			r.objs[k] = o
			one[0] = Event[T]{Type: typ, Object: o}
		}
		r.handler(one)
		one[0] = Event[T]{}
	}
}
