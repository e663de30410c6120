package weftpinsextension

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is the configuration of the weft_pins extension.
type Config struct {
	// TTL is how long a pin lasts when its caller gives no expiry (default
	// 30m). An explicit expiry (an alert's lifetime + 30m) wins.
	TTL time.Duration `mapstructure:"ttl"`
	// MaxTTL caps every expiry, local or from a peer (default 6h): a pin
	// never lasts longer than this from the moment it is set or received.
	MaxTTL time.Duration `mapstructure:"max_ttl"`
	// MaxPins bounds the pins held (default 100000, 6.5 MB). At the
	// bound, the pin that expires soonest is evicted.
	MaxPins int `mapstructure:"max_pins"`
	// Gossip spreads pins to the other agents.
	Gossip GossipConfig `mapstructure:"gossip"`
}

// GossipConfig configures the memberlist cluster of the agents.
type GossipConfig struct {
	// Enabled turns gossip on (default true). Off, pins stay on this node.
	Enabled bool `mapstructure:"enabled"`
	// Bind is the ip:port memberlist listens on, TCP and UDP (shipped
	// profile: ${env:POD_IP}:7946; an empty IP is every interface).
	// Required when gossip is enabled.
	Bind string `mapstructure:"bind"`
	// Advertise is the ip:port peers reach this node at (default: bind;
	// with an unspecified bind IP, memberlist picks a private address).
	Advertise string `mapstructure:"advertise"`
	// Join lists where to find peers: host:port (DNS A/AAAA or an IP),
	// dns+host:port (A/AAAA) or dnssrv+name (SRV, e.g.
	// dnssrv+_gossip._tcp.weft.monitoring.svc.cluster.local). Resolved at
	// every join attempt. Empty: wait for peers to join this node.
	Join []string `mapstructure:"join"`
	// RejoinInterval is how often a node alone in its cluster resolves
	// join again and retries (default 1m).
	RejoinInterval time.Duration `mapstructure:"rejoin_interval"`
	// NodeName names this node in the cluster (default: the host name and
	// a random suffix, so a restarted pod is a new member).
	NodeName string `mapstructure:"node_name"`
	// SecretKeyFile holds the cluster's AES key (16, 24 or 32 bytes, raw
	// or base64); several base64 keys one per line form a keyring for
	// rotation: the first encrypts, all decrypt. Required unless insecure.
	SecretKeyFile string `mapstructure:"secret_key_file"`
	// Insecure gossips in plaintext, without a key. It must be set
	// explicitly; any node of the network can then join and inject pins.
	Insecure bool `mapstructure:"insecure"`
	// GossipInterval is the time between gossip rounds, in which
	// broadcasts go out (default 200ms).
	GossipInterval time.Duration `mapstructure:"gossip_interval"`
	// PushPullInterval is the time between full state exchanges with a
	// random peer (default 30s); the state carries the recent pins.
	PushPullInterval time.Duration `mapstructure:"push_pull_interval"`
	// RetransmitMult multiplies the retransmissions of a broadcast:
	// retransmit_mult × log10(members+1) (default 4).
	RetransmitMult int `mapstructure:"retransmit_mult"`
	// StatePins is how many of the latest pins the push/pull state carries
	// (default 4096, 21 bytes each), so a node that was away catches up.
	StatePins int `mapstructure:"state_pins"`
	// PeerPinsPerSecond bounds the new pins accepted from one origin node
	// per second (default 1000; bursts up to max(this, state_pins)).
	PeerPinsPerSecond int `mapstructure:"peer_pins_per_second"`
	// LeaveTimeout bounds the graceful leave at shutdown (default 5s).
	LeaveTimeout time.Duration `mapstructure:"leave_timeout"`
}

// Validate checks the configuration; errors name the YAML key.
func (c *Config) Validate() error {
	var errs []error
	if c.TTL <= 0 {
		errs = append(errs, fmt.Errorf("ttl: must be positive, got %s", c.TTL))
	}
	if c.MaxTTL < c.TTL {
		errs = append(errs, fmt.Errorf("max_ttl: must be at least ttl (%s), got %s", c.TTL, c.MaxTTL))
	}
	if c.MaxTTL > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("max_ttl: at most 168h, got %s", c.MaxTTL))
	}
	if c.MaxPins < 1 || c.MaxPins > 10_000_000 {
		errs = append(errs, fmt.Errorf("max_pins: between 1 and 10000000, got %d", c.MaxPins))
	}
	if c.Gossip.Enabled {
		errs = append(errs, c.Gossip.validate()...)
	}
	return errors.Join(errs...)
}

