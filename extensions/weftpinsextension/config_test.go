package weftpinsextension

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/weftobs/weft/internal/weftest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	minimal := createDefaultConfig().(*Config)
	minimal.Gossip.Bind = "10.1.2.3:7946"
	minimal.Gossip.SecretKeyFile = "/etc/weft/gossip/key"

	full := createDefaultConfig().(*Config)
	full.TTL, full.MaxTTL, full.MaxPins = 20*time.Minute, 2*time.Hour, 50000
	full.Gossip = GossipConfig{
		Enabled: true, Bind: "10.1.2.3:7946", Advertise: "10.1.2.3:7946",
		Join:           []string{"dnssrv+_gossip._tcp.weft.monitoring.svc.cluster.local", "weft.monitoring.svc.cluster.local:7946", "10.1.2.4:7946"},
		RejoinInterval: 30 * time.Second, NodeName: "node-1", SecretKeyFile: "/etc/weft/gossip/key",
		GossipInterval: 100 * time.Millisecond, PushPullInterval: 15 * time.Second, RetransmitMult: 3,
		StatePins: 1000, PeerPinsPerSecond: 500, LeaveTimeout: 2 * time.Second,
	}
	local := createDefaultConfig().(*Config)
	local.Gossip.Enabled = false
	insecure := createDefaultConfig().(*Config)
	insecure.Gossip.Bind, insecure.Gossip.Insecure = "127.0.0.1:7946", true

	for _, tt := range []struct {
		id      component.ID
		want    *Config
		wantErr []string
	}{
		{id: component.MustNewID("weft_pins"), want: minimal},
		{id: component.MustNewIDWithName("weft_pins", "full"), want: full},
		{id: component.MustNewIDWithName("weft_pins", "local"), want: local},
		{id: component.MustNewIDWithName("weft_pins", "insecure"), want: insecure},
		{id: component.MustNewIDWithName("weft_pins", "nokey"), wantErr: []string{
			"gossip::secret_key_file: required", "gossip::insecure: true",
		}},
		{id: component.MustNewIDWithName("weft_pins", "bad"), wantErr: []string{
			"ttl: must be positive",
			"max_ttl: at most 168h",
			"max_pins: between 1 and 10000000",
			`gossip::bind: host of "weft.local:7946": want an IP address`,
			`gossip::advertise: host of ":7946": required`,
			"gossip::join[0]: empty address",
			`gossip::join[1]: "dnssrv+": want dnssrv+<name>`,
			`gossip::join[2]: "dnssrv+_x._tcp.svc:80": want dnssrv+<name>`,
			`gossip::join[3]: want host:port, got "host-without-port"`,
			"gossip::insecure: true together with gossip::secret_key_file",
			"gossip::gossip_interval: must be positive",
			"gossip::retransmit_mult: between 1 and 100",
			"gossip::state_pins: between 0 and 65535",
			"gossip::peer_pins_per_second: at least 1",
		}},
	} {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "weft_pins", f.Type().String())
	cfg := f.CreateDefaultConfig().(*Config)
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	assert.Equal(t, 30*time.Minute, cfg.TTL)
	assert.Equal(t, 100_000, cfg.MaxPins)
	assert.ErrorContains(t, cfg.Validate(), "gossip::bind: required", "gossip needs an address and a key")
	cfg.Gossip.Enabled = false
	require.NoError(t, cfg.Validate())
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestFromHost(t *testing.T) {
	p, _ := newLocal(t, nil)
	id := component.MustNewID("weft_pins")
	got, err := FromHost(weftest.Host{id: p}, id)
	require.NoError(t, err)
	assert.Same(t, p, got)
	_, err = FromHost(weftest.Host{}, id)
	assert.ErrorContains(t, err, `extension "weft_pins" is not configured`)
	other := component.MustNewID("other")
	_, err = FromHost(weftest.Host{other: componenttest.NewNopHost().GetExtensions()[other]}, other)
	assert.ErrorContains(t, err, "not the weft_pins extension")
}

// TestReadKeys: one key, raw or base64 (with a trailing newline, as a
// Secret file has), or several base64 keys one per line; anything else is
// refused with the line named.
func TestReadKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	raw16 := "0123456789abcdef"
	b64 := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	for _, tc := range []struct {
		name, content string
		want          []string
		err           string
	}{
		{"raw16", raw16, []string{raw16}, ""},
		{"raw24", raw16 + "01234567", []string{raw16 + "01234567"}, ""},
		{"base64", b64 + "\n", []string{"0123456789abcdef0123456789abcdef"}, ""},
		{"ring", b64 + "\n" + "MDEyMzQ1Njc4OWFiY2RlZg==\n", []string{"0123456789abcdef0123456789abcdef", raw16}, ""},
		{"short", "abc", nil, "line 1: want an AES key"},
		{"bad line", b64 + "\nnope\n", nil, "line 2: want an AES key"},
		{"empty", "\n", nil, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := readKeys(write(tc.name, tc.content))
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, k := range keys {
				got = append(got, string(k))
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
