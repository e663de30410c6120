package weftqueryextension

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/weftobs/weft/extensions/weftqueryextension/internal/auth"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/jaegerapi"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/limits"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/promapi"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/statuspage"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/storeapi"
	"github.com/weftobs/weft/extensions/weftqueryextension/internal/weftapi"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/nodestatus"
	"github.com/weftobs/weft/internal/rulesapi"
)

// server is the weft_query extension: one HTTP server with the Prometheus,
// Jaeger, correlation and log APIs over a weft_store, and with
// store_api.endpoint set a gRPC server with the Thanos StoreAPI over it
// (internal/storeapi).
type server struct {
	cfg    *Config
	tel    component.TelemetrySettings
	logger *zap.Logger
	now    func() time.Time

	store     *weftstoreextension.Store
	queryable storage.Queryable // the store's; tests set a wrapper before Start
	rules     rulesapi.Source   // nil: no rules engine
	board     nodestatus.Board  // what receivers publish for the status page
	engine    *promql.Engine    // the store's (weftstoreextension.Store.Engine), shared with the rules
	parser    parser.Parser     // bounds expressions before the engine sees them

	gate        *limits.Gate
	conns       *limits.ConnLimitListener // nil before Start
	refused     limits.Counters           // requests refused by a bound, by reason
	interrupted limits.Counters           // queries cut short, by reason
	logScan     int                       // records observed_since examines at most
	telReg      metric.Registration

	token     string          // bearer token (from bearer_token or bearer_token_file)
	kube      *auth.Kube      // nil without auth.kubernetes
	authSeen  limits.Counters // auth decisions, by result
	ready     atomic.Bool     // listening, store found
	pipelines atomic.Bool     // the collector reported its pipelines running

	mu      sync.Mutex
	srv     *http.Server
	bound   string // the listener's address once started
	serveWG sync.WaitGroup

	storeAPI      *storeapi.Server // nil: store_api off or not started
	storeAPIBound string           // its listener's address once started
}

var (
	_ extensioncapabilities.Dependent       = (*server)(nil)
	_ extensioncapabilities.PipelineWatcher = (*server)(nil)
	_ component.Component                   = (*server)(nil)
)

func newServer(set component.TelemetrySettings, cfg *Config) *server {
	return &server{
		cfg: cfg, tel: set, logger: set.Logger, now: time.Now,
		gate:    limits.NewGate(cfg.MaxConcurrentQueries, cfg.MaxQueuedQueries, cfg.QueueTimeout),
		refused: limits.NewCounters(limits.RefusalReasons), interrupted: limits.NewCounters(limits.InterruptedReasons),
		logScan: weftapi.MaxObservedScan, authSeen: limits.NewCounters(auth.Results),
	}
}

// Dependencies makes the collector start the store (and a named rules
// extension) before this one and stop them after it.
func (s *server) Dependencies() []component.ID {
	deps := []component.ID{s.cfg.Store}
	if s.cfg.Rules.Type().String() != "" {
		deps = append(deps, s.cfg.Rules)
	}
	return deps
}

// StatusBoard makes weft_query a status owner: receivers publish their
// files and targets on this board at Start (nodestatus.PublishFiles).
func (s *server) StatusBoard() *nodestatus.Board { return &s.board }

// Start finds the store (and rules source), loads credentials and TLS, binds
// the endpoint and serves in the background.
func (s *server) Start(ctx context.Context, host component.Host) error {
	st, err := weftstoreextension.FromHost(host, s.cfg.Store)
	if err != nil {
		return fmt.Errorf("weft_query: %w", err)
	}
	rules, err := findRules(host.GetExtensions(), s.cfg.Rules)
	if err != nil {
		return err
	}
	token := string(s.cfg.Auth.BearerToken)
	if f := s.cfg.Auth.BearerTokenFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("weft_query: auth.bearer_token_file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fmt.Errorf("weft_query: auth.bearer_token_file: %q is empty", f)
		}
	}
	var tlsCfg *tls.Config
	if tc := s.cfg.HTTP.TLS.Get(); tc != nil {
		if tlsCfg, err = tc.LoadTLSConfig(ctx); err != nil {
			return fmt.Errorf("weft_query: http.tls: %w", err)
		}
	}
	if s.cfg.Auth.Kubernetes.Enabled && s.kube == nil {
		if s.kube, err = auth.NewKube(s.cfg.Auth.Kubernetes.kubeConfig(), s.logger, time.Now); err != nil {
			return fmt.Errorf("weft_query: auth.kubernetes: %w", err)
		}
	}
	s.store, s.rules, s.token = st, rules, token
	if s.queryable == nil {
		s.queryable = st.Queryable()
	}
	if err := s.initEngine(st); err != nil {
		return err
	}

	srv, err := s.httpServer(ctx, host)
	if err != nil {
		return fmt.Errorf("weft_query: http: %w", err)
	}
	// The connection cap counts TCP connections, under TLS: the server
	// sees *tls.Conn and handshakes.
	tcp, err := s.cfg.HTTP.NetAddr.Listen(ctx)
	if err != nil {
		return fmt.Errorf("weft_query: listen on http.endpoint %q: %w", s.cfg.HTTP.NetAddr.Endpoint, err)
	}
	conns := limits.NewConnLimitListener(tcp, s.cfg.MaxConnections)
	var ln net.Listener = conns
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	if err := s.registerTelemetry(); err != nil {
		_ = ln.Close()
		return fmt.Errorf("weft_query: telemetry: %w", err)
	}
	s.mu.Lock()
	s.srv, s.bound, s.conns = srv, ln.Addr().String(), conns
	s.mu.Unlock()
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("weft_query server stopped", zap.Error(err))
		}
	}()
	if err := s.startStoreAPI(ctx); err != nil {
		return err // Shutdown stops the HTTP server
	}
	s.ready.Store(true)
	s.logger.Info("weft_query listening", zap.String("endpoint", ln.Addr().String()))
	return nil
}

