// Package democonfig renders the agent configuration of weft's demo
// (cmd/weft-demo): every signal of a simulated node (internal/simnode) wired
// into the local store, and into Jaeger, Prometheus and Alertmanager when the
// demo runs them, with the HighErrorRate rule file the demo evaluates. The
// demo and the agent's integration tests render it; the agent binary itself
// does not link it.
package democonfig

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"text/template"

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
	tmpl, err := template.New("demo").Option("missingkey=error").Parse(configTemplate)
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
