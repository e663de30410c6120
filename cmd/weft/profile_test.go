package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The node's external labels are stated four times in the shipped profile
// (the store's StoreAPI edge, the rules' alerts, both remote-write
// exporters) and must agree, or the same data would carry different
// identities in Thanos Query, Alertmanager and the remote store. The
// DaemonSet's overrides must not set them apart either.
func TestProfileExternalLabelsAgree(t *testing.T) {
	var profile struct {
		Extensions map[string]struct {
			ExternalLabels map[string]string `yaml:"external_labels"`
		} `yaml:"extensions"`
		Exporters map[string]struct {
			ExternalLabels map[string]string `yaml:"external_labels"`
		} `yaml:"exporters"`
	}
	require.NoError(t, yaml.Unmarshal(defaultConfig, &profile))
	want := profile.Extensions["weft_store"].ExternalLabels
	require.Contains(t, want, "node", "weft_store external_labels name the node")
	assert.Equal(t, "${env:NODE_NAME:-unknown}", want["node"])
	assert.Equal(t, want, profile.Extensions["weft_rules"].ExternalLabels, "weft_rules")
	remoteWrite := 0
	for id, exp := range profile.Exporters {
		if id == "prometheus_remote_write" || strings.HasPrefix(id, "prometheus_remote_write/") {
			remoteWrite++
			assert.Equal(t, want, exp.ExternalLabels, id)
		}
	}
	assert.Equal(t, 2, remoteWrite, "both remote-write exporters checked")

	overrides, err := os.ReadFile("../../deploy/base/config/agent.yaml")
	require.NoError(t, err)
	assert.NotContains(t, string(overrides), "external_labels", "the DaemonSet keeps the profile's external labels (change them there, all four)")
}
