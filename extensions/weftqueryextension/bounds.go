package weftqueryextension

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/promql"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/auth"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/jaegerapi"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/promapi"
)

// failFunc answers an error in a route's envelope (Prometheus or Jaeger).
type failFunc func(w http.ResponseWriter, aerr *promapi.Error)

func jaegerFailAPI(w http.ResponseWriter, aerr *promapi.Error) {
	jaegerapi.Fail(w, aerr.Status, aerr.Err.Error())
}

// gated runs a data request in a query slot. Before taking one it reads the
// whole body (bounded by max_request_bytes and read_body_timeout, so that a
// client that goes away is noticed: net/http watches the connection once
// the body is consumed) and refuses over-long expressions. The answer is
// buffered and written after the slot is released, so a client that reads
// slowly does not hold a slot.
func (s *server) gated(h http.HandlerFunc, fail failFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := r.ParseForm()
		if err == nil {
			_, err = io.Copy(io.Discard, r.Body)
		}
		if err != nil {
			fail(w, s.formError(err))
			return
		}
		for _, q := range append(r.Form["query"], r.Form["match[]"]...) {
			if err := limits.CheckQueryLength(q, s.cfg.MaxQueryLength); err != nil {
				s.refused.Add(limits.ReasonQueryLength)
				fail(w, promapi.BadData(err))
				return
			}
		}
		release, err := s.gate.Acquire(r.Context())
		if err != nil {
			aerr := s.gateError(err)
			if aerr.Type == promapi.ErrorUnavailable {
				w.Header().Set("Retry-After", s.retryAfter())
			}
			fail(w, aerr)
			return
		}
		buf := &bufferedResponse{header: w.Header()}
		func() {
			defer release()
			h(buf, r)
		}()
		if buf.status == 0 {
			buf.status = http.StatusOK
		}
		w.WriteHeader(buf.status)
		_, _ = w.Write(buf.body.Bytes())
	}
}

// gateError turns a refusal of the gate into an API error and counts it.
func (s *server) gateError(err error) *promapi.Error {
	switch {
	case errors.Is(err, limits.ErrQueueFull):
		s.refused.Add(limits.ReasonQueueFull)
		return &promapi.Error{Type: promapi.ErrorUnavailable, Status: http.StatusServiceUnavailable, Err: fmt.Errorf(
			"too many queries: max_concurrent_queries (%d) running and max_queued_queries (%d) waiting", s.cfg.MaxConcurrentQueries, s.cfg.MaxQueuedQueries)}
	case errors.Is(err, limits.ErrQueueTimeout):
		s.refused.Add(limits.ReasonQueueTimeout)
		return &promapi.Error{Type: promapi.ErrorUnavailable, Status: http.StatusServiceUnavailable, Err: fmt.Errorf(
			"no query slot free within queue_timeout (%s): max_concurrent_queries (%d) running", s.cfg.QueueTimeout, s.cfg.MaxConcurrentQueries)}
	}
	aerr := promapi.QueryError(err)
	s.countQueryError(aerr)
	return aerr
}

// retryAfter is the Retry-After of a 503 "unavailable": queue_timeout in
// whole seconds, at least 1 (a slot was not free for that long).
func (s *server) retryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(s.cfg.QueueTimeout.Seconds()))))
}

// countQueryError counts the errors of a query that are bounds: limits
// (refusals) and cancellation or timeout (interruptions).
func (s *server) countQueryError(aerr *promapi.Error) {
	var (
		le  *limits.Error
		tms promql.ErrTooManySamples
	)
	switch {
	case errors.As(aerr.Err, &le):
		s.refused.Add(le.Key)
	case errors.As(aerr.Err, &tms):
		s.refused.Add(limits.ReasonSamples)
	case aerr.Type == promapi.ErrorCanceled:
		s.interrupted.Add(limits.ReasonCanceled)
	case aerr.Type == promapi.ErrorTimeout:
		s.interrupted.Add(limits.ReasonTimeout)
	}
}

// formError classifies an error reading the form: body over
// max_request_bytes 413, body slower than read_body_timeout 408, else 400.
func (s *server) formError(err error) *promapi.Error {
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return &promapi.Error{Type: promapi.ErrorTooLarge, Status: http.StatusRequestEntityTooLarge, Err: err}
	}
	if errors.Is(err, limits.ErrBodyTimeout) {
		s.refused.Add(limits.ReasonBodyTimeout)
		return &promapi.Error{Type: promapi.ErrorBadData, Status: http.StatusRequestTimeout, Err: fmt.Errorf("request body not read within read_body_timeout (%s)", s.cfg.ReadBodyTimeout)}
	}
	return promapi.BadData(fmt.Errorf("error parsing form values: %w", err))
}

// bufferedResponse holds an answer until the query slot is released.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// probesOnly answers requests on a connection of the probe reserve: the
// probes are served, anything else gets 503 "unavailable"; the connection
// is closed after the answer, so the reserve frees quickly.
func (s *server) probesOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !limits.ProbesOnly(r.Context()) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if auth.Public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		s.refused.Add(limits.ReasonConnections)
		w.Header().Set("Retry-After", "1")
		promapi.Fail(w, &promapi.Error{Type: promapi.ErrorUnavailable, Status: http.StatusServiceUnavailable, Err: fmt.Errorf(
			"connection limit: max_connections (%d) open; this connection answers only /healthz and /ready", s.cfg.MaxConnections)})
	})
}
