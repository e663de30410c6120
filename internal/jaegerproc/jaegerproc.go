// Package jaegerproc runs a real Jaeger v2 binary on free loopback ports, for
// the demo and for integration tests. Jaeger's own all-in-one configuration
// binds fixed ports (4317, 16686, 8888, ...); this package writes a
// configuration in which every endpoint is a free port on 127.0.0.1.
package jaegerproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/weftobs/weft/internal/loopback"
)

// Find returns the path of the Jaeger binary: $WEFT_JAEGER when set, else
// `jaeger` on PATH. The error says how to install it.
func Find() (string, error) {
	if p := os.Getenv("WEFT_JAEGER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("jaeger")
	if err != nil {
		return "", errors.New("jaeger binary not found: run `make tools` (builds it with hack/install-jaeger.sh) " +
			"and put its directory on PATH, or set WEFT_JAEGER")
	}
	return p, nil
}

// Jaeger is a running Jaeger process. Every address is host:port on 127.0.0.1.
type Jaeger struct {
	OTLPGRPC   string // OTLP/gRPC receiver
	OTLPHTTP   string // OTLP/HTTP receiver
	JaegerGRPC string // Jaeger gRPC (model.proto) receiver
	ThriftHTTP string // Jaeger thrift over HTTP receiver (/api/traces)
	Zipkin     string // Zipkin receiver (/api/v2/spans)
	Query      string // query service HTTP: UI and /api/*
	QueryGRPC  string // query service gRPC

	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

const configTemplate = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp, jaeger, zipkin]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: {{query}}
    grpc:
      endpoint: {{query_grpc}}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{otlp_grpc}}
      http:
        endpoint: {{otlp_http}}
  jaeger:
    protocols:
      grpc:
        endpoint: {{jaeger_grpc}}
      thrift_http:
        endpoint: {{thrift_http}}
  zipkin:
    endpoint: {{zipkin}}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// Start runs the binary with a configuration written to dir and waits until
// its query API answers. Output of the process goes to logOut (may be nil).
// Stop it with Stop; ctx only bounds the start.
func Start(ctx context.Context, binary, dir string, logOut io.Writer) (*Jaeger, error) {
	addrs, err := loopback.FreeAddrs(7)
	if err != nil {
		return nil, err
	}
	j := &Jaeger{
		OTLPGRPC: addrs[0], OTLPHTTP: addrs[1], JaegerGRPC: addrs[2], ThriftHTTP: addrs[3],
		Zipkin: addrs[4], Query: addrs[5], QueryGRPC: addrs[6],
		done: make(chan struct{}),
	}
	cfg := strings.NewReplacer(
		"{{query}}", j.Query, "{{query_grpc}}", j.QueryGRPC,
		"{{otlp_grpc}}", j.OTLPGRPC, "{{otlp_http}}", j.OTLPHTTP,
		"{{jaeger_grpc}}", j.JaegerGRPC, "{{thrift_http}}", j.ThriftHTTP,
		"{{zipkin}}", j.Zipkin,
	).Replace(configTemplate)
	cfgPath := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write jaeger config: %w", err)
	}

	j.cmd = exec.Command(binary, "--config", "file:"+cfgPath)
	// Belt and braces: anything the config does not name binds loopback only,
	// and Jaeger's own tracing (which dials localhost:4317 by default, where a
	// weft may listen) is off.
	j.cmd.Env = append(os.Environ(), "JAEGER_LISTEN_HOST="+loopback.Host,
		"OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none")
	j.cmd.Stdout = logOut
	j.cmd.Stderr = logOut
	if err := j.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start jaeger %s: %w", binary, err)
	}
	go func() {
		j.waitErr = j.cmd.Wait()
		close(j.done)
	}()
	if err := j.waitReady(ctx); err != nil {
		_ = j.Stop()
		return nil, err
	}
	return j, nil
}

func (j *Jaeger) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	url := "http://" + j.Query + "/api/services"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-j.done:
			return fmt.Errorf("jaeger exited before it was ready: %v", j.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("jaeger query API %s not ready: %w", url, ctx.Err())
		case <-tick.C:
		}
	}
}

// QueryURL is the base URL of Jaeger's query service (HTTP API and, in
// builds that embed the UI assets, the UI; a build from module source has
// no UI assets).
func (j *Jaeger) QueryURL() string { return "http://" + j.Query }

// Stop ends the process and waits for it. Safe to call twice.
func (j *Jaeger) Stop() error {
	j.stopOnce.Do(func() {
		_ = j.cmd.Process.Signal(os.Interrupt)
		select {
		case <-j.done:
		case <-time.After(10 * time.Second):
			_ = j.cmd.Process.Kill()
			<-j.done
		}
	})
	return nil
}
