package promapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/rulesapi"
)

// /api/v1/rules carries each rule's scope and why, and the partials of
// cluster rules as recording rules naming the rule they serve.
func TestRulesScope(t *testing.T) {
	f := newFixtureRules(t, func(time.Time) *fakeRules {
		return &fakeRules{groups: []rulesapi.Group{{
			Name: "svc", File: "/etc/weft/rules/svc.yaml", Interval: 15 * time.Second,
			Rules: []rulesapi.Rule{
				{Type: "alerting", Name: "PodErrors", Query: `sum by (pod) (rate(errors[5m])) > 1`, Health: "ok", State: "inactive",
					Scope: rulesapi.ScopeNode, ScopeReason: "sum by (pod) keeps pod"},
				{Type: "alerting", Name: "ServiceErrors", Query: `sum by (service) (rate(errors[5m])) > 1`, Health: "unknown", State: "inactive",
					Scope: rulesapi.ScopeCluster, ScopeReason: "sum by (service) drops node/pod/instance"},
				{Type: "recording", Name: "weft:partial:0123456789abcdef", Query: `sum by (service) (rate(errors[5m]))`, Health: "ok",
					Scope: rulesapi.ScopeNode, ScopeReason: "partial", PartialOf: "ServiceErrors"},
				{Type: "recording", Name: "plain", Query: `up`, Health: "ok"},
			},
		}}}
	})
	code, env := promGet(t, f.url, "/api/v1/rules", nil)
	require.Equal(t, 200, code)
	var rd struct {
		Groups []struct {
			Rules []map[string]any `json:"rules"`
		} `json:"groups"`
	}
	require.NoError(t, json.Unmarshal(env.Data, &rd))
	require.Len(t, rd.Groups, 1)
	rules := rd.Groups[0].Rules
	require.Len(t, rules, 4)
	assert.Equal(t, "node", rules[0]["scope"])
	assert.Equal(t, "sum by (pod) keeps pod", rules[0]["scopeReason"])
	assert.Equal(t, "cluster", rules[1]["scope"])
	assert.Equal(t, "sum by (service) drops node/pod/instance", rules[1]["scopeReason"])
	assert.Equal(t, "recording", rules[2]["type"])
	assert.Equal(t, "ServiceErrors", rules[2]["partialOf"])
	assert.NotContains(t, rules[3], "scope", "an engine that decides no scope adds no field")
	assert.NotContains(t, rules[0], "partialOf")
}
