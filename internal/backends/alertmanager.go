package backends

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/weftobs/weft/internal/loopback"
)

// FindAlertmanager returns the path of the Alertmanager binary:
// $WEFT_ALERTMANAGER when it names an executable file, else `prometheus-alertmanager` (the Debian
// package's name, Alertmanager 0.25, installed by `make tools`) or
// `alertmanager` on PATH.
func FindAlertmanager() (string, error) {
	return find("WEFT_ALERTMANAGER", "prometheus-alertmanager", "alertmanager")
}

// Alertmanager is a running Alertmanager without a cluster listener whose
// single receiver discards notifications: alerts are kept and shown in its
// UI and API.
type Alertmanager struct {
	Addr string // host:port of the web API on 127.0.0.1

	proc *process
}

// URL is the server's base URL.
func (a *Alertmanager) URL() string { return "http://" + a.Addr }

// alertmanagerConfig groups by alert name and sends notifications nowhere.
const alertmanagerConfig = `route:
  receiver: none
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: none
`

// StartAlertmanager runs the binary with its data and configuration in dir
// and waits until it is ready.
func StartAlertmanager(ctx context.Context, binary, dir string, logOut io.Writer) (*Alertmanager, error) {
	amDir := filepath.Join(dir, "alertmanager")
	if err := os.MkdirAll(amDir, 0o755); err != nil {
		return nil, fmt.Errorf("alertmanager dir: %w", err)
	}
	cfgPath := filepath.Join(amDir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(alertmanagerConfig), 0o600); err != nil {
		return nil, fmt.Errorf("write alertmanager config: %w", err)
	}
	a := &Alertmanager{}
	err := withFreshPorts(func() error {
		addrs, err := loopback.FreeAddrs(1)
		if err != nil {
			return err
		}
		a.Addr = addrs[0]
		args := []string{
			"--config.file=" + cfgPath,
			"--storage.path=" + filepath.Join(amDir, "data"),
			"--web.listen-address=" + a.Addr,
			"--cluster.listen-address=", // no gossip port
			"--log.level=warn",
		}
		a.proc, err = startProcess(ctx, "alertmanager", binary, args, nil, logOut, a.URL()+"/-/ready")
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Stop ends the process and waits for it. Safe to call twice.
func (a *Alertmanager) Stop() { a.proc.stop() }
