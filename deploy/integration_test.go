//go:build integration

package deploy

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/weftobs/weft/internal/gobuild"
)

var (
	weftOnce  sync.Once
	weftPath  string
	weftError error
)

// weftBinary builds cmd/weft once, with exactly the Dockerfile's `go build`
// line (its environment, CGO_ENABLED=0 included, and flags; -o into a
// temporary directory; this machine's GOOS/GOARCH), and returns its path.
// The other integration tests run this binary, so they test what the image
// would contain.
func weftBinary(t testing.TB) string {
	t.Helper()
	weftOnce.Do(func() {
		raw, err := os.ReadFile("../Dockerfile")
		if err != nil {
			weftError = err
			return
		}
		step, err := parseDockerfileBuild(string(raw), dockerBuildArgs())
		if err != nil {
			weftError = err
			return
		}
		path := filepath.Join(buildDir, "weft")
		step = step.withOutput(path)
		cmd := exec.Command("go", step.Args...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), step.Env...) // later entries win
		if out, err := cmd.CombinedOutput(); err != nil {
			weftError = fmt.Errorf("%s %s go %s: %w\n%s", "(Dockerfile build step)", strings.Join(step.Env, " "), strings.Join(step.Args, " "), err, out)
			return
		}
		weftPath = path
	})
	require.NoError(t, weftError)
	return weftPath
}

func TestDockerfileBuildIsStatic(t *testing.T) {
	bin := weftBinary(t)
	require.NoError(t, staticELF(bin))
	out, err := exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "deploy-test", "-X main.version from the Dockerfile's VERSION argument")
}

// stage writes the files an overlay mounts into the container under root
// and returns the agent's arguments and environment with container paths
// mapped to root. Downward-API values are stubbed; the one Secret the
// agent mounts, weft-gossip (created by the operator, never rendered),
// gets a gossip key generated for the test.
func stage(t testing.TB, b *bundle, root string, env map[string]string) (args, environ []string) {
	t.Helper()
	ac := configOf(t, b)
	for p, content := range ac.Files {
		dst := filepath.Join(root, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, []byte(content), 0o644))
	}
	pod := b.DaemonSets[0].Spec.Template.Spec
	for _, m := range pod.Containers[0].VolumeMounts {
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || pod.Volumes[i].Secret == nil {
			continue
		}
		s := pod.Volumes[i].Secret
		require.Equal(t, "weft-gossip", s.SecretName, "the only Secret the agent mounts")
		require.NotEmpty(t, s.Items)
		key := make([]byte, 32)
		for j := range key {
			key[j] = byte(rand.Uint32())
		}
		for _, it := range s.Items {
			dst := filepath.Join(root, m.MountPath, it.Path)
			require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
			require.NoError(t, os.WriteFile(dst, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o400))
		}
	}
	for _, a := range ac.Args {
		if strings.HasPrefix(a, "/etc/weft/") {
			a = filepath.Join(root, a)
		}
		args = append(args, a)
	}
	c := b.DaemonSets[0].Spec.Template.Spec.Containers[0]
	limit := c.Resources.Limits[corev1.ResourceMemory]
	stubs := map[string]string{
		"POD_IP":        "127.0.0.1",
		"NODE_NAME":     "node-a",
		"GOMEMLIMIT":    fmt.Sprint(limit.Value()),
		"WEFT_DATA_DIR": filepath.Join(root, "var/lib/weft"),
	}
	for k, v := range ac.Env {
		if s, ok := stubs[k]; ok {
			v = s
		}
		if o, ok := env[k]; ok {
			v = o
		}
		environ = append(environ, k+"="+v)
	}
	for k, v := range env {
		if _, ok := ac.Env[k]; !ok {
			environ = append(environ, k+"="+v)
		}
	}
	// Only the pod's environment (and PATH/HOME for the Go runtime).
	return args, append(environ, "HOME="+root)
}

func runWeft(t testing.TB, environ []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(weftBinary(t), args...)
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		require.NoError(t, err)
	}
	return string(out), 0
}