// httpServer is the http.Server of http (confighttp: CORS, body size,
// decompression, the collector's HTTP instrumentation) around handler,
// with weft's bounds: no read timeout for headers and body together unless
// http.read_timeout (the body has its own read_body_timeout, counted from
// the end of the headers), http.write_timeout 0 meaning read_body_timeout +
// timeout + writeGrace, a 1 MiB header bound, the probes-only marking
// of connections over max_connections.
func (s *server) httpServer(ctx context.Context, host component.Host) (*http.Server, error) {
	srv, err := s.cfg.HTTP.ToServer(ctx, host.GetExtensions(), s.tel, s.handler())
	if err != nil {
		return nil, err
	}
	if srv.WriteTimeout == 0 {
		srv.WriteTimeout = s.cfg.ReadBodyTimeout + s.cfg.Timeout + writeGrace
	}
	srv.MaxHeaderBytes = 1 << 20
	srv.ConnContext = limits.ConnContext
	srv.ErrorLog = zap.NewStdLog(s.logger)
	return srv, nil
}

const (
	// idleTimeout (http.keepalive.idle_timeout's default) closes keep-alive
	// connections idle this long. It is longer
	// than the 90 s after which Go's default transport (and Grafana's data
	// source client) drops idle connections, so the client closes them
	// first: a request sent on a connection the server is closing fails.
	idleTimeout = 2 * time.Minute
)

// addr is the address the server listens on (empty before Start).
func (s *server) addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound
}

// initEngine takes the store's PromQL engine (one per process, shared with
// the rules engine; weft_store query::max_samples bounds its samples) and
// builds the parser that bounds every expression by max_query_length and
// max_query_nodes before the engine parses it. The engine has no
// ActiveQueryTracker: the query gate bounds concurrency; timeout is each
// request's context deadline (limits).
func (s *server) initEngine(st *weftstoreextension.Store) error {
	s.parser = limits.NewParser(parser.NewParser(parser.Options{}), s.cfg.MaxQueryLength, s.cfg.MaxQueryNodes)
	if s.engine = st.Engine(); s.engine == nil {
		return fmt.Errorf("weft_query: store %s has no PromQL engine (not started)", s.cfg.Store)
	}
	return nil
}

// Shutdown stops the StoreAPI (gracefully, within storeAPIGrace) and the
// HTTP server and waits for in-flight requests (bounded by ctx). Safe
// without Start and twice.
func (s *server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.stopStoreAPI(ctx)
	if s.kube != nil {
		defer s.kube.Close() // idle connections to the API server
	}
	s.mu.Lock()
	srv, reg := s.srv, s.telReg
	s.srv, s.telReg = nil, nil
	s.mu.Unlock()
	if reg != nil {
		_ = reg.Unregister()
	}
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, srv.Close())
	}
	s.serveWG.Wait()
	return err
}

// handler is weft's HTTP handler: probes-only connections, auth, limits,
// then the routes (CORS is confighttp's, around it).
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /ready", s.handleReady)
	now := func() time.Time { return s.now() }
	prom := &promapi.API{
		Engine: s.engine, Parser: s.parser, Queryable: s.queryable, Exemplars: s.store.ExemplarQueryable(), Rules: s.rules, Now: now,
		Gate:      func(h http.HandlerFunc) http.HandlerFunc { return s.gated(h, promapi.Fail) },
		FormError: s.formError, Observe: s.countQueryError,
		Federation: promapi.Federation{ExternalLabels: s.store.ExternalLabels()},
	}
	prom.Register(mux)
	jaeger := &jaegerapi.API{Catalog: s.store, Traces: s.store, Now: now,
		Gate: func(h http.HandlerFunc) http.HandlerFunc { return s.gated(h, jaegerFailAPI) }}
	jaeger.Register(mux)
	weft := &weftapi.API{Store: s.store, Rules: s.rules, Now: now, Query: prom.Query, LogScan: s.logScan}
	weft.Register(mux)
	pages := &statuspage.Pages{Health: s.store, Traces: s.store, Rules: s.rules, Board: &s.board, TelemetryURL: s.cfg.TelemetryURL, Now: now}
	pages.Register(mux)

	var h http.Handler = mux
	h = s.limits(h)
	if s.cfg.Auth.enabled() {
		a := &auth.Authenticator{Token: s.token, Kube: s.kube, Seen: s.authSeen}
		if b := s.cfg.Auth.Basic; b != nil {
			a.Basic = &auth.Basic{Username: b.Username, Password: string(b.Password)}
		}
		h = a.Wrap(h)
	}
	h = s.probesOnly(h)
	return h
}

