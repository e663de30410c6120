package podscrapereceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/weftobs/weft/internal/kube"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(name)
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestLoadConfig(t *testing.T) {
	cfg := loadConfig(t, "pod_scrape")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "node-a", cfg.NodeName)
	assert.Equal(t, kube.APIConfig{APIServer: "https://10.96.0.1:443", TokenFile: "/var/run/secrets/weft/token", CAFile: "/var/run/secrets/weft/ca.crt"}, cfg.KubernetesAPI)
	assert.True(t, cfg.IstioSidecars && cfg.Annotations && cfg.Knative)
	require.Len(t, cfg.Monitors, 1)
	assert.Equal(t, 30*time.Second, cfg.Monitors[0].Interval)
	assert.Equal(t, map[string]string{"app": "my-function"}, cfg.Monitors[0].Selector.MatchLabels)
	require.Len(t, cfg.ScrapeConfigs, 2)
	sc := cfg.ScrapeConfigs[0]
	assert.Equal(t, "envoy-static", sc.JobName)
	assert.Equal(t, 10*time.Second, sc.ScrapeInterval)
	assert.Equal(t, int64(10485760), sc.BodySizeLimit)
	assert.Equal(t, 100000, sc.SampleLimit)
	assert.True(t, sc.HonorLabels)
	require.Len(t, sc.MetricRelabelConfigs, 1)
	assert.Equal(t, "envoy_server_.*", *sc.MetricRelabelConfigs[0].Regex)

	jobs, err := buildJobs(cfg)
	require.NoError(t, err)
	names := []string{}
	for _, j := range jobs {
		names = append(names, j.name)
	}
	assert.Equal(t, []string{"envoy-static", "functions", istioJob, annotationsJob, knativeJob, "my-function"}, names)
	assert.Equal(t, 30*time.Second, jobs[5].interval)
	assert.Equal(t, 15*time.Second, jobs[1].interval, "default scrape_interval")
	assert.Equal(t, "/metrics", jobs[1].path)
	assert.Equal(t, int64(64<<20), jobs[1].bodyLimit, "receiver-wide body_size_limit when the job sets none")
	assert.Equal(t, int64(10485760), jobs[0].bodyLimit)
	assert.Equal(t, 10*time.Second, jobs[1].timeout)
}

func TestValidateNamesKeys(t *testing.T) {
	cfg := loadConfig(t, "pod_scrape/bad")
	err := confmap.Validate(cfg)
	require.Error(t, err)
	for _, want := range []string{
		"scrape_interval: must be positive",
		"scrape_configs[0].job_name",
		"scrape_configs[0].scheme: \"ftp\"",
		"scrape_configs[0].metrics_path",
		"scrape_configs[0].static_configs[0].targets[0]",
		"scrape_configs[0].kubernetes_sd_configs[0].role: \"node\"",
		"scrape_configs[0].relabel_configs[0]: action: \"explode\"",
		"scrape_configs[0].relabel_configs[1]: regex",
		"monitors[0].selector.match_labels",
		"monitors[0].port",
		"appendables[2]: weft_store is listed already (appendables[0])",
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestLoadConfigAppendables(t *testing.T) {
	cfg := loadConfig(t, "pod_scrape/native")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, []component.ID{component.MustNewID("weft_store"), component.MustNewID("weft_remote_write")}, cfg.Appendables)
	assert.False(t, cfg.PData)
	assert.True(t, loadConfig(t, "pod_scrape").PData, "pdata defaults to true")

	err := confmap.Validate(loadConfig(t, "pod_scrape/nowhere"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pdata: false needs appendables")
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig()
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "pod_scrape", NewFactory().Type().String())
}

func TestValidateAPIServer(t *testing.T) {
	for _, tc := range []struct {
		name, global, job, want string
	}{
		{name: "in cluster"},
		{name: "https URL", global: "https://10.96.0.1:443", job: "http://127.0.0.1:8001"},
		{name: "no scheme", global: "kubernetes.default.svc:443", want: `kubernetes_api.api_server: must be an http(s)://host[:port] URL or empty (in cluster), got "kubernetes.default.svc:443"`},
		{name: "job ftp", job: "ftp://k8s", want: `scrape_configs[0].kubernetes_sd_configs[0].api_server: must be an http(s)://host[:port] URL or empty (in cluster), got "ftp://k8s"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.KubernetesAPI.APIServer = tc.global
			cfg.ScrapeConfigs = []ScrapeConfig{{JobName: "j", KubernetesSDConfigs: []KubernetesSDConfig{{Role: "pod", APIServer: tc.job}}}}
			err := cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