// The configuration every overlay gives the agent passes `weft validate`,
// exactly as the DaemonSet passes it (embedded default, then the ConfigMap
// files), with the overlay's environment.
func TestOverlayConfigValidates(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			root := t.TempDir()
			args, environ := stage(t, mustBundle(t, dir), root, nil)
			out, code := runWeft(t, environ, append([]string{"validate"}, args...)...)
			assert.Equal(t, 0, code, "weft validate %v:\n%s", args, out)
			assert.NotContains(t, out, "deprecated")
		})
	}
	// The same command fails on a broken override or environment: the
	// files and variables above are really read.
	t.Run("misspelt key in agent.yaml", func(t *testing.T) {
		root := t.TempDir()
		args, environ := stage(t, mustBundle(t, "overlays/prod"), root, nil)
		agent := filepath.Join(root, configDir, "agent.yaml")
		raw, err := os.ReadFile(agent)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(agent, []byte(strings.Replace(string(raw), "max_exemplars:", "max_exemplarz:", 1)), 0o644))
		out, code := runWeft(t, environ, append([]string{"validate"}, args...)...)
		assert.Equal(t, 1, code, out)
		assert.Contains(t, out, "max_exemplarz")
	})
	t.Run("bad log level", func(t *testing.T) {
		args, environ := stage(t, mustBundle(t, "overlays/prod"), t.TempDir(), map[string]string{"WEFT_LOG_LEVEL": "chatty"})
		out, code := runWeft(t, environ, append([]string{"validate"}, args...)...)
		assert.Equal(t, 1, code, out)
		assert.Contains(t, out, "chatty")
	})
}

// readerToken is the token the fake API server knows as Grafana's
// ServiceAccount, which may get nodes/weft.
const readerToken = "grafana-sa-token"

