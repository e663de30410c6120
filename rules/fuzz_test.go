package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// FuzzLoadRuleFile feeds arbitrary bytes to the loader: it must not panic,
// every error must name the file, and a file without errors must yield
// groups (possibly none).
func FuzzLoadRuleFile(f *testing.F) {
	for _, p := range []string{
		filepath.Join("testdata", "deploy", "high-error-rate.rules.yaml"),
		filepath.Join("testdata", "deploy", "high-error-rate.prometheusrule.yaml"),
		filepath.Join(realdata, "rules-istio-tools-stability-prometheusrule.yaml"),
	} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(highErrorRateRules))
	f.Add([]byte("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec: {groups: [{name: a, rules: []}]}\n---\n---\n"))
	f.Add([]byte("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec:\n  groups:\n"))
	p := parser.NewParser(parser.Options{})
	log := discardLogger()
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "fuzz.yaml"
		rgs, errs := loadRuleFile(path, data, p, log)
		for _, err := range errs {
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Fatalf("error does not name the file: %v", err)
			}
		}
		if len(errs) == 0 && rgs == nil {
			t.Fatalf("no error and no groups")
		}
	})
}

// watchSeeds are watch streams for FuzzWatchStream.
var watchSeeds = []string{
	`{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"shop","resourceVersion":"5"},"spec":{"groups":[]}}}
{"type":"MODIFIED","object":{"metadata":{"name":"a","namespace":"shop","resourceVersion":"6"},"spec":{"groups":[{"name":"g","rules":[]}]}}}
{"type":"BOOKMARK","object":{"kind":"PrometheusRule","metadata":{"resourceVersion":"9"}}}
{"type":"DELETED","object":{"metadata":{"name":"a","namespace":"shop","resourceVersion":"10"}}}
`,
	`{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"}}`,
	`{"type":"ERROR","object":{"kind":"Status","code":500,"reason":"InternalError"}}`,
	`{"type":"ADDED","object":{"metadata":{"name":"a"}}}`,
	`{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"shop","resourceVersion":"5"}`,
	`{"type":"WHATEVER","object":{}}`,
	`{"type":"ADDED","object":[1,2]}`,
	"\x00\xff{",
}

// FuzzWatchStream feeds arbitrary watch streams to the watcher: it must
// not panic; every stored object has a "kubernetes:<namespace>/<name>"
// name and valid JSON; an ERROR 410 is errGone; a clean stream's
// resourceVersion is that of its last event.
func FuzzWatchStream(f *testing.F) {
	for _, s := range watchSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w := &kubeWatcher{
			logger: zap.NewNop(), changed: make(chan struct{}, 1),
			objs: map[string]map[string][]byte{}, lastErr: map[string]error{},
		}
		rv := "1"
		_, err := w.follow("p", bytes.NewReader(data), &rv)
		if err != nil && !errors.Is(err, errGone) && !strings.HasPrefix(err.Error(), "watch: ") {
			t.Fatalf("error without context: %v", err)
		}
		for name, obj := range w.objs["p"] {
			ns, n, ok := strings.Cut(strings.TrimPrefix(name, kubeSourcePrefix), "/")
			if !strings.HasPrefix(name, kubeSourcePrefix) || !ok || ns == "" || n == "" {
				t.Fatalf("bad source name %q", name)
			}
			if !json.Valid(obj) {
				t.Fatalf("stored object %q is not JSON", name)
			}
		}
	})
}

// TestWatchStreamSeeds checks what the seed streams do.
func TestWatchStreamSeeds(t *testing.T) {
	tests := []struct {
		seed    int
		wantErr string
		wantRV  string
		objects []string
	}{
		{0, "", "10", nil},
		{1, errGone.Error(), "1", nil},
		{2, "watch: error event 500 InternalError", "1", nil},
		{3, "without namespace and name", "1", nil},
		{4, "watch: read event", "1", nil},
		{5, `unknown event type "WHATEVER"`, "1", nil},
		{6, "watch: decode ADDED PrometheusRule", "1", nil},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.seed), func(t *testing.T) {
			w := &kubeWatcher{
				logger: zap.NewNop(), changed: make(chan struct{}, 1),
				objs: map[string]map[string][]byte{}, lastErr: map[string]error{},
			}
			rv := "1"
			progressed, err := w.follow("p", strings.NewReader(watchSeeds[tt.seed]), &rv)
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.wantErr)
			}
			assert.True(t, progressed || tt.seed == 4)
			assert.Equal(t, tt.wantRV, rv)
			assert.Len(t, w.objs["p"], len(tt.objects))
		})
	}
	// The first seed stored, changed and deleted one object: midway it held
	// the MODIFIED version.
	w := &kubeWatcher{logger: zap.NewNop(), changed: make(chan struct{}, 1), objs: map[string]map[string][]byte{}, lastErr: map[string]error{}}
	rv := "1"
	first := strings.Join(strings.Split(watchSeeds[0], "\n")[:2], "\n")
	_, err := w.follow("p", strings.NewReader(first), &rv)
	require.NoError(t, err)
	assert.Equal(t, "6", rv)
	require.Contains(t, w.objs["p"], "kubernetes:shop/a")
	assert.Contains(t, string(w.objs["p"]["kubernetes:shop/a"]), `"name":"g"`)
}
