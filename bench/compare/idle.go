package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// idle: the logs pipeline of logs-10k plus an OTLP receiver for traces,
// with an empty log directory and nobody sending.
const idleConfig = `extensions:
  health_check:
    endpoint: {{health}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{otlpgrpc}}
      http:
        endpoint: {{otlphttp}}
{{receiver}}processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
exporters:
  otlp_http:
    endpoint: http://{{sink}}
    compression: none
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [{{rname}}]
      processors: [memory_limiter]
      exporters: [otlp_http]
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [otlp_http]
`

// runIdle measures IdleFor of nothing happening. Items are wall seconds:
// CPU per item is the share of a core used. Sent = received = 0: nothing
// may arrive at the sink.
func runIdle(ctx context.Context, h *harness, side string, s *sample) error {
	name := fmt.Sprintf("%s-%02d-%s", s.Workload, s.Order, side)
	dir := filepath.Join(h.o.WorkDir, name+"-pods")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sink, err := startOTLPSink(1, 1)
	if err != nil {
		return err
	}
	defer sink.close()
	addrs, err := freeAddrs(2)
	if err != nil {
		return err
	}
	recv, rname := logsWeftReceiver, "container_logs"
	if side == sidePeer {
		recv, rname = logsPeerReceiver, "file_log"
	}
	c, smp, err := h.launch(ctx, name, side, false, func(health string) string {
		return replaceAll(idleConfig, "{{receiver}}", recv, "{{rname}}", rname, "{{dir}}", dir, "{{health}}", health,
			"{{otlpgrpc}}", addrs[0], "{{otlphttp}}", addrs[1], "{{sink}}", sink.HTTPAddr)
	}, s)
	if err != nil {
		return err
	}
	defer c.stop()
	select {
	case <-time.After(h.o.IdleFor): // the workload is the passing of time
	case <-c.done:
		return fmt.Errorf("%s exited while idle (see %s)", side, c.logf.Name())
	case <-ctx.Done():
		return ctx.Err()
	}
	h.finish(c, smp, s)
	s.Received = sink.logs.received.Load() + sink.logs.bad.Load() + sink.spans.received.Load() + sink.spans.bad.Load()
	s.Verified = s.Received == 0 && sink.requests.Load() == 0
	s.Items = s.WallSec
	s.Detail = fmt.Sprintf("%d requests at the sink", sink.requests.Load())
	return nil
}