// emptyKubernetesAPI serves an API with no pods and no PrometheusRules:
// lists are empty, watches stay open without events. It answers
// TokenReviews (readerToken is Grafana's ServiceAccount, any other token is
// invalid) and SubjectAccessReviews (Grafana may get nodes/weft, as the
// rendered weft-query-reader role grants, nothing else).
func emptyKubernetesAPI(t testing.TB) string {
	t.Helper()
	const grafana = "system:serviceaccount:monitoring:grafana"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			var review struct {
				APIVersion string         `json:"apiVersion"`
				Kind       string         `json:"kind"`
				Spec       map[string]any `json:"spec"`
				Status     map[string]any `json:"status"`
			}
			if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			switch r.URL.Path {
			case "/apis/authentication.k8s.io/v1/tokenreviews":
				review.Status = map[string]any{"authenticated": false}
				if review.Spec["token"] == readerToken {
					review.Status = map[string]any{"authenticated": true, "user": map[string]any{"username": grafana}}
				}
			case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
				ra, _ := review.Spec["resourceAttributes"].(map[string]any)
				review.Status = map[string]any{"allowed": review.Spec["user"] == grafana &&
					ra["verb"] == "get" && ra["resource"] == "nodes" && ra["subresource"] == "weft" && ra["group"] == nil}
			default:
				http.NotFound(w, r)
				return
			}
			_ = json.NewEncoder(w).Encode(review)
			return
		}
		if r.URL.Query().Get("watch") == "true" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		_, _ = w.Write([]byte(`{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The production overlay's agent, run as the DaemonSet runs it: the probes
// the DaemonSet declares answer on the port it names, weft_rules loads the
// PrometheusRule from the rendered ConfigMap, the logs are JSON at the
// overlay's level, and SIGTERM ends it well within the grace period.
func TestRenderedAgentServesProbesAndRules(t *testing.T) {
	b := mustBundle(t, "overlays/prod")
	root := t.TempDir()
	podIP := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 1+rand.IntN(250))
	closed := "127.0.0.1:9"
	args, environ := stage(t, b, root, map[string]string{
		"POD_IP":                podIP,
		"WEFT_KUBERNETES_API":   emptyKubernetesAPI(t),
		"WEFT_JAEGER_ENDPOINT":  closed,
		"WEFT_REMOTE_WRITE_URL": "http://" + closed + "/api/v1/write",
		"WEFT_ALERTMANAGER_URL": "http://" + closed,
		"WEFT_FLUENT_ENDPOINT":  closed,
	})
	// The embedded default reads /etc/weft/rules and /var/log/pods, and
	// agent.yaml the gossip key under /etc/weft/gossip: testPaths points
	// them at the staged copies (the only overrides not in the overlay).
	ac := configOf(t, b)
	args = append(args, "--config", testPaths(t, b, root))

	c := b.DaemonSets[0].Spec.Template.Spec.Containers[0]
	probeURL := func(p *corev1.Probe) string {
		require.NotNil(t, p)
		port := p.HTTPGet.Port.IntValue()
		if p.HTTPGet.Port.StrVal != "" {
			i := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.HTTPGet.Port.StrVal })
			require.GreaterOrEqual(t, i, 0, "probe port %s is declared", p.HTTPGet.Port.StrVal)
			port = int(c.Ports[i].ContainerPort)
		}
		return fmt.Sprintf("http://%s:%d%s", podIP, port, p.HTTPGet.Path)
	}

	cmd := exec.Command(weftBinary(t), args...)
	cmd.Env = environ
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	ok := func(u string) func() bool {
		return func() bool {
			resp, err := http.Get(u)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}
	}
	require.Eventually(t, ok(probeURL(c.StartupProbe)), 60*time.Second, 100*time.Millisecond, "startup probe; agent output:\n%s", &logs)
	require.Eventually(t, ok(probeURL(c.LivenessProbe)), 10*time.Second, 100*time.Millisecond, "liveness probe")
	require.Eventually(t, ok(probeURL(c.ReadinessProbe)), 30*time.Second, 100*time.Millisecond, "readiness probe; agent output:\n%s", &logs)

	// Gossip runs with the staged key, on the pod IP and the port the
	// DaemonSet declares, TCP and UDP: both are taken.
	_, gossipPort, err := net.SplitHostPort(pinsConfig(t, ac).Gossip.Bind)
	require.NoError(t, err)
	checked := 0
	for _, cp := range c.Ports {
		if strconv.Itoa(int(cp.ContainerPort)) != gossipPort {
			continue
		}
		checked++
		addr := net.JoinHostPort(podIP, gossipPort)
		switch cp.Protocol {
		case corev1.ProtocolTCP:
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			require.NoError(t, err, "gossip/TCP %s (%s); agent output:\n%s", addr, cp.Name, &logs)
			conn.Close()
		case corev1.ProtocolUDP:
			pc, err := net.ListenPacket("udp", addr)
			if err == nil {
				pc.Close()
			}
			require.Error(t, err, "gossip/UDP %s (%s) is not bound by the agent", addr, cp.Name)
		}
	}
	require.Equal(t, 2, checked, "gossip ports declared: TCP and UDP")

	// The query API wants a token the API server vouches for (base's
	// auth.kubernetes), the probes above did not.
	rulesURL := "http://" + podIP + ":8686/api/v1/rules"
	for tok, want := range map[string]int{"": http.StatusUnauthorized, "not-a-token": http.StatusUnauthorized} {
		req, err := http.NewRequest(http.MethodGet, rulesURL, nil)
		require.NoError(t, err)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "token %q", tok)
	}
	req, err := http.NewRequest(http.MethodGet, rulesURL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "bearer "+readerToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name string `json:"name"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &rules), "%s", body)
	var names []string
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Name)
		}
	}
	assert.Equal(t, []string{"HighErrorRate", "HighErrorRateIstio"}, names, "rules loaded from the rendered ConfigMap")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	grace := time.Duration(*b.DaemonSets[0].Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	select {
	case err := <-done:
		done <- err // for the cleanup
		require.NoError(t, err, "exit after SIGTERM; output:\n%s", &logs)
	case <-time.After(grace):
		t.Fatalf("still running %s after SIGTERM (the pod's grace period)", grace)
	}
	// Logs are JSON lines (agent.yaml: encoding json) at level info.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), "not a JSON log line: %s", l)
		assert.NotEqual(t, "debug", rec["level"], "prod logs at info: %s", l)
	}
}

