package backends

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// FindChromium returns the path of a headless-capable Chromium:
// $WEFT_CHROMIUM when it names an executable file, else `chromium` on PATH (the Debian package,
// installed by `make tools`).
func FindChromium() (string, error) { return find("WEFT_CHROMIUM", "chromium") }

// chromiumIsolation keeps the browser on the machine: every request to a
// host other than 127.0.0.1 goes to a dead proxy on 127.0.0.1:9, other host
// names do not resolve, and the background services that phone home are off.
var chromiumIsolation = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
	"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
	"--disable-domain-reliability", "--disable-client-side-phishing-detection", "--no-pings",
	"--metrics-recording-only", "--disable-features=OptimizationHints,MediaRouter,Translate",
	"--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
}

// RunChromium loads target in headless Chromium with a fresh profile in
// profileDir and the extra arguments (e.g. --dump-dom, --screenshot=F,
// --window-size=W,H), and returns what it printed on standard output.
func RunChromium(ctx context.Context, binary, profileDir, target string, args ...string) (string, error) {
	argv := append(append(append([]string{}, chromiumIsolation...), "--user-data-dir="+profileDir), args...)
	cmd := exec.CommandContext(ctx, binary, append(argv, target)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chromium %s: %w: %s", target, err, stderr.String())
	}
	return string(out), nil
}
