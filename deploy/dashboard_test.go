package deploy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/weftobs/weft/internal/kube"
)

const dashboardFile = "grafana/dashboards/weft-node.json"

// grafanaDashboard is the part of Grafana's dashboard model these tests read.
type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Type       string     `json:"type"`
			Datasource grafanaRef `json:"datasource"`
			Query      struct {
				Query string `json:"query"`
			} `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *grafanaRef    `json:"datasource"`
	Panels     []grafanaPanel `json:"panels"` // collapsed rows
	Targets    []struct {
		RefID      string     `json:"refId"`
		Datasource grafanaRef `json:"datasource"`
		Expr       string     `json:"expr"`
		Exemplar   bool       `json:"exemplar"`
	} `json:"targets"`
}

// grafanaDatasources is Grafana's datasource provisioning file, decoded
// strictly.
type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name     string `json:"name"`
		UID      string `json:"uid"`
		Type     string `json:"type"`
		Access   string `json:"access"`
		URL      string `json:"url"`
		Editable bool   `json:"editable"`
		JSONData struct {
			HTTPMethod                  string `json:"httpMethod,omitempty"`
			PrometheusType              string `json:"prometheusType,omitempty"`
			TimeInterval                string `json:"timeInterval,omitempty"`
			ExemplarTraceIDDestinations []struct {
				Name          string `json:"name"`
				DatasourceUID string `json:"datasourceUid"`
			} `json:"exemplarTraceIdDestinations,omitempty"`
			HTTPHeaderName1 string `json:"httpHeaderName1,omitempty"`
		} `json:"jsonData"`
		SecureJSONData struct {
			HTTPHeaderValue1 string `json:"httpHeaderValue1,omitempty"`
		} `json:"secureJsonData"`
	} `json:"datasources"`
}

// grafanaVars are the dashboard's variables and Grafana's built-in
// intervals, replaced by plain values before a query is parsed.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "30m", "$service", ".*")

func loadDashboard(t testing.TB) grafanaDashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(raw, &d), "dashboard JSON")
	return d
}

// queries returns every PromQL expression of the dashboard (panel targets
// and label_values variables), keyed by where it is.
func (d grafanaDashboard) queries() map[string]string {
	out := map[string]string{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out[fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Query.Query); m != nil {
			out["variable "+v.Name] = m[1]
		}
	}
	return out
}

// dashboardMetrics parses every query of the dashboard and returns the
// metric names they select.
func dashboardMetrics(t testing.TB) []string {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	names := map[string]bool{}
	for where, q := range loadDashboard(t).queries() {
		expr, err := p.ParseExpr(grafanaVars.Replace(q))
		require.NoError(t, err, "%s: %s", where, q)
		found := 0
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					require.Equal(t, labels.MatchEqual, m.Type, "%s: select metrics by exact name", where)
					name = m.Value
				}
			}
			require.NotEmpty(t, name, "%s: a selector without a metric name", where)
			names[name] = true
			found++
			return nil
		})
		require.NotZero(t, found, "%s selects no metric: %s", where, q)
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestDashboardQueriesParse(t *testing.T) {
	d := loadDashboard(t)
	assert.NotEmpty(t, d.UID)
	assert.NotEmpty(t, d.Title)
	metrics := dashboardMetrics(t)
	// Node RED: rate and errors from calls, duration from the histogram,
	// for services (span metrics) and the mesh; alert panels over ALERTS.
	for _, m := range []string{
		"traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds_bucket",
		"istio_requests_total", "istio_request_duration_milliseconds_bucket", "http_requests_total", "ALERTS",
	} {
		assert.Contains(t, metrics, m)
	}
	qs := d.queries()
	var errorQueries, alertPanels int
	for _, q := range qs {
		if strings.Contains(q, `STATUS_CODE_ERROR`) || strings.Contains(q, `"5.."`) {
			errorQueries++
		}
		if strings.Contains(q, "ALERTS{") || strings.Contains(q, "(ALERTS)") || q == "ALERTS" {
			alertPanels++
		}
	}
	assert.GreaterOrEqual(t, errorQueries, 3, "error panels for services, mesh and applications")
	assert.GreaterOrEqual(t, alertPanels, 3, "alert panels: firing, pending, the list")
}

// A query that does not parse fails the test that reads the dashboard.
func TestDashboardParserRejectsBadQuery(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	_, err := p.ParseExpr(grafanaVars.Replace(`sum by (service_name) (rate(traces_span_metrics_calls_total[$__rate_interval])`))
	require.Error(t, err)
	_, err = p.ParseExpr(grafanaVars.Replace(`rate(traces_span_metrics_calls_total[$unknown])`))
	require.Error(t, err, "an unknown Grafana variable is left in place and does not parse")
}

// clusterDatasource is the uid of the datasource at Thanos Query
// (deploy/components/thanos-query); nodeDatasource the one at an agent.
const (
	clusterDatasource = "weft-cluster"
	nodeDatasource    = "weft-prometheus"
)

func TestGrafanaDatasources(t *testing.T) {
	raw, err := os.ReadFile("grafana/provisioning/datasources/weft.yaml")
	require.NoError(t, err)
	var ds grafanaDatasources
	require.NoError(t, decodeStrict(raw, &ds))
	byUID := map[string]string{} // uid → type
	svc := mustBundle(t, "base")
	var queryHost string
	for _, s := range svc.Services {
		if s.Spec.ClusterIP == "None" && slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == 8686 }) {
			queryHost = fmt.Sprintf("%s.%s.svc:8686", s.Name, s.Namespace)
		}
	}
	require.NotEmpty(t, queryHost, "the base has a headless Service with the query port")
	// Thanos Query's Service, as the component renders it: its HTTP port.
	tq := named(t, mustBundle(t, thanosExample).Services, "thanos-query")
	i := slices.IndexFunc(tq.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "http" })
	require.GreaterOrEqual(t, i, 0, "Service thanos-query has a port named http")
	clusterHost := fmt.Sprintf("%s.%s.svc:%d", tq.Name, tq.Namespace, tq.Spec.Ports[i].Port)
	for _, d := range ds.Datasources {
		byUID[d.UID] = d.Type
		u, err := url.Parse(d.URL)
		require.NoError(t, err)
		want := queryHost
		if d.UID == clusterDatasource {
			want = clusterHost
		}
		assert.Equal(t, want, u.Host, "datasource %s points at its Service", d.Name)
		assert.Equal(t, "http", u.Scheme)
		assert.Equal(t, "proxy", d.Access, "datasource %s: Grafana's server sends the requests", d.Name)
	}
	assert.Equal(t, map[string]string{nodeDatasource: "prometheus", "weft-jaeger": "jaeger", clusterDatasource: "prometheus"}, byUID)
	// weft_query checks a bearer token on every request (base's
	// auth.kubernetes): each datasource at an agent sends Grafana's
	// ServiceAccount token from the file Kubernetes mounts, with Grafana's
	// $__file{} expansion (only in secureJsonData, never in plain
	// jsonData). Thanos Query checks none: the token is not sent there.
	for _, d := range ds.Datasources {
		if d.UID == clusterDatasource {
			assert.Empty(t, d.JSONData.HTTPHeaderName1, "datasource %s: no token to Thanos Query", d.Name)
			assert.Empty(t, d.SecureJSONData.HTTPHeaderValue1, "datasource %s: no token to Thanos Query", d.Name)
			assert.Equal(t, "Thanos", d.JSONData.PrometheusType, "datasource %s", d.Name)
			assert.Empty(t, d.JSONData.ExemplarTraceIDDestinations, "datasource %s: weft traces answers for one node, exemplars come from all", d.Name)
			continue
		}
		assert.Equal(t, "Authorization", d.JSONData.HTTPHeaderName1, "datasource %s", d.Name)
		assert.Equal(t, "Bearer $__file{"+kube.DefaultServiceAccountDir+"/token}", d.SecureJSONData.HTTPHeaderValue1, "datasource %s", d.Name)
	}
	for _, d := range ds.Datasources {
		for _, e := range d.JSONData.ExemplarTraceIDDestinations {
			assert.Equal(t, "jaeger", byUID[e.DatasourceUID], "exemplars open traces in the Jaeger datasource")
			assert.Equal(t, "trace_id", e.Name, "span_metrics and OpenMetrics exemplars carry trace_id")
		}
	}
	// Every panel uses a provisioned datasource.
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Datasource != nil {
				assert.Contains(t, byUID, p.Datasource.UID, "panel %q", p.Title)
			}
			for _, tg := range p.Targets {
				assert.Equal(t, "prometheus", byUID[tg.Datasource.UID], "panel %q target %s", p.Title, tg.RefID)
			}
			walk(p.Panels)
		}
	}
	walk(loadDashboard(t).Panels)
}

// The cluster row: its panels (and only they) read the cluster datasource,
// the node panels the node's; it shows the node dimension and the
// services' rate and errors summed over all nodes.
func TestDashboardClusterPanels(t *testing.T) {
	d := loadDashboard(t)
	var rows []grafanaPanel
	for _, p := range d.Panels {
		if p.Type == "row" && len(p.Panels) > 0 {
			rows = append(rows, p)
		}
	}
	require.Len(t, rows, 1, "one collapsed row holds the cluster panels")
	cluster := rows[0]
	uses := func(p grafanaPanel, uid string) {
		t.Helper()
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		assert.Equal(t, uid, p.Datasource.UID, "panel %q", p.Title)
		for _, tg := range p.Targets {
			assert.Equal(t, uid, tg.Datasource.UID, "panel %q target %s", p.Title, tg.RefID)
		}
	}
	for _, p := range d.Panels {
		if p.Type != "row" {
			uses(p, nodeDatasource)
		}
	}
	for _, v := range d.Templating.List {
		assert.Equal(t, nodeDatasource, v.Datasource.UID, "variable %s: the dashboard loads without the cluster component", v.Name)
	}
	require.GreaterOrEqual(t, len(cluster.Panels), 6)
	pp := parser.NewParser(parser.Options{})
	groupings := map[string]bool{} // "by (labels) metric" of every aggregation
	var errorRatio bool
	for _, p := range cluster.Panels {
		uses(p, clusterDatasource)
		for _, tg := range p.Targets {
			expr, err := pp.ParseExpr(grafanaVars.Replace(tg.Expr))
			require.NoError(t, err, "panel %q: %s", p.Title, tg.Expr)
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if a, ok := n.(*parser.AggregateExpr); ok && !a.Without {
					var metric string
					parser.Inspect(a.Expr, func(n parser.Node, _ []parser.Node) error {
						if vs, ok := n.(*parser.VectorSelector); ok && metric == "" {
							metric = vs.Name
						}
						return nil
					})
					groupings[fmt.Sprintf("%s by (%s) %s", a.Op, strings.Join(a.Grouping, ", "), metric)] = true
				}
				if b, ok := n.(*parser.BinaryExpr); ok && b.Op == parser.DIV && strings.Contains(b.LHS.String(), "STATUS_CODE_ERROR") {
					errorRatio = true
				}
				return nil
			})
		}
	}
	for _, want := range []string{
		"count by (node) up",
		"sum by (service_name) traces_span_metrics_calls_total",
		"sum by (le, service_name) traces_span_metrics_duration_milliseconds_bucket",
		"count by (node, alertname) ALERTS",
	} {
		assert.True(t, groupings[want], "a cluster panel aggregates %s; have %v", want, groupings)
	}
	assert.True(t, errorRatio, "a cluster panel shows the error ratio per service")
}
