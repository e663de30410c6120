// Package storeapi serves a weft_store over the Thanos StoreAPI (gRPC):
// Info, Store (Series, LabelNames, LabelValues), Rules and Exemplars, with
// the store's external labels added at this edge as a Thanos sidecar adds
// Prometheus's. A stock Thanos Query fans out over every node's agent.
//
// The messages are Thanos v0.42.4's generated types. Two of Thanos's own
// helpers are avoided on purpose: labelpb's unsafe label converters
// assume Thanos's slicelabels build of Prometheus labels (labels here are
// built with Range), and pkg/extgrpc replaces the process-wide gRPC
// "proto" codec (the server here forces its own codec instead).
package storeapi

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/thanos-io/thanos/pkg/exemplars/exemplarspb"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/rules/rulespb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftobs/weft/internal/rulesapi"
)

// Store is the metrics store served: weft_store's Store implements it.
type Store interface {
	// ChunkQueryable returns series with their stored chunks.
	ChunkQueryable() storage.ChunkQueryable
	// ExemplarQueryable returns the exemplar storage.
	ExemplarQueryable() storage.ExemplarQueryable
	// TimeRange is the oldest and newest sample time (ms); mint > maxt
	// when the store is empty.
	TimeRange() (mint, maxt int64, err error)
}

// Limits bound what one request may ask and cost. Zero fields take the
// defaults below.
type Limits struct {
	// MaxRecvMsgSize bounds a request message in bytes (default 4 MiB).
	MaxRecvMsgSize int
	// MaxMatchers bounds the label matchers of a request, or of one
	// selector of an exemplars query (default 64).
	MaxMatchers int
	// MaxRegexLength bounds a regular-expression matcher's value in bytes,
	// and an exemplars query's length (default 16384).
	MaxRegexLength int
	// MaxSeries bounds the series one Series request streams (default
	// 100000, weft_store's max_series).
	MaxSeries int
	// MaxSamples bounds the samples in the chunks one Series request
	// streams (default 50000000).
	MaxSamples int
}

// Defaults of Limits.
const (
	DefaultMaxRecvMsgSize = 4 << 20
	DefaultMaxMatchers    = 64
	DefaultMaxRegexLength = 16 << 10
	DefaultMaxSeries      = 100_000
	// DefaultMaxSamples: a node's 100k series at one sample per 15s over
	// the 30m window are 12M samples; four times that leaves room for
	// faster scrapes and is still about 75 MB of chunks on the wire.
	DefaultMaxSamples = 50_000_000
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxRecvMsgSize, DefaultMaxRecvMsgSize)
	def(&l.MaxMatchers, DefaultMaxMatchers)
	def(&l.MaxRegexLength, DefaultMaxRegexLength)
	def(&l.MaxSeries, DefaultMaxSeries)
	def(&l.MaxSamples, DefaultMaxSamples)
	return l
}

// Options configure a Server.
type Options struct {
	Store          Store
	ExternalLabels labels.Labels   // added to every series, rule, alert and exemplar series
	Rules          rulesapi.Source // nil: Rules answers no groups
	// Parser parses the exemplar queries and rule matchers (weft_query's,
	// bounded by max_query_length and max_query_nodes). Nil: Prometheus's.
	Parser parser.Parser
	Limits Limits
	// Acquire takes one of the query slots that Series, LabelNames,
	// LabelValues and Exemplars run in (weft_query's); release gives it
	// back. Its errors answer ResourceExhausted. Nil: no slots.
	Acquire func(ctx context.Context) (release func(), err error)
	// Timeout is each call's deadline (0: none but the client's).
	Timeout time.Duration
	// Authorize checks a call's credentials; a non-nil error (a gRPC
	// status) refuses it. Nil: every call is allowed.
	Authorize func(ctx context.Context) error
	Logger    *zap.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// Server serves the StoreAPI over one store.
type Server struct {
	opts   Options
	limits Limits
	ext    extLabels

	grpc  *grpc.Server
	calls calls         // finished calls by method and status code
	addr  string        // the listener's address, set by Serve
	done  chan struct{} // closed when Serve returns

	// onBuild, in tests, is called when a series' chunks have been read.
	onBuild func()
}

// New returns a server; Serve starts it.
func New(opts Options, extra ...grpc.ServerOption) *Server {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Parser == nil {
		opts.Parser = parser.NewParser(parser.Options{})
	}
	s := &Server{opts: opts, limits: opts.Limits.withDefaults(), ext: newExtLabels(opts.ExternalLabels)}
	sopts := append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(codec{}),
		grpc.MaxRecvMsgSize(s.limits.MaxRecvMsgSize),
		grpc.ChainUnaryInterceptor(s.unaryGuard),
		grpc.ChainStreamInterceptor(s.streamGuard),
	}, extra...)
	s.grpc = grpc.NewServer(sopts...)
	infopb.RegisterInfoServer(s.grpc, infoServer{s})
	storepb.RegisterStoreServer(s.grpc, storeServer{s})
	rulespb.RegisterRulesServer(s.grpc, rulesServer{s})
	exemplarspb.RegisterExemplarsServer(s.grpc, exemplarsServer{s})
	return s
}

// Serve serves on ln in the background until Stop.
func (s *Server) Serve(ln net.Listener) {
	s.addr = ln.Addr().String()
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.opts.Logger.Error("StoreAPI server stopped", zap.Error(err))
		}
	}()
}

// Addr is the address Serve serves on ("" before).
func (s *Server) Addr() string { return s.addr }

// Stop stops accepting calls and waits for the running ones until ctx
// ends; then it cuts them. Safe without Serve and twice.
func (s *Server) Stop(ctx context.Context) {
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
		<-stopped
	}
	if s.done != nil {
		<-s.done
	}
}

// dataMethods run in a query slot.
var dataMethods = map[string]bool{
	"/thanos.Store/Series":        true,
	"/thanos.Store/LabelNames":    true,
	"/thanos.Store/LabelValues":   true,
	"/thanos.Exemplars/Exemplars": true,
}

// admit authorizes a call, sets its deadline and, for data methods, takes
// a query slot. The returned done must be called when the call ends.
func (s *Server) admit(ctx context.Context, method string) (context.Context, func(), error) {
	if s.opts.Authorize != nil {
		if err := s.opts.Authorize(ctx); err != nil {
			return ctx, nil, err
		}
	}
	cancel := func() {}
	if s.opts.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, s.opts.Timeout)
	}
	if !dataMethods[method] || s.opts.Acquire == nil {
		return ctx, cancel, nil
	}
	release, err := s.opts.Acquire(ctx)
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return ctx, nil, status.FromContextError(ctx.Err()).Err()
		}
		return ctx, nil, status.Errorf(codes.ResourceExhausted, "no query slot free (weft_query max_concurrent_queries, max_queued_queries, queue_timeout): %v", err)
	}
	return ctx, func() { release(); cancel() }, nil
}

func (s *Server) unaryGuard(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() { s.calls.count(info.FullMethod, err) }()
	ctx, done, err := s.admit(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	defer done()
	return h(ctx, req)
}

func (s *Server) streamGuard(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() { s.calls.count(info.FullMethod, err) }()
	ctx, done, err := s.admit(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	defer done()
	return h(srv, ctxStream{ServerStream: ss, ctx: ctx})
}

// ctxStream is a server stream with the context admit made.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c ctxStream) Context() context.Context { return c.ctx }

// ctxErr is the status of a call whose context ended.
func ctxErr(ctx context.Context) error { return status.FromContextError(ctx.Err()).Err() }
