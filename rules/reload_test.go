package rules

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const twoRules = `groups:
- name: a
  rules:
  - record: r1
    expr: vector(1)
  - alert: A
    expr: vector(1) > 2
`

const threeRules = twoRules + `- name: b
  rules:
  - record: r2
    expr: vector(2)
`

func startFileEngine(t *testing.T, set Settings, mod func(*Config)) *Engine {
	t.Helper()
	st := newTestStore(t, "")
	cfg := testConfig()
	mod(cfg)
	return startEngine(t, st, cfg, set, nil)
}

func TestReloadKeepsOldSetOnError(t *testing.T) {
	var results reloadResults
	dir := t.TempDir()
	f := writeFile(t, dir, "r.yaml", twoRules)
	e := startFileEngine(t, Settings{OnReload: results.record}, func(c *Config) {
		c.RuleFiles = []string{filepath.Join(dir, "*.yaml")}
		c.ReloadInterval = 0 // reloads by hand only
	})
	s := e.Status()
	require.True(t, s.LastReloadSuccess, s.LastError)
	assert.Equal(t, 1, s.Groups)
	assert.Equal(t, 2, s.Rules)
	assert.Equal(t, []string{f}, s.Files)
	before := e.Groups()

	// An invalid set: rejected with file and line, the old groups run on.
	writeFile(t, dir, "r.yaml", twoRules+"  - alert: B\n    expr: sum(\n")
	err := e.Reload()
	require.Error(t, err)
	assert.Contains(t, err.Error(), f+": 9:11:")
	s = e.Status()
	assert.False(t, s.LastReloadSuccess)
	assert.Contains(t, s.LastError, f+": 9:11:")
	assert.Equal(t, int64(1), s.ReloadFailures)
	assert.Equal(t, 2, s.Rules)
	after := e.Groups()
	require.Len(t, after, 1)
	assert.Same(t, before[0], after[0], "the running group is untouched")

	assert.Equal(t, "rejected", s.State)
	assert.Equal(t, map[string]int64{"success": 1, "failure": 1}, results.byResult())

	// A valid set swaps in.
	writeFile(t, dir, "r.yaml", threeRules)
	require.NoError(t, e.Reload())
	s = e.Status()
	assert.True(t, s.LastReloadSuccess)
	assert.Empty(t, s.LastError)
	assert.Equal(t, 2, s.Groups)
	assert.Equal(t, 3, s.Rules)
	assert.Equal(t, "applied", s.State)
	assert.Equal(t, map[string]int64{"success": 2, "failure": 1}, results.byResult())

	// A file that disappears from the glob removes its groups.
	require.NoError(t, os.Rename(f, filepath.Join(dir, "r.disabled")))
	require.NoError(t, e.Reload())
	assert.Equal(t, 0, e.Status().Rules)
}

func TestReloadOnFileChange(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", twoRules)
	e := startFileEngine(t, Settings{}, func(c *Config) {
		c.RuleFiles = []string{dir}
		c.ReloadInterval = 20 * time.Millisecond
	})
	require.Equal(t, 2, e.Status().Rules)

	writeFile(t, dir, "bad.yaml", "groups:\n- name: x\n  rules:\n  - record: y\n    expr: rate(\n")
	require.Eventually(t, func() bool { return e.Status().ReloadFailures > 0 }, 10*time.Second, 10*time.Millisecond)
	s := e.Status()
	assert.Contains(t, s.LastError, "bad.yaml: 5:")
	assert.Equal(t, 2, s.Rules, "the previous set keeps running")
	failures := s.ReloadFailures

	require.NoError(t, os.Remove(filepath.Join(dir, "bad.yaml")))
	writeFile(t, dir, "more.yaml", "groups:\n- name: m\n  rules:\n  - record: z\n    expr: vector(3)\n")
	require.Eventually(t, func() bool { return e.Status().Rules == 3 }, 10*time.Second, 10*time.Millisecond)
	s = e.Status()
	assert.True(t, s.LastReloadSuccess)
	assert.Equal(t, failures, s.ReloadFailures, "an unchanged invalid set is not retried")
}

func TestStartWithInvalidRulesRunsNone(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up ==\n")
	e := startFileEngine(t, Settings{}, func(c *Config) {
		c.RuleFiles = []string{filepath.Join(dir, "r.yaml")}
	})
	s := e.Status()
	assert.False(t, s.LastReloadSuccess)
	assert.Contains(t, s.LastError, "r.yaml: 5:")
	assert.Zero(t, s.Rules)
	assert.Equal(t, "failed", s.State, "nothing ran, nothing runs")
}

// A glob that matches no file is no error, but the start logs one warning
// naming it; globs that match and plain paths log nothing.
func TestEmptyGlobWarnsOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "r.yaml", twoRules)
	empty := filepath.Join(dir, "missing", "*.rules.yaml")
	core, logs := observer.New(zap.WarnLevel)
	e := startFileEngine(t, Settings{Logger: zap.New(core)}, func(c *Config) {
		c.RuleFiles = []string{filepath.Join(dir, "*.yaml"), empty, filepath.Join(dir, "r.yaml")}
		c.ReloadInterval = 0
	})
	require.NoError(t, e.Reload())
	warned := logs.FilterMessageSnippet("matches no file").All()
	require.Len(t, warned, 1, "one warning for the empty glob, none per reload: %v", logs.All())
	assert.Equal(t, empty, warned[0].ContextMap()["glob"])
	assert.Equal(t, 1, e.Status().Groups, "the matching glob's rules run")
}
