package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

// child is one collector process (a weft agent or a tailpeer).
type child struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	log     *os.File
	otlp    string // OTLP/HTTP receiver address
	metrics string // self-metrics (Prometheus pull) address
}

// startChild writes cfg to dir/<name>.yaml, starts bin with it (stdout
// and stderr to dir/<name>.log) and waits until its OTLP/HTTP receiver
// accepts a request.
func startChild(ctx context.Context, dir, name, bin, cfg, otlp, metrics string) (*child, error) {
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	c := &child{name: name, log: log, otlp: otlp, metrics: metrics, done: make(chan struct{})}
	c.cmd = exec.Command(bin, "--config", "file:"+cfgPath)
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		c.stop()
		return nil, fmt.Errorf("%s: %w (log: %s)", name, err, log.Name())
	}
	return c, nil
}

// waitReady posts an empty OTLP/HTTP trace request every 100 ms until
// one is answered 200.
func (c *child) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.otlp+"/v1/traces", bytes.NewReader(nil))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.done:
			return errors.New("exited before its OTLP receiver was ready")
		case <-ctx.Done():
			return fmt.Errorf("OTLP receiver at %s not ready: %w", c.otlp, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, kills the process after 30 s, and waits for it.
func (c *child) stop() {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	_ = c.log.Close()
}

// scrape returns the child's self-metrics in the Prometheus text format.
func (c *child) scrape(ctx context.Context) (metricsText, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.metrics+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s self-metrics: %w", c.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s self-metrics: %s", c.name, resp.Status)
	}
	return metricsText(b), nil
}

// procKiB is a field of /proc/<pid>/status in KiB: "VmRSS:" (resident
// now) or "VmHWM:" (peak resident).
func (c *child) procKiB(field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", c.cmd.Process.Pid, field)
}

// cpuSeconds is the process's utime+stime so far.
func (c *child) cpuSeconds() (float64, error) {
	pid := c.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields after it start
	// at state (field 3), so utime (14) and stime (15) are at 11 and 12.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return float64(ut+st) / float64(clockTicks()), nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times.
var clockTicks = sync.OnceValue(func() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n
		}
	}
	return 100
})

// cpuAll returns each child's CPU seconds so far.
func cpuAll(cs []*child) ([]float64, error) {
	out := make([]float64, len(cs))
	for i, c := range cs {
		var err error
		if out[i], err = c.cpuSeconds(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// metricsText is a Prometheus text exposition.
type metricsText string

// sum adds the samples of a metric whose labels include every pair of
// labels. Names compare after dots become underscores and a "_total"
// suffix is cut, so `weft_pins.gossip_bytes` matches the counter however
// the exporter escapes and suffixes it. found is false when no sample
// matched.
func (t metricsText) sum(name string, labels map[string]string) (v float64, found bool) {
	for line := range strings.Lines(string(t)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		key, val := line[:sp], line[sp+1:]
		var metric, lbls string
		switch {
		case strings.HasPrefix(key, `{"`): // a UTF-8 name, quoted inside the braces
			end := strings.IndexByte(key[2:], '"')
			if end < 0 {
				continue
			}
			metric, lbls = key[2:2+end], key[2+end+1:]
		case strings.IndexByte(key, '{') >= 0:
			i := strings.IndexByte(key, '{')
			metric, lbls = key[:i], key[i:]
		default:
			metric = key
		}
		metric = strings.TrimSuffix(strings.ReplaceAll(metric, ".", "_"), "_total")
		if metric != strings.ReplaceAll(name, ".", "_") {
			continue
		}
		ok := true
		for k, want := range labels {
			if !strings.Contains(lbls, k+`="`+want+`"`) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		v += f
		found = true
	}
	return v, found
}

// must is sum for a metric that has to be there.
func (t metricsText) must(name string, labels map[string]string) (float64, error) {
	v, ok := t.sum(name, labels)
	if !ok {
		return 0, fmt.Errorf("self-metric %s%v not exposed", name, labels)
	}
	return v, nil
}

// render fills a config template.
func render(text string, data any) (string, error) {
	tpl, err := template.New("config").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tpl.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}
