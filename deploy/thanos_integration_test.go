//go:build integration

package deploy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/weftobs/weft/internal/loopback"
)

// noThanos: `make test` sets WEFT_THANOS; an integration run without it
// would silently check nothing.
func noThanos(t testing.TB) {
	t.Helper()
	t.Fatal("WEFT_THANOS is not set: run `make tools` and set it to the Thanos binary built there (`make test` does both)")
}

// Thanos Query starts with exactly the component's arguments, except that
// its listen addresses move to loopback ports and the agents' SRV name
// becomes a closed loopback address (nothing leaves the machine; the SRV
// name itself is checked by TestThanosQueryComponent): the probes the
// Deployment declares answer, the APIs the cluster datasource uses answer
// with the missing store left out, it writes no file (the root filesystem
// is read-only), logs JSON, and SIGTERM ends it within the pod's grace
// period.
func TestThanosQueryStarts(t *testing.T) {
	bin := thanosBinary(t)
	d := named(t, mustBundle(t, thanosExample).Deployments, "thanos-query")
	c := d.Spec.Template.Spec.Containers[0]
	addrs, err := loopback.FreeAddrs(3)
	require.NoError(t, err)
	httpAddr, grpcAddr, closed := addrs[0], addrs[1], addrs[2]
	args := slices.Clone(c.Args)
	moved := 0
	for i, a := range args {
		for flag, to := range map[string]string{"--http-address=": httpAddr, "--grpc-address=": grpcAddr, "--endpoint=": closed} {
			if strings.HasPrefix(a, flag) {
				args[i] = flag + to
				moved++
			}
		}
	}
	require.Equal(t, 3, moved, "--http-address, --grpc-address and --endpoint in %v", c.Args)

	work, home, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	limit := c.Resources.Limits[corev1.ResourceMemory]
	cmd := exec.Command(bin, args...)
	cmd.Dir = work
	cmd.Env = []string{"HOME=" + home, "TMPDIR=" + tmp, "GOMEMLIMIT=" + strconv.FormatInt(limit.Value(), 10)}
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	get := func(path string) (int, []byte) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	ok := func(path string) func() bool {
		return func() bool { code, _ := get(path); return code == http.StatusOK }
	}
	require.Eventually(t, ok(c.LivenessProbe.HTTPGet.Path), 30*time.Second, 100*time.Millisecond, "liveness probe; output:\n%s", &logs)
	// Ready after the first endpoint discovery, at the latest after
	// --store.response-timeout.
	flags, _ := queryFlags(c.Args[1:])
	wait, err := model.ParseDuration(flags["store.response-timeout"][0])
	require.NoError(t, err)
	require.Eventually(t, ok(c.ReadinessProbe.HTTPGet.Path), time.Duration(wait)+20*time.Second, 100*time.Millisecond, "readiness probe; output:\n%s", &logs)

	// What Grafana's cluster datasource and the README promise: PromQL,
	// rules, alerts, exemplars. The only store is down: the answers are
	// still successful (partial response), not errors.
	now := time.Now()
	for _, path := range []string{
		"/api/v1/query?" + url.Values{"query": {`count by (node) (up)`}}.Encode(),
		"/api/v1/query_range?" + url.Values{"query": {`sum by (service_name) (rate(traces_span_metrics_calls_total[1m]))`},
			"start": {now.Add(-10 * time.Minute).Format(time.RFC3339)}, "end": {now.Format(time.RFC3339)}, "step": {"15s"}}.Encode(),
		"/api/v1/rules",
		"/api/v1/alerts",
		"/api/v1/query_exemplars?" + url.Values{"query": {`traces_span_metrics_duration_milliseconds_bucket`},
			"start": {now.Add(-10 * time.Minute).Format(time.RFC3339)}, "end": {now.Format(time.RFC3339)}}.Encode(),
	} {
		code, body := get(path)
		require.Equal(t, http.StatusOK, code, "%s: %s\noutput:\n%s", path, body, &logs)
		var r struct {
			Status string `json:"status"`
		}
		require.NoError(t, json.Unmarshal(body, &r), "%s: %s", path, body)
		assert.Equal(t, "success", r.Status, "%s: %s", path, body)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	select {
	case err := <-done:
		done <- err // for the cleanup
		require.NoError(t, err, "exit after SIGTERM; output:\n%s", &logs)
	case <-time.After(grace):
		t.Fatalf("still running %s after SIGTERM (the pod's grace period); output:\n%s", grace, &logs)
	}
	for _, dir := range []string{work, home, tmp} {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, entries, "Thanos Query wrote into %s (its root filesystem is read-only)", dir)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), "not a JSON log line (--log.format=json): %s", l)
		assert.NotEqual(t, "debug", rec["level"], l)
	}
}
