package weftpinsextension

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/backoff"
)

// joinLoop joins the peers named by gossip::join, retrying with backoff
// until one answers, then checks every rejoin_interval whether this node
// is alone again (all peers gone, a network split healed) and rejoins.
func (g *gossip) joinLoop(ctx context.Context) {
	if len(g.cfg.Join) == 0 {
		return
	}
	bo := backoff.Backoff{Max: g.cfg.RejoinInterval}
	var lastLog time.Time
	failures := 0
	for ctx.Err() == nil {
		n, err := g.joinOnce(ctx)
		if n > 0 && g.members() > 1 {
			g.log.Info("weft_pins: joined the gossip cluster", zap.Int("members", g.members()), zap.Int("failed_attempts", failures))
			failures = 0
			bo.Reset()
			for g.members() > 1 {
				if !backoff.Sleep(ctx, g.cfg.RejoinInterval) {
					return
				}
			}
			g.log.Info("weft_pins: alone in the gossip cluster; joining again")
			continue
		}
		failures++
		if now := time.Now(); now.Sub(lastLog) >= joinLogInterval {
			lastLog = now
			g.log.Warn("weft_pins: could not join the gossip cluster; retrying (logged at most once a minute)",
				zap.Strings("join", g.cfg.Join), zap.Int("attempts", failures), zap.Error(err))
		}
		if !backoff.Sleep(ctx, bo.Next()) {
			return
		}
	}
}

// joinOnce resolves the join addresses and contacts up to joinSample of
// them, one at a time, stopping at the first that answers.
func (g *gossip) joinOnce(ctx context.Context) (int, error) {
	addrs, err := g.resolve(ctx)
	ml := g.ml.Load()
	if len(addrs) == 0 {
		if err == nil {
			err = errors.New("no peer address resolved (this node may be the first)")
		}
		return 0, err
	}
	self := ml.LocalNode().Address()
	var errs []error
	tried := 0
	for _, a := range addrs {
		if a == self {
			continue
		}
		if ctx.Err() != nil || tried == joinSample {
			break
		}
		tried++
		n, jerr := ml.Join([]string{a})
		if n > 0 {
			return n, nil
		}
		errs = append(errs, jerr)
	}
	if tried == 0 {
		errs = append(errs, errors.New("only this node's own address resolved"))
	}
	return 0, errors.Join(append(errs, err)...)
}

// resolve turns gossip::join into ip:port addresses, in a random order
// (each entry resolved afresh, so a DaemonSet's headless Service names
// the pods running now). Entries that fail to resolve are skipped.
func (g *gossip) resolve(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, tcpTimeout)
	defer cancel()
	_, defPort, _ := splitHostPort(g.cfg.Bind, false)
	var out []string
	var errs []error
	for _, j := range g.cfg.Join {
		switch {
		case strings.HasPrefix(j, prefixDNSSRV):
			name := strings.TrimPrefix(j, prefixDNSSRV)
			srvs, err := g.lookupSRV(ctx, name)
			if err != nil {
				errs = append(errs, fmt.Errorf("resolve %s: %w", j, err))
				continue
			}
			for _, s := range srvs {
				ips, err := g.hostIPs(ctx, strings.TrimSuffix(s.Target, "."))
				if err != nil {
					errs = append(errs, fmt.Errorf("resolve %s: %w", s.Target, err))
					continue
				}
				for _, ip := range ips {
					out = append(out, net.JoinHostPort(ip, strconv.Itoa(int(s.Port))))
				}
			}
		default:
			host, port, err := splitHostPort(strings.TrimPrefix(j, prefixDNS), true)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if port == 0 {
				port = defPort
			}
			ips, err := g.hostIPs(ctx, host)
			if err != nil {
				errs = append(errs, fmt.Errorf("resolve %s: %w", j, err))
				continue
			}
			for _, ip := range ips {
				out = append(out, net.JoinHostPort(ip, strconv.Itoa(port)))
			}
		}
	}
	shuffle(out)
	return out, errors.Join(errs...)
}

func (g *gossip) hostIPs(ctx context.Context, host string) ([]string, error) {
	if net.ParseIP(host) != nil {
		return []string{host}, nil
	}
	return g.lookupHost(ctx, host)
}

func shuffle(s []string) {
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}
