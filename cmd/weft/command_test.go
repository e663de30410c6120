package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/weftobs/weft/internal/democonfig"
)

// runWeft runs the test binary as the weft command with args and returns its
// combined output and exit code.
func runWeft(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "WEFT_TEST_RUN_MAIN=1"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if exitErr, ok := err.(*exec.ExitError); ok {
		return out.String(), exitErr.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), 0
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

const validConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		wantCode int
		wantOut  []string // substrings of the output
	}{
		{name: "valid", config: validConfig, wantCode: 0},
		{
			name:     "unknown key",
			config:   strings.Replace(validConfig, "debug: {}", "debug: {verbosty: detailed}", 1),
			wantCode: 1,
			wantOut:  []string{"debug", "verbosty"},
		},
		{
			name:     "unknown component type",
			config:   strings.Replace(validConfig, "debug: {}", "debgu: {}", 1),
			wantCode: 1,
			wantOut:  []string{"debgu"},
		},
		{
			name:     "pipeline names a missing exporter",
			config:   strings.Replace(validConfig, "exporters: [debug]", "exporters: [debug, otlp_grpc/jaeger]", 1),
			wantCode: 1,
			wantOut:  []string{"otlp_grpc/jaeger"},
		},
		{
			name:     "not yaml",
			config:   "receivers: [otlp\n",
			wantCode: 1,
			wantOut:  []string{"yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runWeft(t, nil, "validate", "--config", writeFile(t, "weft.yaml", tt.config))
			assert.Equal(t, tt.wantCode, code, "output:\n%s", out)
			for _, s := range tt.wantOut {
				assert.Contains(t, out, s)
			}
		})
	}
}

func TestValidateEmbeddedDefault(t *testing.T) {
	// Without --config weft uses its embedded DaemonSet profile.
	// Its rule glob points at the shipped HighErrorRate rules (inside the
	// repository): validate loads them.
	out, code := runWeft(t, []string{"WEFT_DATA_DIR=" + t.TempDir(), "NODE_NAME=node-a", "POD_IP=127.0.0.1",
		"WEFT_RULE_FILES=../../rules/testdata/deploy/*.rules.yaml"}, "validate")
	assert.Equal(t, 0, code, "output:\n%s", out)
	assert.NotContains(t, out, "deprecated")
	assert.NotContains(t, out, "matches no file")
}

// The first retrieval of the embedded profile logs once which profile runs
// and how to read it; `weft default-config` prints exactly that profile.
func TestEmbeddedProfileIsAnnouncedAndPrintable(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	p := embeddedProviderFactory().Create(confmap.ProviderSettings{Logger: zap.New(core)})
	for range 3 { // start, then two SIGHUP reloads
		_, err := p.Retrieve(t.Context(), defaultConfigURI, nil)
		require.NoError(t, err)
	}
	require.Equal(t, 1, logs.Len())
	assert.Contains(t, logs.All()[0].Message, "weft default-config")
	assert.Equal(t, defaultConfigURI, logs.All()[0].ContextMap()["config"])

	out, code := runWeft(t, nil, "default-config")
	require.Equal(t, 0, code, out)
	assert.Equal(t, string(defaultConfig), out)
}

func TestEmbeddedProviderRejectsUnknownName(t *testing.T) {
	p := embeddedProviderFactory().Create(confmap.ProviderSettings{})
	_, err := p.Retrieve(t.Context(), "weft:gateway", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "weft:gateway")
}

