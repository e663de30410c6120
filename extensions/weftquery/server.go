package weftquery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
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
	"go.uber.org/zap/exp/zapslog"

	"github.com/weftobs/weft/extensions/weftstore"
	"github.com/weftobs/weft/internal/rulesapi"
)

// server is the weft_query extension: one HTTP server with the Prometheus,
// Jaeger, correlation and log APIs over a weft_store.
type server struct {
	cfg    *Config
	tel    component.TelemetrySettings
	logger *zap.Logger
	now    func() time.Time

	store     *weftstore.Store
	queryable storage.Queryable // the store's; tests set a wrapper before Start
	rules     rulesapi.Source   // nil: no rules engine
	engine    *promql.Engine
	parser    parser.Parser

	gate        *queryGate
	conns       *connLimitListener // nil before Start
	refused     counters           // requests refused by a bound, by reason
	interrupted counters           // queries cut short, by reason
	logScan     int                // records observed_since examines at most
	telReg      metric.Registration

	token     string      // bearer token (from bearer_token or bearer_token_file)
	kube      *kubeAuth   // nil without auth.kubernetes
	authSeen  counters    // auth decisions, by result
	ready     atomic.Bool // listening, store found
	pipelines atomic.Bool // the collector reported its pipelines running

	mu      sync.Mutex
	srv     *http.Server
	bound   string // the listener's address once started
	serveWG sync.WaitGroup
}

var (
	_ extensioncapabilities.Dependent       = (*server)(nil)
	_ extensioncapabilities.PipelineWatcher = (*server)(nil)
	_ component.Component                   = (*server)(nil)
)

func newServer(set component.TelemetrySettings, cfg *Config) *server {
	return &server{
		cfg: cfg, tel: set, logger: set.Logger, now: time.Now,
		gate:    newQueryGate(cfg.MaxConcurrentQueries, cfg.MaxQueuedQueries, cfg.QueueTimeout),
		refused: newCounters(refusalReasons), interrupted: newCounters(interruptedReasons),
		logScan: maxObservedScan, authSeen: newCounters(authResults),
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

// Start finds the store (and rules source), loads credentials and TLS, binds
// the endpoint and serves in the background.
func (s *server) Start(ctx context.Context, host component.Host) error {
	st, err := weftstore.FromHost(host, s.cfg.Store)
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
	if s.cfg.TLS != nil {
		if tlsCfg, err = s.cfg.TLS.LoadTLSConfig(ctx); err != nil {
			return fmt.Errorf("weft_query: tls: %w", err)
		}
	}
	if s.cfg.Auth.Kubernetes.Enabled && s.kube == nil {
		if s.kube, err = newKubeAuth(s.cfg.Auth.Kubernetes, s.logger); err != nil {
			return fmt.Errorf("weft_query: auth.kubernetes: %w", err)
		}
	}
	s.store, s.rules, s.token = st, rules, token
	if s.queryable == nil {
		s.queryable = st.Queryable()
	}
	s.initEngine()

	tcp, err := net.Listen("tcp", s.cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("weft_query: listen on endpoint %q: %w", s.cfg.Endpoint, err)
	}
	conns := newConnLimitListener(tcp, s.cfg.MaxConnections)
	var ln net.Listener = conns
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	if err := s.registerTelemetry(); err != nil {
		_ = ln.Close()
		return fmt.Errorf("weft_query: telemetry: %w", err)
	}
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		// No ReadTimeout (headers and body together): the body has its own
		// read_body_timeout, counted from the end of the headers (limits).
		WriteTimeout:   s.cfg.ReadBodyTimeout + s.cfg.Timeout + writeGrace,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: 1 << 20,
		ConnContext:    connContext,
		ErrorLog:       zap.NewStdLog(s.logger),
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
	s.ready.Store(true)
	s.logger.Info("weft_query listening", zap.String("endpoint", ln.Addr().String()))
	return nil
}

const (
	// writeGrace is the time an answer may take to write after its request
	// used all of read_body_timeout and timeout; a client that reads slower
	// loses the connection rather than hold it and the answer's memory.
	writeGrace = time.Minute
	// idleTimeout closes keep-alive connections idle this long. It is longer
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

// initEngine creates the PromQL engine and parser. The engine has no
// ActiveQueryTracker: the query gate bounds concurrency.
func (s *server) initEngine() {
	s.parser = boundedParser{Parser: parser.NewParser(parser.Options{}), maxLen: s.cfg.MaxQueryLength, maxNodes: s.cfg.MaxQueryNodes}
	s.engine = promql.NewEngine(promql.EngineOpts{
		Logger:                   slog.New(zapslog.NewHandler(s.logger.Core())),
		MaxSamples:               s.cfg.MaxSamples,
		Timeout:                  s.cfg.Timeout,
		LookbackDelta:            5 * time.Minute,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		Parser:                   s.parser,
	})
}

// Shutdown stops the server and waits for in-flight requests (bounded by
// ctx). Safe without Start and twice.
func (s *server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	if s.kube != nil {
		defer s.kube.close() // idle connections to the API server
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

// handler is the whole HTTP handler: CORS, auth, limits, then the routes.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /ready", s.handleReady)
	s.promRoutes(mux)
	s.jaegerRoutes(mux)
	s.weftRoutes(mux)
	s.statusRoutes(mux)

	var h http.Handler = mux
	h = s.limits(h)
	h = s.authenticate(h)
	h = s.cors(h)
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
		if r.ContentLength > s.cfg.MaxRequestBytes {
			http.Error(w, fmt.Sprintf("request body larger than max_request_bytes (%d)", s.cfg.MaxRequestBytes), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			if http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.ReadBodyTimeout)) == nil {
				r.Body = deadlineBody{r.Body}
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// cors sets CORS headers for allowed origins and answers preflight requests.
// Without allowed_origins it sends none.
func (s *server) cors(next http.Handler) http.Handler {
	allowed := s.cfg.CORS.AllowedOrigins
	if len(allowed) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (slices.Contains(allowed, "*") || slices.Contains(allowed, origin)) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