// Ready is called by the collector once every pipeline has started: every
// receiver's Start returned, so checkpoint stores are open.
func (s *server) Ready() error {
	s.pipelines.Store(true)
	return nil
}

// NotReady is called when the collector begins to stop its pipelines.
func (s *server) NotReady() error {
	s.pipelines.Store(false)
	return nil
}

// handleReady answers the readiness probe: 200 once the server listens over
// its store and the collector's pipelines run, 503 with the reason before
// and from the start of shutdown.
func (s *server) handleReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case !s.ready.Load() || s.store == nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: not serving\n"))
	case !s.pipelines.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: pipelines not running\n"))
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}

// limits rejects bodies over max_request_bytes with 413, bounds the time
// to read a body with read_body_timeout and each request's time with
// timeout.
func (s *server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.HTTP.MaxRequestBodySize {
			http.Error(w, fmt.Sprintf("request body larger than http.max_request_body_size (%d)", s.cfg.HTTP.MaxRequestBodySize), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			if http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.ReadBodyTimeout)) == nil {
				r.Body = limits.DeadlineBody{ReadCloser: r.Body}
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.HTTP.MaxRequestBodySize)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// storeAPIGrace bounds the graceful stop of the StoreAPI server (running
// Series streams finish or are cut), within Shutdown's own context.
const storeAPIGrace = 5 * time.Second

// startStoreAPI serves the Thanos StoreAPI on store_api.endpoint, if set:
// its own grpc.Server and codec (the collector's gRPC receivers keep
// theirs), weft_query's query slots, timeout and credentials.
func (s *server) startStoreAPI(ctx context.Context) error {
	sa := s.cfg.StoreAPI
	if sa.Endpoint == "" {
		return nil
	}
	var extra []grpc.ServerOption
	if tc := sa.TLS.Get(); tc != nil {
		tlsCfg, err := tc.LoadTLSConfig(ctx)
		if err != nil {
			return fmt.Errorf("weft_query: store_api.tls: %w", err)
		}
		extra = append(extra, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", sa.Endpoint)
	if err != nil {
		return fmt.Errorf("weft_query: listen on store_api.endpoint %q: %w", sa.Endpoint, err)
	}
	api := storeapi.New(storeapi.Options{
		Store: s.store, ExternalLabels: s.store.ExternalLabels(), Rules: s.rules, Parser: s.parser,
		Limits: storeapi.Limits{
			MaxRecvMsgSize: sa.MaxRecvMsgSize, MaxMatchers: sa.MaxMatchers, MaxRegexLength: s.cfg.MaxQueryLength,
			MaxSeries: sa.MaxSeriesPerRequest, MaxSamples: sa.MaxSamplesPerRequest,
		},
		Acquire: s.gate.Acquire, Timeout: s.cfg.Timeout, Authorize: s.storeAPIAuth(), Logger: s.logger,
	}, extra...)
	api.Serve(ln)
	s.mu.Lock()
	s.storeAPI, s.storeAPIBound = api, ln.Addr().String()
	s.mu.Unlock()
	s.logger.Info("weft_query StoreAPI listening", zap.String("endpoint", ln.Addr().String()),
		zap.Stringer("external_labels", s.store.ExternalLabels()))
	return nil
}

// storeAPIAuth is how StoreAPI calls are authorized: not at all with
// store_api.allow_unauthenticated, with mTLS (the handshake verified the
// client) or without any credential configured (validation allowed it);
// else the call's authorization metadata against auth, as the HTTP side.
func (s *server) storeAPIAuth() func(context.Context) error {
	sa := s.cfg.StoreAPI
	if sa.AllowUnauthenticated || sa.mTLS() || !s.cfg.Auth.enabled() {
		return nil
	}
	a := &storeapi.Auth{Token: s.token, Kube: s.kube, Seen: s.authSeen}
	if b := s.cfg.Auth.Basic; b != nil {
		a.Basic = &auth.Basic{Username: b.Username, Password: string(b.Password)}
	}
	return a.Authorize
}

// storeAPIAddr is the StoreAPI's listening address (empty when off or
// before Start).
func (s *server) storeAPIAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storeAPIBound
}

// stopStoreAPI stops the StoreAPI server gracefully within storeAPIGrace
// and ctx.
func (s *server) stopStoreAPI(ctx context.Context) {
	s.mu.Lock()
	api := s.storeAPI
	s.storeAPI = nil
	s.mu.Unlock()
	if api == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, storeAPIGrace)
	defer cancel()
	api.Stop(ctx)
}