// lockedBuffer is an io.Writer safe for a child's stdout and stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	demoOnce  sync.Once
	demoPath  string
	demoError error
)

// weftDemoBinary builds cmd/weft-demo once, beside the weft binary of
// weftBinary, which it then runs (it looks for weft beside itself first).
func weftDemoBinary(t testing.TB) string {
	t.Helper()
	weftBinary(t)
	demoOnce.Do(func() {
		path := filepath.Join(buildDir, "weft-demo")
		if err := gobuild.Build(context.Background(), "..", path, "./cmd/weft-demo", ""); err != nil {
			demoError = err
			return
		}
		demoPath = path
	})
	require.NoError(t, demoError)
	return demoPath
}

// Every metric the dashboard queries is one weft produces: weft-demo runs
// the weft binary on a simulated node with a 503 burst until its query API
// lists every name the dashboard selects, ALERTS included (the burst makes
// HighErrorRate pending). The exemplar label and the Jaeger API the datasources rely on
// are checked on the same agent.
func TestDashboardMetricsExistInDemo(t *testing.T) {
	want := dashboardMetrics(t)
	cmd := exec.Command(weftDemoBinary(t), "--jaeger", "off", "--prometheus", "off", "--alertmanager", "off",
		"--error-after", "1s", "--duration", "5m", "--progress", "0", "--dir", t.TempDir())
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	queryURL := make(chan string, 1)
	go func() {
		statusPage := regexp.MustCompile(`status page\s+(http://\S+)/`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := statusPage.FindStringSubmatch(sc.Text()); m != nil {
				queryURL <- m[1]
			}
		}
		close(queryURL)
	}()
	var base string
	select {
	case u, ok := <-queryURL:
		require.True(t, ok, "the demo ended before printing its query API; stderr:\n%s", &stderr)
		base = u
	case <-time.After(2 * time.Minute):
		t.Fatalf("the demo printed no query API address; stderr:\n%s", &stderr)
	}

	getJSON := func(c *assert.CollectT, path string, v any) bool {
		resp, err := http.Get(base + path)
		if !assert.NoError(c, err) {
			return false
		}
		defer resp.Body.Close()
		if !assert.Equal(c, http.StatusOK, resp.StatusCode, path) {
			return false
		}
		return assert.NoError(c, json.NewDecoder(resp.Body).Decode(v))
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var names struct{ Data []string }
		if !getJSON(c, "/api/v1/label/__name__/values", &names) {
			return
		}
		var missing []string
		for _, m := range want {
			if !slices.Contains(names.Data, m) {
				missing = append(missing, m)
			}
		}
		assert.Empty(c, missing, "dashboard metrics weft does not produce (yet)")
	}, 3*time.Minute, 2*time.Second)

	// Exemplars carry trace_id (the datasource's exemplarTraceIdDestinations).
	var ex struct {
		Data []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		q := url.Values{"query": {"traces_span_metrics_duration_milliseconds_bucket"},
			"start": {fmt.Sprint(time.Now().Add(-time.Hour).Unix())}, "end": {fmt.Sprint(time.Now().Unix())}}
		if !getJSON(c, "/api/v1/query_exemplars?"+q.Encode(), &ex) {
			return
		}
		found := false
		for _, s := range ex.Data {
			for _, e := range s.Exemplars {
				found = found || len(e.Labels["trace_id"]) == 32
			}
		}
		assert.True(c, found, "an exemplar with a trace_id label")
	}, 30*time.Second, time.Second)

	// The Jaeger datasource's service list.
	var services struct{ Data []string }
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		if getJSON(c, "/api/services", &services) {
			assert.Contains(c, services.Data, "reviews")
		}
	}, 30*time.Second, time.Second)
}

// withOutput returns the step with its -o value replaced.
func (s goBuildStep) withOutput(path string) goBuildStep {
	args := slices.Clone(s.Args)
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			args[i+1] = path
		} else if strings.HasPrefix(a, "-o=") {
			args[i] = "-o=" + path
		}
	}
	return goBuildStep{Env: s.Env, Args: args}
}
