package translate

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// promoted are the resource attributes that become labels of every series,
// named the way Prometheus's promote_resource_attributes names them.
var promoted = []struct{ attr, label string }{
	{"k8s.namespace.name", "k8s_namespace_name"},
	{"k8s.pod.name", "k8s_pod_name"},
	{"k8s.container.name", "k8s_container_name"},
	{"k8s.node.name", "k8s_node_name"},
}

// ScrapedScope is the instrumentation scope of pod_scrape's metrics, and
// ExposedBoundsKey its metric metadata key for bounds exposed in another
// form than 'g' (podscrapereceiver.ExposedBoundsKey; the store does not import
// receivers).
const (
	ScrapedScope     = "github.com/weftobs/weft/receivers/podscrapereceiver"
	ExposedBoundsKey = "weft.prometheus.exposed_bounds"
)

// resourceLabels sets a.res (sorted) from the resource attributes: job and
// instance, and a.promRes from the promoted k8s attributes.
func (a *Translator) resourceLabels(attrs pcommon.Map) {
	a.res, a.promRes = a.res[:0], a.promRes[:0]
	if svc := attrString(attrs, "service.name"); svc != "" {
		job := svc
		if ns := attrString(attrs, "service.namespace"); ns != "" {
			job = ns + "/" + svc
		}
		a.res = append(a.res, labels.Label{Name: "job", Value: job})
	}
	if inst := attrString(attrs, "service.instance.id"); inst != "" {
		a.res = append(a.res, labels.Label{Name: "instance", Value: inst})
	}
	for _, p := range promoted {
		if v := attrString(attrs, p.attr); v != "" {
			a.promRes = append(a.promRes, labels.Label{Name: p.label, Value: v})
		}
	}
}

// resLabels are the resource's labels for the current scope: job and
// instance, plus the promoted k8s labels for OTel-named metrics (a
// Prometheus scraping a target adds none of them).
func (a *Translator) resLabels() []labels.Label {
	if a.asExposed || len(a.promRes) == 0 {
		return a.res
	}
	a.resAll = append(append(a.resAll[:0], a.res...), a.promRes...)
	return a.resAll
}

// formatBound formats an le or quantile label value. Scraped bounds use
// the shortest 'g' form, what Go's client library and Envoy expose
// (1e+06, 0.00011, 1e-05), so that the label matches what Prometheus
// stored from the same exposition; OTel-named metrics keep the OTel
// translator's form.
func (a *Translator) formatBound(f float64) string {
	if a.asExposed && !math.IsInf(f, 0) {
		g := strconv.FormatFloat(f, 'g', -1, 64)
		if a.boundTexts != (pcommon.Map{}) {
			if raw, ok := a.boundTexts.Get(g); ok {
				return raw.AsString()
			}
		}
		return g
	}
	return formatFloat(f)
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// buildLabels builds the label set of a new series: the Prometheus name,
// the resource labels, the point attributes (which win over resource labels
// of the same name) and the bucket/quantile label.
func (a *Translator) buildLabels(kind byte, extraName, extraValue string) labels.Labels {
	if a.promName == "" {
		name, err := a.metricNamer.Build(otlptranslator.Metric{Name: a.metric.Name(), Unit: a.metric.Unit(), Type: a.mtype})
		if a.asExposed {
			name, err = a.metric.Name(), nil
		}
		if err != nil || name == "" {
			name = "unnamed_metric"
		}
		a.promName = name
	}
	name := a.promName
	switch kind {
	case kindBucket:
		name += "_bucket"
	case kindSum:
		name += "_sum"
	case kindCount:
		name += "_count"
	}
	ls := a.ls[:0]
	for k, v := range a.attrs.All() {
		ln, err := a.labelNamer.Build(k)
		if a.asExposed {
			ln, err = k, nil // exposed label names are Prometheus names already
		}
		if err != nil || ln == "" {
			continue // an empty attribute key names no label
		}
		ls = append(ls, labels.Label{Name: ln, Value: v.AsString()})
	}
	// Attributes with the same sanitized name are joined with ";" as the
	// Prometheus OTLP translator does.
	slices.SortStableFunc(ls, func(x, y labels.Label) int { return strings.Compare(x.Name, y.Name) })
	out := ls[:0]
	for _, l := range ls {
		if n := len(out); n > 0 && out[n-1].Name == l.Name {
			out[n-1].Value += ";" + l.Value
			continue
		}
		out = append(out, l)
	}
	ls = out
	has := func(n string) bool {
		_, found := slices.BinarySearchFunc(out, n, func(l labels.Label, n string) int { return strings.Compare(l.Name, n) })
		return found
	}
	for _, l := range a.resLabels() {
		if !has(l.Name) {
			ls = append(ls, l)
		}
	}
	if extraName != "" {
		ls = append(ls, labels.Label{Name: extraName, Value: extraValue})
	}
	ls = append(ls, labels.Label{Name: model.MetricNameLabel, Value: name})
	a.ls = ls
	return labels.New(ls...)
}

func attrString(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}
