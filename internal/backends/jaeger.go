package backends

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/weftobs/weft/internal/loopback"
)

// FindJaeger returns the path of the Jaeger v2 binary: $WEFT_JAEGER when
// it names an executable file, else `jaeger` on PATH. `make tools` builds it with
// hack/build-module-tool.sh.
func FindJaeger() (string, error) { return find("WEFT_JAEGER", "jaeger") }

// Jaeger is a running Jaeger. Every address is host:port on 127.0.0.1.
type Jaeger struct {
	OTLPGRPC   string // OTLP/gRPC receiver
	OTLPHTTP   string // OTLP/HTTP receiver
	JaegerGRPC string // Jaeger gRPC (model.proto) receiver
	ThriftHTTP string // Jaeger thrift over HTTP receiver (/api/traces)
	Zipkin     string // Zipkin receiver (/api/v2/spans)
	Query      string // query service HTTP: /api/*
	QueryGRPC  string // query service gRPC

	proc *process
}

const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp, jaeger, zipkin]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    traces:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    enable_tracing: false # else it exports its own spans to localhost:4317
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

// StartJaeger runs the binary with in-memory storage and a configuration
// written to dir, and waits until its query API answers. ctx bounds the
// start only; stop it with Stop.
func StartJaeger(ctx context.Context, binary, dir string, logOut io.Writer) (*Jaeger, error) {
	j := &Jaeger{}
	err := withFreshPorts(func() error {
		addrs, err := loopback.FreeAddrs(7)
		if err != nil {
			return err
		}
		*j = Jaeger{
			OTLPGRPC: addrs[0], OTLPHTTP: addrs[1], JaegerGRPC: addrs[2], ThriftHTTP: addrs[3],
			Zipkin: addrs[4], Query: addrs[5], QueryGRPC: addrs[6],
		}
		cfg := strings.NewReplacer(
			"{{query}}", j.Query, "{{query_grpc}}", j.QueryGRPC,
			"{{otlp_grpc}}", j.OTLPGRPC, "{{otlp_http}}", j.OTLPHTTP,
			"{{jaeger_grpc}}", j.JaegerGRPC, "{{thrift_http}}", j.ThriftHTTP,
			"{{zipkin}}", j.Zipkin,
		).Replace(jaegerConfig)
		cfgPath := filepath.Join(dir, "jaeger.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return fmt.Errorf("write jaeger config: %w", err)
		}
		// Anything the config does not name binds loopback only; Jaeger's own
		// tracing (which dials localhost:4317, where a weft may listen) is off
		// in the config (enable_tracing) and, belt and braces, in the SDK.
		env := []string{"JAEGER_LISTEN_HOST=" + loopback.Host, "OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=none"}
		j.proc, err = startProcess(ctx, "jaeger", binary, []string{"--config", "file:" + cfgPath}, env, logOut,
			"http://"+j.Query+"/api/services")
		return err
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}

// QueryURL is the base URL of Jaeger's query service (HTTP API and, in
// builds that embed the UI assets, the UI; a build from module source has
// no UI assets).
func (j *Jaeger) QueryURL() string { return "http://" + j.Query }

// Stop ends the process and waits for it. Safe to call twice.
func (j *Jaeger) Stop() { j.proc.stop() }
