package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// logTree writes CRI-format container logs into a /var/log/pods-style tree
// (<dir>/<ns>_<pod>_<uid>/<container>/0.log) and rotates them the way the
// kubelet does: at RotateBytes the file is renamed to
// 0.log.<YYYYMMDD-hhmmss.micro> and a new 0.log is created; only the newest
// RotateKeep rotated files are kept. (The kubelet also gzips all but the
// newest rotated file; neither reader follows .gz files, so this does not.)
type logTree struct {
	dir      string
	files    []*containerLog
	lineLen  int
	rotate   int64
	keep     int
	seq      int64
	rotation int
}

type containerLog struct {
	dir     string
	f       *os.File
	size    int64
	rotated []string
	buf     []byte
}

func newLogTree(dir string, files, lineLen int, rotate int64, keep int) (*logTree, error) {
	t := &logTree{dir: dir, lineLen: lineLen, rotate: rotate, keep: keep}
	for i := range files {
		pod := fmt.Sprintf("bench_load-%d-7d9f8b6c5-x2k4p_%08x-1b2c-4d3e-8f40-%012x", i, i+1, i+1)
		cdir := filepath.Join(dir, pod, "app")
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(filepath.Join(cdir, "0.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		t.files = append(t.files, &containerLog{dir: cdir, f: f})
	}
	return t, nil
}

// line appends one CRI line carrying item number seq to b:
// "<RFC3339Nano> stdout F seq=<n> <text>", padded to lineLen with the newline.
func appendLine(b []byte, ts string, seq int64, lineLen int) []byte {
	start := len(b)
	b = append(b, ts...)
	b = append(b, " stdout F seq="...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, ` level=info caller=handler.go:112 msg="GET /api/v1/items/{id}" status=200 duration_ms=12.4 user_agent="bench/1.0" `...)
	for len(b)-start < lineLen-1 {
		b = append(b, 'x')
	}
	return append(b, '\n')
}

// write appends n lines spread over the files (round robin, one write per
// file), rotating any file that reached its size limit.
func (t *logTree) write(n int) error {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for _, c := range t.files {
		c.buf = c.buf[:0]
	}
	for range n {
		c := t.files[t.seq%int64(len(t.files))]
		c.buf = appendLine(c.buf, ts, t.seq, t.lineLen)
		t.seq++
	}
	for _, c := range t.files {
		if len(c.buf) == 0 {
			continue
		}
		if _, err := c.f.Write(c.buf); err != nil {
			return err
		}
		c.size += int64(len(c.buf))
		if t.rotate > 0 && c.size >= t.rotate {
			if err := t.rotateFile(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *logTree) rotateFile(c *containerLog) error {
	if err := c.f.Close(); err != nil {
		return err
	}
	cur := filepath.Join(c.dir, "0.log")
	name := cur + "." + time.Now().UTC().Format("20060102-150405.000000")
	if err := os.Rename(cur, name); err != nil {
		return err
	}
	c.rotated = append(c.rotated, name)
	for len(c.rotated) > t.keep {
		if err := os.Remove(c.rotated[0]); err != nil {
			return err
		}
		c.rotated = c.rotated[1:]
	}
	f, err := os.OpenFile(cur, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	c.f, c.size = f, 0
	t.rotation++
	return nil
}

func (t *logTree) close() {
	for _, c := range t.files {
		_ = c.f.Close()
	}
}

// The same pipeline on both sides except the receiver: OTLP/HTTP out,
// uncompressed, exporter defaults otherwise (sending queue on).
const logsWeftReceiver = `  container_logs:
    include: [{{dir}}/*/*/*.log]
    start_at: beginning
`

const logsPeerReceiver = `  file_log:
    include: [{{dir}}/*/*/*.log]
    start_at: beginning
    include_file_path: true
    operators:
      - type: container
        format: containerd
`

const logsConfig = `extensions:
  health_check:
    endpoint: {{health}}
receivers:
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
`

func logsChildConfig(side, dir, health, sinkHTTP string) string {
	recv, rname := logsWeftReceiver, "container_logs"
	if side == sidePeer {
		recv, rname = logsPeerReceiver, "file_log"
	}
	return replaceAll(logsConfig, "{{receiver}}", recv, "{{rname}}", rname, "{{dir}}", dir,
		"{{health}}", health, "{{sink}}", sinkHTTP)
}

func runLogsPaced(ctx context.Context, h *harness, side string, s *sample) error {
	return runLogs(ctx, h, side, s, h.o.LogLines, h.o.LogRate, 0)
}

func runLogsMax(ctx context.Context, h *harness, side string, s *sample) error {
	return runLogs(ctx, h, side, s, h.o.LogMaxLines, 0, h.o.LogMaxAhead)
}

// runLogs writes lines into fresh files at rate lines/s (rate 0: as fast as
// the side keeps up, at most ahead lines beyond what the sink received),
// then waits until the sink holds every line.
func runLogs(ctx context.Context, h *harness, side string, s *sample, lines, rate, ahead int) error {
	name := fmt.Sprintf("%s-%02d-%s", s.Workload, s.Order, side)
	dir := filepath.Join(h.o.WorkDir, name+"-pods")
	tree, err := newLogTree(dir, h.o.LogFiles, h.o.LogLineBytes, h.o.RotateBytes, h.o.RotateKeep)
	if err != nil {
		return err
	}
	defer tree.close()
	defer os.RemoveAll(dir)
	sink, err := startOTLPSink(int64(lines), 1)
	if err != nil {
		return err
	}
	defer sink.close()
	c, smp, err := h.launch(ctx, name, side, false, func(health string) string {
		return logsChildConfig(side, dir, health, sink.HTTPAddr)
	}, s)
	if err != nil {
		return err
	}
	defer c.stop()

	const tick = 10 * time.Millisecond
	start := time.Now()
	written := 0
	for written < lines {
		if c.exited() {
			return fmt.Errorf("%s exited while lines were written (see %s)", side, c.logf.Name())
		}
		var n int
		if rate > 0 {
			due := int(time.Since(start).Seconds() * float64(rate))
			n = min(due, lines) - written
			if n <= 0 {
				time.Sleep(tick)
				continue
			}
		} else {
			backlog := written - int(sink.logs.received.Load())
			if backlog >= ahead {
				time.Sleep(2 * time.Millisecond) // pacing the writer, not waiting for a result
				continue
			}
			n = min(ahead-backlog, 2000, lines-written)
		}
		if err := tree.write(n); err != nil {
			return err
		}
		written += n
	}
	sendSec := time.Since(start).Seconds()
	err = c.waitFor(ctx, h.o.DrainTimeout, func() bool { return sink.logs.received.Load() >= int64(lines) },
		func() string { return fmt.Sprintf("%d of %d lines received", sink.logs.received.Load(), lines) })
	h.finish(c, smp, s)
	s.Sent, s.Received = int64(lines), sink.logs.received.Load()
	s.Duplicates, s.Invalid = sink.logs.dups.Load(), sink.logs.bad.Load()
	s.Verified = err == nil && sink.logs.complete(int64(lines))
	s.Items = float64(lines)
	s.Detail = fmt.Sprintf("written in %.1f s (%.0f lines/s), %d rotations", sendSec, float64(lines)/sendSec, tree.rotation)
	if err != nil {
		s.Detail += "; " + err.Error()
	}
	return nil
}
