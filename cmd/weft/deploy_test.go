package main

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestDaemonSetProvidesDefaultConfigEnv keeps deploy/base and the embedded
// default in step: the DaemonSet runs the embedded default (with the
// deployment's overrides after it), every environment variable the default
// reads without a fallback is set by the DaemonSet, and the DaemonSet sets
// the downward-API ones the profile is built around. deploy/config_test.go
// checks the rendered DaemonSet's whole environment (ConfigMaps included)
// against the merged configuration.
func TestDaemonSetProvidesDefaultConfigEnv(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/base/daemonset.yaml")
	require.NoError(t, err)
	var ds struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name string
						Args []string
						Env  []struct {
							Name      string
							Value     string
							ValueFrom map[string]map[string]string `yaml:"valueFrom"`
						}
					}
				}
			}
		}
	}
	require.NoError(t, yaml.Unmarshal(raw, &ds))
	require.Len(t, ds.Spec.Template.Spec.Containers, 1)
	c := ds.Spec.Template.Spec.Containers[0]
	// The embedded default first, then the deployment's overrides from the
	// weft-config ConfigMap (deploy/base/config/agent.yaml).
	assert.Equal(t, []string{"--config", "weft:default", "--config", "/etc/weft/config/agent.yaml"}, c.Args,
		"the DaemonSet runs the embedded default with deploy/base/config/agent.yaml over it")

	set := map[string]string{}
	for _, e := range c.Env {
		set[e.Name] = e.Value
		if f, ok := e.ValueFrom["fieldRef"]; ok {
			set[e.Name] = f["fieldPath"]
		}
	}
	assert.Equal(t, "status.podIP", set["POD_IP"])
	assert.Equal(t, "spec.nodeName", set["NODE_NAME"])
	assert.Equal(t, "/var/lib/weft", set["WEFT_DATA_DIR"])

	for _, m := range regexp.MustCompile(`\$\{env:([A-Z_]+)(:-[^}]*)?\}`).FindAllStringSubmatch(string(defaultConfig), -1) {
		if m[2] == "" {
			assert.Contains(t, set, m[1], "the default config needs %s, which the DaemonSet does not set", m[1])
		}
	}
}

// TestShippedRulesAgree: the HighErrorRate rules exist three times (the
// rules package's tests, deploy/, the demo's embedded copy); they must say
// the same thing. internal/democonfig's TestRulesMatchDeploy checks the
// demo's copy.
func TestShippedRulesAgree(t *testing.T) {
	manifest, err := os.ReadFile("../../rules/testdata/deploy/high-error-rate.prometheusrule.yaml")
	require.NoError(t, err)
	shipped, err := os.ReadFile("../../deploy/base/rules/high-error-rate.prometheusrule.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(manifest), string(shipped), "deploy/base/rules differs from rules/testdata/deploy")
}
