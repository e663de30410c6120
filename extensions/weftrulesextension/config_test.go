package weftrulesextension

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/weftobs/weft/internal/kube"
	"github.com/weftobs/weft/rules"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	full.Store = component.MustNewIDWithName("weft_store", "node")
	full.Pins = "weft_pins/cluster"
	full.RuleFiles = []string{"/etc/weft/rules/*.yaml", "/etc/weft/extra"}
	full.EvaluationInterval = 30 * time.Second
	full.ReloadInterval = 10 * time.Second
	full.ResendDelay = 2 * time.Minute
	full.Alertmanagers = []rules.AlertmanagerConfig{
		{URL: "https://alertmanager.monitoring:9093/prefix", BearerTokenFile: "/var/run/secrets/am-token",
			TLS: rules.TLSConfig{CAFile: "/etc/ssl/am-ca.pem", ServerName: "alertmanager"}},
		{URL: "http://127.0.0.1:9093", BasicAuth: &rules.BasicAuth{Username: "weft", Password: "secret"}},
	}
	full.Webhooks = []string{"http://127.0.0.1:8080/hook"}
	full.ExternalLabels = map[string]string{"cluster": "prod", "node": "n1"}
	full.Kubernetes = rules.KubernetesConfig{
		Enabled:    true,
		APIConfig:  kube.APIConfig{APIServer: "https://10.96.0.1:443", TokenFile: "/var/run/secrets/weft/token", CAFile: "/var/run/secrets/weft/ca.crt"},
		Namespaces: []string{"shop"}, LabelSelector: "team=a",
	}
	full.Evidence.MaxTraces = 5
	full.Evidence.LinkTemplate = "http://jaeger:16686/trace/{{ .TraceID }}"
	full.Scope = rules.ScopeConfig{PartitionLabels: []string{"hostname"}, ObjectMetrics: []string{"kube_.*", "kubelet_node_.*"}, ClusterRules: "node"}

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr []string
	}{
		{id: component.MustNewID("weft_rules"), want: createDefaultConfig().(*Config)},
		{id: component.MustNewIDWithName("weft_rules", "full"), want: full},
		{id: component.MustNewIDWithName("weft_rules", "bad"), wantErr: []string{
			"pins: want a component ID",
			"evaluation_interval: must be positive",
			"alertmanagers[0].url:",
			"alertmanagers[0]: set at most one of bearer_token and bearer_token_file",
			"webhooks[0]:",
			"evidence.max_traces:",
			"evidence.link_template:",
			"kubernetes.namespaces[1]: empty",
			`kubernetes.namespaces[2]: "shop" listed twice`,
			"kubernetes.token_file: not used with kubernetes.kubeconfig_file",
			`scope.partition_labels[0]: invalid label name ""`,
			"scope.object_metrics[0]:",
			`scope.cluster_rules: must be "ruler" or "node", got "thanos"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "weft_rules", f.Type().String())
	cfg := f.CreateDefaultConfig().(*Config)
	assert.Equal(t, "weft_store", cfg.Store.String())
	assert.Equal(t, 3, cfg.Evidence.MaxTraces)
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	assert.Equal(t, []component.ID{cfg.Store}, ext.(*Extension).Dependencies())
	// Shutdown without Start, twice.
	require.NoError(t, ext.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))
	// Start without the store names the key.
	ext2, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	err = ext2.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "store:")
	require.NoError(t, ext2.Shutdown(context.Background()))
}
