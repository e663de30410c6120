package backends

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/weftobs/weft/internal/loopback"
)

// FindPrometheus returns the path of the prometheus binary: $WEFT_PROMETHEUS
// when it names an executable file, else `prometheus` on PATH (`make tools` installs the Debian
// package, Prometheus 2.42).
func FindPrometheus() (string, error) { return find("WEFT_PROMETHEUS", "prometheus") }

// Prometheus is a running Prometheus server with the remote-write receiver
// and exemplar storage on.
type Prometheus struct {
	Addr string // host:port of the web API on 127.0.0.1

	proc *process
}

// URL is the server's base URL.
func (p *Prometheus) URL() string { return "http://" + p.Addr }

// RemoteWriteURL is where remote-write clients send samples.
func (p *Prometheus) RemoteWriteURL() string { return p.URL() + "/api/v1/write" }

// StartPrometheus runs the binary with its data and a configuration in dir,
// and waits until it is ready. extraConfig is appended to the configuration
// file after the global section (e.g. scrape_configs).
func StartPrometheus(ctx context.Context, binary, dir, extraConfig string, logOut io.Writer) (*Prometheus, error) {
	cfgPath := filepath.Join(dir, "prometheus.yml")
	cfg := "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n" + extraConfig
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write prometheus config: %w", err)
	}
	p := &Prometheus{}
	err := withFreshPorts(func() error {
		addrs, err := loopback.FreeAddrs(1)
		if err != nil {
			return err
		}
		p.Addr = addrs[0]
		args := []string{
			"--config.file=" + cfgPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + p.Addr,
			"--web.enable-remote-write-receiver",
			"--enable-feature=exemplar-storage",
			"--log.level=warn",
		}
		p.proc, err = startProcess(ctx, "prometheus", binary, args, nil, logOut, p.URL()+"/-/ready")
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Stop ends the process and waits for it. Safe to call twice.
func (p *Prometheus) Stop() { p.proc.stop() }
