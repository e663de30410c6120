package weftpinsextension

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"
)

// fakeClock is a settable clock for the pin set.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// localConfig is a configuration without gossip.
func localConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Gossip.Enabled = false
	return cfg
}

// newLocal returns an unstarted extension without gossip, on a clock.
func newLocal(t *testing.T, mutate func(*Config)) (*Pins, *fakeClock) {
	t.Helper()
	cfg := localConfig()
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	p := newPins(extensiontest.NewNopSettings(componentType), cfg)
	clk := newFakeClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	p.now = clk.Now
	return p, clk
}

// writeKey writes a fresh base64 AES-256 key and returns its path.
func writeKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	p := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600))
	return p
}

// gossipConfig is a fast gossip configuration on a free loopback port.
func gossipConfig(name, keyFile string, join ...string) *Config {
	cfg := createDefaultConfig().(*Config)
	g := &cfg.Gossip
	g.Bind = "127.0.0.1:0"
	g.NodeName = name
	g.SecretKeyFile = keyFile
	g.Join = join
	g.GossipInterval = 20 * time.Millisecond
	g.PushPullInterval = 500 * time.Millisecond
	g.RejoinInterval = 200 * time.Millisecond
	g.LeaveTimeout = time.Second
	return cfg
}

// startNode starts an extension with cfg and stops it at cleanup.
func startNode(t *testing.T, cfg *Config, logger *zap.Logger) *Pins {
	t.Helper()
	require.NoError(t, cfg.Validate())
	set := extensiontest.NewNopSettings(componentType)
	set.ID = component.NewIDWithName(componentType, cfg.Gossip.NodeName)
	if logger != nil {
		set.Logger = logger
	}
	p := newPins(set, cfg)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

// addr is the node's gossip address (ip:port).
func addr(p *Pins) string { return p.gossip.Load().ml.Load().LocalNode().Address() }

// traceID returns a trace ID whose bytes are all b, and n in the last two.
func traceID(b byte, n int) pcommon.TraceID {
	var id pcommon.TraceID
	for i := range id {
		id[i] = b
	}
	id[14], id[15] = byte(n>>8), byte(n)
	return id
}

func newTestQueue() *memberlist.TransmitLimitedQueue {
	return &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 3 }, RetransmitMult: 4}
}

func nopSettings() extension.Settings { return extensiontest.NewNopSettings(componentType) }
