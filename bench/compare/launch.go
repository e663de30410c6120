package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// launch writes the child's configuration (cfg is given the health_check
// address), starts weft or the peer (the core build when core is set, else
// the contrib build), waits until health_check answers, records the RSS at
// that moment and starts sampling: the measurement window begins.
func (h *harness) launch(ctx context.Context, name, side string, core bool, cfg func(health string) string, s *sample) (*child, *sampler, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, nil, err
	}
	health := addrs[0]
	path := filepath.Join(h.o.WorkDir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg(health)), 0o600); err != nil {
		return nil, nil, err
	}
	bin := h.o.WeftBin
	if side == sidePeer {
		bin = h.o.PeerContribBin
		if core {
			bin = h.o.PeerCoreBin
		}
	}
	c, err := startChild(h, name, bin, "--config", "file:"+path)
	if err != nil {
		return nil, nil, err
	}
	smp, err := h.ready(ctx, c, "http://"+health+"/", s)
	if err != nil {
		c.stop()
		return nil, nil, err
	}
	return c, smp, nil
}

// ready waits for url, records the ready RSS and starts the sampler.
func (h *harness) ready(ctx context.Context, c *child, url string, s *sample) (*sampler, error) {
	if err := c.waitHTTP(ctx, url, 90*time.Second); err != nil {
		return nil, err
	}
	m, err := c.proc.status("VmRSS")
	if err != nil {
		return nil, err
	}
	s.ReadyRSSMiB = m[0]
	return startSampler(group{c.proc}, h.o.Sample)
}

// finish ends the measurement window of s: CPU and wall seconds since the
// window began, the RSS points, and the peak RSS (VmHWM) of the process;
// of several processes (one side run as two programs), the sum of their
// peaks: what each needs reserved on the node.
func (h *harness) finish(c *child, smp *sampler, s *sample, more ...*child) {
	s.CPUSec, s.WallSec, s.Points = smp.finish()
	for _, p := range s.Points {
		s.PeakAnonMiB = max(s.PeakAnonMiB, p.AnonMiB)
	}
	g := group{c.proc}
	for _, m := range more {
		g = append(g, m.proc)
	}
	if m, err := g.status("VmHWM"); err == nil {
		s.PeakRSSMiB = m[0]
	} else {
		s.Detail += fmt.Sprintf(" (no VmHWM: %v)", err)
	}
}
