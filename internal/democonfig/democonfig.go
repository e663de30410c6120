// Package democonfig renders the agent configuration of weft's demo
// (cmd/weft-demo): every signal of a simulated node (internal/simnode) wired
// into the local store, and into Jaeger, Prometheus and Alertmanager when the
// demo runs them, with the HighErrorRate rule file the demo evaluates, and
// evidence_sampling pinning error traces in weft_pins. With several
// simulated nodes, each node's agent gets a configuration of its own whose
// weft_pins gossips with the other agents (Config.Gossip, Config.Join) under
// a key the demo generates (WriteGossipKey). The demo and the agent's
// integration tests render it; the agent binary itself does not link it.
package democonfig

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/weftobs/weft/internal/simnode"
)

//go:embed demo.yaml.tmpl
var configTemplate string

// rules is the HighErrorRate rule file shipped in deploy/ (a test keeps the
// copies equal).
//
//go:embed rules/high-error-rate.rules.yaml
var rules []byte

// Config fills demo.yaml.tmpl. Every address is host:port on loopback.
type Config struct {
	Health, PProf, OTLPGRPC, OTLPHTTP string
	Query                             string // weft_query's endpoint
	RulesDir                          string // weft_rules' rule files
	Alertmanager                      string // URL of an Alertmanager; empty: none
	MetricsHost, MetricsPort          string // the agent's self-metrics
	DataDir                           string // queue and store directories
	Jaeger                            string // OTLP/gRPC endpoint of Jaeger; empty: none
	Prometheus                        string // remote-write URL of Prometheus; empty: none
	PodsDir                           string // the simulated node's /var/log/pods
	ScrapeJobs                        []ScrapeJob

	// Node names the agent's node: the store's and the rules' external
	// label node, the remote-write exporters' node label, the telemetry's
	// k8s.node.name and the gossip member name. Empty: demo-node.
	Node string
	// Gossip is weft_pins' gossip address (bind); empty: gossip off, pins
	// stay on the node (the one-node demo).
	Gossip string
	// Join lists the other agents' gossip addresses (see Peers).
	Join []string
	// KeyFile is the gossip key (see WriteGossipKey); required with Gossip.
	KeyFile string
	// StoreBudget is weft_store's traces_max_bytes and logs_max_bytes;
	// 0: the store's defaults.
	StoreBudget int64
}

// DefaultNode is the node name of the one-node demo.
const DefaultNode = "demo-node"

// NodeName is c.Node, or DefaultNode when empty.
func (c Config) NodeName() string {
	if c.Node == "" {
		return DefaultNode
	}
	return c.Node
}

// RejoinInterval is weft_pins' gossip::rejoin_interval in the demo: an
// agent started before its peers (the first) finds them within it.
const RejoinInterval = 2 * time.Second

// validate checks what the template cannot: gossip needs its key.
func (c Config) validate() error {
	var errs []error
	if c.Gossip != "" && c.KeyFile == "" {
		errs = append(errs, errors.New("demo config: KeyFile is required with Gossip (weft_pins gossip::secret_key_file)"))
	}
	if c.Gossip == "" && len(c.Join) > 0 {
		errs = append(errs, errors.New("demo config: Join without Gossip (weft_pins gossip::bind)"))
	}
	if c.StoreBudget < 0 {
		errs = append(errs, fmt.Errorf("demo config: StoreBudget: must not be negative, got %d", c.StoreBudget))
	}
	return errors.Join(errs...)
}

// Peers returns the gossip addresses that agent i of the demo joins. The
// demo starts its agents in order: the first joins nobody and waits for
// the others (a join list would only log a failed attempt at its start),
// every other agent joins all the others, the first agent first, so that
// it finds the cluster whichever of them is up.
func Peers(gossip []string, i int) []string {
	if i == 0 {
		return nil
	}
	var out []string
	for k, g := range gossip {
		if k != i {
			out = append(out, g)
		}
	}
	return out
}

// GossipKeyFile is the name of the gossip key file in the demo directory.
const GossipKeyFile = "gossip.key"

// WriteGossipKey writes a new random 32-byte gossip key, base64, to
// dir/gossip.key, readable by its owner only (0600), and returns the path.
// The key is written to a new file and renamed over an older one, so it
// is never readable under an older file's mode.
func WriteGossipKey(dir string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("gossip key: %w", err)
	}
	path := filepath.Join(dir, GossipKeyFile)
	f, err := os.CreateTemp(dir, GossipKeyFile+".*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("gossip key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	err = errors.Join(err, f.Chmod(0o600), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("gossip key %s: %w", path, err)
	}
	return path, nil
}

// ScrapeJob is one pod_scrape job of the demo: the simulated endpoints that
// share a metrics path.
type ScrapeJob struct {
	Name, Path string
	Targets    []ScrapeTarget
}

// ScrapeTarget is one simulated metrics endpoint with the labels the
// pod_scrape presets would give it.
type ScrapeTarget struct {
	Addr, Namespace, Pod, Container string
}

// ScrapeJobs groups the simulated node's metrics endpoints into jobs as the
// pod_scrape presets would (Envoy sidecars, Knative queue-proxies,
// application containers), as static targets.
func ScrapeJobs(endpoints []simnode.Endpoint) ([]ScrapeJob, error) {
	jobs := []ScrapeJob{{Name: "envoy"}, {Name: "queue-proxy"}, {Name: "apps"}}
	for _, e := range endpoints {
		u, err := url.Parse(e.URL)
		if err != nil {
			return nil, fmt.Errorf("simulated endpoint %q: %w", e.URL, err)
		}
		i := 2
		switch e.Container {
		case "istio-proxy":
			i = 0
		case "queue-proxy":
			i = 1
		}
		jobs[i].Path = u.Path
		jobs[i].Targets = append(jobs[i].Targets, ScrapeTarget{Addr: u.Host, Namespace: e.Namespace, Pod: e.Pod, Container: e.Container})
	}
	return jobs, nil
}

// Render writes the configuration for cfg to w.
func Render(w io.Writer, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	funcs := template.FuncMap{"join": strings.Join, "rejoin": func() string { return RejoinInterval.String() }}
	tmpl, err := template.New("demo").Option("missingkey=error").Funcs(funcs).Parse(configTemplate)
	if err != nil {
		return fmt.Errorf("parse demo config template: %w", err)
	}
	if err := tmpl.Execute(w, cfg); err != nil {
		return fmt.Errorf("render demo config: %w", err)
	}
	return nil
}

// Write renders the configuration for cfg into the file at path.
func Write(path string, cfg Config) error {
	var buf bytes.Buffer
	if err := Render(&buf, cfg); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

// WriteRules writes the demo's rule files into dir/rules and returns that
// directory, for Config.RulesDir.
func WriteRules(dir string) (string, error) {
	rulesDir := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rulesDir, 0o755); err != nil {
		return "", fmt.Errorf("demo rules: %w", err)
	}
	return rulesDir, os.WriteFile(filepath.Join(rulesDir, "high-error-rate.rules.yaml"), rules, 0o644)
}
