package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/otelcol"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/weftobs/weft/internal/backends"
)

// logRecorder keeps the agent's log entries at warn level and above.
type logRecorder struct {
	mu      sync.Mutex
	entries []string
}

func (r *logRecorder) hook() zap.Option {
	return zap.Hooks(func(e zapcore.Entry) error {
		// gRPC's own connectivity chatter ("[core] ... failed to connect")
		// is about the closed test port, not about the configuration.
		if e.Level >= zapcore.WarnLevel && !strings.HasPrefix(e.Message, "[core]") {
			r.mu.Lock()
			r.entries = append(r.entries, e.Level.String()+": "+e.Message)
			r.mu.Unlock()
		}
		return nil
	})
}

func (r *logRecorder) warnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.entries...)
}

// TestEmbeddedDefaultStartsCleanly runs the DaemonSet profile as shipped and
// expects it to become healthy without a single warning (a deprecated key or
// component alias logs one). The profile binds fixed ports on POD_IP, so the
// test gives it an address of its own in 127.0.0.0/8, and points the
// exporters at a closed loopback port: nothing leaves the machine.
func TestEmbeddedDefaultStartsCleanly(t *testing.T) {
	podIP := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 1+rand.IntN(250))
	t.Setenv("POD_IP", podIP)
	t.Setenv("NODE_NAME", "node-a")
	t.Setenv("WEFT_DATA_DIR", t.TempDir())
	t.Setenv("WEFT_JAEGER_ENDPOINT", "127.0.0.1:9")
	t.Setenv("WEFT_REMOTE_WRITE_URL", "http://127.0.0.1:9/api/v1/write")
	t.Setenv("WEFT_KUBERNETES_API", emptyKubernetesAPI(t))
	t.Setenv("WEFT_ALERTMANAGER_URL", "http://127.0.0.1:9")
	t.Setenv("WEFT_FLUENT_ENDPOINT", "127.0.0.1:9")
	// A rule glob that matches nothing is warned about: the shipped rules.
	t.Setenv("WEFT_RULE_FILES", "../../rules/testdata/deploy/*.rules.yaml")

	var rec logRecorder
	ctx, stop := context.WithCancel(context.Background())
	done, err := startAgent(ctx, defaultConfigURI, rec.hook())
	require.NoError(t, err)
	t.Cleanup(func() { stop(); <-done })
	// Health turns ready after every component started, so start-up
	// complaints are logged by then.
	require.NoError(t, waitHTTP(t.Context(), "http://"+podIP+":13133/", done))
	assert.Empty(t, rec.warnings())
}

// emptyKubernetesAPI serves a Kubernetes API with no pods: lists are empty
// and watches stay open without events. It returns its URL.
func emptyKubernetesAPI(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		_, _ = w.Write([]byte(`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// startAgent runs the collector in this process with the configuration at
// uri (e.g. "file:/path"). The returned channel is closed when it has
// stopped. logOpts are added to the agent's logger (tests hook it).
func startAgent(ctx context.Context, uri string, logOpts ...zap.Option) (<-chan struct{}, error) {
	set := collectorSettings(uri)
	set.DisableGracefulShutdown = true // the test stops it through ctx
	set.LoggingOptions = append(set.LoggingOptions, logOpts...)
	col, err := otelcol.NewCollector(set)
	if err != nil {
		return nil, fmt.Errorf("create agent: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := col.Run(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "weft test agent stopped: %v\n", err)
		}
	}()
	return done, nil
}

// waitHTTP polls url until it answers 200; it fails after 30 s, when the
// context ends or when stopped is closed.
func waitHTTP(ctx context.Context, url string, stopped <-chan struct{}) error {
	return backends.WaitHTTP(ctx, url, 30*time.Second, stopped)
}
