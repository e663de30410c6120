package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is the kernel's clock ticks per second (`getconf CLK_TCK`), the
// unit of utime and stime in /proc/<pid>/stat.
func clockTicks() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// parseStatCPU returns utime+stime in clock ticks from the text of
// /proc/<pid>/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no ')' in stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat has %d fields after the name", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return ut + st, nil
}

// parseStatusKiB returns a "Name:   123 kB" field of /proc/<pid>/status.
func parseStatusKiB(b []byte, field string) (int, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in status", field)
}

// procReader reads one process's CPU time and memory.
type procReader struct {
	pid    int
	clkTck int
}

// cpu is utime+stime in seconds.
func (p procReader) cpu() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0, err
	}
	t, err := parseStatCPU(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", p.pid, err)
	}
	return float64(t) / float64(p.clkTck), nil
}

// status returns the named /proc/<pid>/status fields in MiB.
func (p procReader) status(fields ...string) ([]float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(fields))
	for i, f := range fields {
		kib, err := parseStatusKiB(b, f)
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/status: %w", p.pid, err)
		}
		out[i] = float64(kib) / 1024
	}
	return out, nil
}

// point is one reading of the sampler: seconds since the window began, CPU
// seconds used since then, resident set in MiB.
type point struct {
	T       float64 `json:"t_s"`
	CPU     float64 `json:"cpu_s"`
	RSSMiB  float64 `json:"rss_mib"`
	AnonMiB float64 `json:"rss_anon_mib"` // heap, stacks: RSS without the binary's pages
}

// MarshalJSON writes a point as [t_s, cpu_s, rss_mib, rss_anon_mib],
// rounded to what the sampler resolves (1 ms, 10 ms of CPU at 100 ticks a
// second, 0.01 MiB): a full run holds ~20,000 points, which as objects with
// every float's 17 digits made samples.json 1.8 MB, over what the
// repository tracks (hack/check-tracked.sh).
func (p point) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, v := range [4]struct {
		x    float64
		prec int
	}{{p.T, 3}, {p.CPU, 2}, {p.RSSMiB, 2}, {p.AnonMiB, 2}} {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, v.x, 'f', v.prec, 64)
		b = bytes.TrimRight(b, "0")
		b = bytes.TrimSuffix(b, []byte{'.'})
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads the array form and, for samples.json files written
// before it, the object form.
func (p *point) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		type object point // no methods: the default decoding
		return json.Unmarshal(b, (*object)(p))
	}
	var a []float64
	if err := json.Unmarshal(b, &a); err != nil || len(a) != 4 {
		return fmt.Errorf("point: want [t_s, cpu_s, rss_mib, rss_anon_mib], got %.40s", b)
	}
	p.T, p.CPU, p.RSSMiB, p.AnonMiB = a[0], a[1], a[2], a[3]
	return nil
}

// group is the processes that serve one side (weft alone; the contrib
// collector and Prometheus that nominal's peer runs side by side; the
// sidecar and its Prometheus): CPU and memory are their sums.
type group []procReader

func (g group) rssMiB() (float64, error) {
	m, err := g.status("VmRSS")
	if err != nil {
		return 0, err
	}
	return m[0], nil
}

func (g group) cpu() (float64, error) {
	var sum float64
	for _, p := range g {
		c, err := p.cpu()
		if err != nil {
			return 0, err
		}
		sum += c
	}
	return sum, nil
}

// status returns the named /proc/<pid>/status fields in MiB, each summed
// over the group.
func (g group) status(fields ...string) ([]float64, error) {
	out := make([]float64, len(fields))
	for _, p := range g {
		m, err := p.status(fields...)
		if err != nil {
			return nil, err
		}
		for i, v := range m {
			out[i] += v
		}
	}
	return out, nil
}

// sampler reads the CPU and VmRSS of a group of processes (summed) at a
// fixed interval from the start of a measurement window until stopped.
type sampler struct {
	p      group
	t0     time.Time
	cpu0   float64
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	points []point
	once   sync.Once
}

// startSampler begins a window now: CPU is counted from this moment.
func startSampler(p group, every time.Duration) (*sampler, error) {
	c, err := p.cpu()
	if err != nil {
		return nil, err
	}
	s := &sampler{p: p, t0: time.Now(), cpu0: c, stop: make(chan struct{}), done: make(chan struct{})}
	s.read()
	go poll(every, s.stop, s.done, s.read)
	return s, nil
}

// poll calls read at every tick until stop is closed, then closes done.
func poll(every time.Duration, stop <-chan struct{}, done chan<- struct{}, read func()) {
	defer close(done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			read()
		}
	}
}

func (s *sampler) read() {
	c, err := s.p.cpu()
	if err != nil {
		return
	}
	m, err := s.p.status("VmRSS", "RssAnon")
	if err != nil {
		return
	}
	now := time.Now()
	s.mu.Lock()
	s.points = append(s.points, point{T: now.Sub(s.t0).Seconds(), CPU: c - s.cpu0, RSSMiB: m[0], AnonMiB: m[1]})
	s.mu.Unlock()
}

// finish ends the window: a last reading, then the CPU seconds and wall
// seconds of the window and every point taken.
func (s *sampler) finish() (cpu, wall float64, pts []point) {
	s.once.Do(func() { close(s.stop); <-s.done; s.read() })
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.points) == 0 {
		return 0, 0, nil
	}
	last := s.points[len(s.points)-1]
	return last.CPU, last.T, append([]point(nil), s.points...)
}

// restart begins the window again from now (CPU and time), dropping the
// points taken so far.
func (s *sampler) restart() {
	c, err := s.p.cpu()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.cpu0 = c
	}
	s.t0 = time.Now()
	s.points = s.points[:0]
}