func (g *GossipConfig) validate() []error {
	var errs []error
	if g.Bind == "" {
		errs = append(errs, errors.New("gossip::bind: required when gossip is enabled, e.g. ${env:POD_IP}:7946"))
	} else if err := checkIPPort(g.Bind, false); err != nil {
		errs = append(errs, fmt.Errorf("gossip::bind: %w", err))
	}
	if g.Advertise != "" {
		if err := checkIPPort(g.Advertise, true); err != nil {
			errs = append(errs, fmt.Errorf("gossip::advertise: %w", err))
		}
	}
	for i, j := range g.Join {
		if err := validateJoin(j); err != nil {
			errs = append(errs, fmt.Errorf("gossip::join[%d]: %w", i, err))
		}
	}
	switch {
	case g.SecretKeyFile == "" && !g.Insecure:
		errs = append(errs, errors.New("gossip::secret_key_file: required; a cluster without a key accepts pins from any host that reaches the port. Set `gossip::insecure: true` to gossip in plaintext on purpose"))
	case g.SecretKeyFile != "" && g.Insecure:
		errs = append(errs, errors.New("gossip::insecure: true together with gossip::secret_key_file; choose one"))
	}
	if len(g.NodeName) > maxOrigin {
		errs = append(errs, fmt.Errorf("gossip::node_name: at most %d bytes, got %d", maxOrigin, len(g.NodeName)))
	}
	for key, d := range map[string]time.Duration{
		"gossip::gossip_interval":    g.GossipInterval,
		"gossip::push_pull_interval": g.PushPullInterval,
		"gossip::rejoin_interval":    g.RejoinInterval,
		"gossip::leave_timeout":      g.LeaveTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", key, d))
		}
	}
	if g.RetransmitMult < 1 || g.RetransmitMult > 100 {
		errs = append(errs, fmt.Errorf("gossip::retransmit_mult: between 1 and 100, got %d", g.RetransmitMult))
	}
	if g.StatePins < 0 || g.StatePins > maxStateRecords {
		errs = append(errs, fmt.Errorf("gossip::state_pins: between 0 and %d, got %d", maxStateRecords, g.StatePins))
	}
	if g.PeerPinsPerSecond < 1 {
		errs = append(errs, fmt.Errorf("gossip::peer_pins_per_second: at least 1, got %d", g.PeerPinsPerSecond))
	}
	return errs
}

// splitHostPort parses host:port with a numeric port; the host may be
// empty (all interfaces) unless needHost.
func splitHostPort(s string, needHost bool) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port, got %q", s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port of %q: want 0..65535", s)
	}
	if needHost && host == "" {
		return "", 0, fmt.Errorf("host of %q: required", s)
	}
	return host, port, nil
}

// checkIPPort checks an ip:port (memberlist binds and advertises IP
// addresses, not names); the IP may be empty (all interfaces) unless
// needIP.
func checkIPPort(s string, needIP bool) error {
	host, _, err := splitHostPort(s, needIP)
	if err != nil {
		return err
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("host of %q: want an IP address, e.g. ${env:POD_IP}", s)
	}
	return nil
}

// Join address prefixes (as Thanos, Loki and Mimir spell them).
const (
	prefixDNS    = "dns+"
	prefixDNSSRV = "dnssrv+"
)

func validateJoin(j string) error {
	switch {
	case j == "":
		return errors.New("empty address")
	case strings.HasPrefix(j, prefixDNSSRV):
		if strings.TrimPrefix(j, prefixDNSSRV) == "" || strings.Contains(j, ":") {
			return fmt.Errorf("%q: want dnssrv+<name> (the SRV records carry the ports)", j)
		}
		return nil
	}
	_, _, err := splitHostPort(strings.TrimPrefix(j, prefixDNS), true)
	return err
}