// TestShippedConfigsUseCanonicalNames fails when a config weft ships names a
// component by a deprecated alias (otlp for otlp_grpc, otlphttp, ...), which
// would log a deprecation warning at every start.
func TestShippedConfigsUseCanonicalNames(t *testing.T) {
	factories, err := components()
	require.NoError(t, err)
	configs := map[string][]byte{"default": defaultConfig}
	jobs := []democonfig.ScrapeJob{{Name: "apps", Path: "/metrics", Targets: []democonfig.ScrapeTarget{{Addr: "127.0.0.1:3", Namespace: "ns", Pod: "p", Container: "c"}}}}
	for name, cfg := range map[string]democonfig.Config{
		"demo with backends":    {Jaeger: "127.0.0.1:1", Prometheus: "http://127.0.0.1:2/api/v1/write", Alertmanager: "http://127.0.0.1:4", PodsDir: "/tmp/x", RulesDir: "/tmp/r", ScrapeJobs: jobs},
		"demo with jaeger only": {Jaeger: "127.0.0.1:1", PodsDir: "/tmp/x", ScrapeJobs: jobs},
		"demo without backends": {PodsDir: "/tmp/x", ScrapeJobs: jobs},
	} {
		var buf bytes.Buffer
		require.NoError(t, democonfig.Render(&buf, cfg))
		configs[name] = buf.Bytes()
	}
	for name, raw := range configs {
		t.Run(name, func(t *testing.T) {
			ret, err := confmap.NewRetrievedFromYAML(raw)
			require.NoError(t, err)
			raw, err := ret.AsRaw()
			require.NoError(t, err)
			conf := confmap.NewFromStringMap(raw.(map[string]any))
			kinds := map[string]func(string) (string, bool){
				"receivers":  canonical(factories.Receivers),
				"processors": canonical(factories.Processors),
				"exporters":  canonical(factories.Exporters),
				"extensions": canonical(factories.Extensions),
				"connectors": canonical(factories.Connectors),
			}
			for kind, lookup := range kinds {
				sub, err := conf.Sub(kind)
				require.NoError(t, err)
				for id := range sub.ToStringMap() {
					typ, _, _ := strings.Cut(id, "/")
					canon, ok := lookup(typ)
					require.True(t, ok, "%s: unknown %s type %q", name, kind, typ)
					assert.Equal(t, canon, typ, "%s: %s %q uses a deprecated alias", name, kind, id)
				}
			}
		})
	}
}

func canonical[T component.Factory](m map[component.Type]T) func(string) (string, bool) {
	return func(typ string) (string, bool) {
		for k, f := range m {
			if k.String() == typ {
				return f.Type().String(), true
			}
		}
		return "", false
	}
}

// TestDefaultProfilePersistence: every exporter of the default profile that
// sends off the node keeps what waits on disk (issue: at-least-once delivery
// through outages and restarts): the Fluentd and Jaeger exporters queue in
// weft_file_storage, weft_remote_write and the remote-write exporter write
// their WALs under the data dir.
func TestDefaultProfilePersistence(t *testing.T) {
	ret, err := confmap.NewRetrievedFromYAML(defaultConfig)
	require.NoError(t, err)
	raw, err := ret.AsRaw()
	require.NoError(t, err)
	conf := confmap.NewFromStringMap(raw.(map[string]any))
	for _, id := range []string{"fluent_forward", "otlp_grpc/jaeger"} {
		assert.Equal(t, "weft_file_storage", conf.Get("exporters::"+id+"::sending_queue::storage"), "%s queues on disk", id)
	}
	assert.Equal(t, "${env:WEFT_DATA_DIR:-/var/lib/weft}/remote-write-agent", conf.Get("extensions::weft_remote_write::wal::directory"))
	assert.Equal(t, "${env:WEFT_DATA_DIR:-/var/lib/weft}/remote-write-wal-otlp", conf.Get("exporters::prometheus_remote_write/otlp::wal::directory"))
	for _, id := range []string{"otlp_grpc/jaeger", "prometheus_remote_write/otlp"} {
		assert.EqualValues(t, 0, conf.Get("exporters::"+id+"::retry_on_failure::max_elapsed_time"), "%s never gives up while it can keep the data", id)
	}
	assert.Equal(t, "${env:WEFT_DATA_DIR:-/var/lib/weft}/queue", conf.Get("extensions::weft_file_storage::directory"))
}
