package statuspage

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// exporterRow is one exporter on the status page, from the collector's
// exporterhelper self-metrics.
type exporterRow struct {
	Name                        string
	HasQueue                    bool
	QueueSize, QueueCapacity    float64
	Sent, Failed, EnqueueFailed float64
}

// lossRow is one non-zero series of a counter that counts lost or dropped
// data (its name says dropped, lost or refused), with its labels.
type lossRow struct {
	Metric string
	Labels string
	Value  float64
}

// maxTelemetryBytes bounds the self-metrics page read for the status page.
const maxTelemetryBytes = 8 << 20

// fetchTelemetry reads the agent's own Prometheus self-metrics.
func fetchTelemetry(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, maxTelemetryBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return fams, nil
}

// metricValue is a counter's, gauge's or untyped metric's value.
func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// exporterRows sums the exporterhelper series of every exporter: queue
// size and capacity, items sent, failed to send and refused by a full queue
// (all signals together).
func exporterRows(fams map[string]*dto.MetricFamily) []exporterRow {
	rows := map[string]*exporterRow{}
	for name, fam := range fams {
		name = strings.TrimSuffix(name, "_total")
		if !strings.HasPrefix(name, "otelcol_exporter_") {
			continue
		}
		for _, m := range fam.GetMetric() {
			exp := labelValue(m, "exporter")
			if exp == "" {
				continue
			}
			r := rows[exp]
			if r == nil {
				r = &exporterRow{Name: exp}
				rows[exp] = r
			}
			v := metricValue(m)
			switch {
			case name == "otelcol_exporter_queue_size":
				r.HasQueue, r.QueueSize = true, r.QueueSize+v
			case name == "otelcol_exporter_queue_capacity":
				r.HasQueue, r.QueueCapacity = true, r.QueueCapacity+v
			case strings.HasPrefix(name, "otelcol_exporter_sent_") && !strings.HasSuffix(name, "_wire"):
				r.Sent += v
			case strings.HasPrefix(name, "otelcol_exporter_send_failed_"):
				r.Failed += v
			case strings.HasPrefix(name, "otelcol_exporter_enqueue_failed_"):
				r.EnqueueFailed += v
			}
		}
	}
	out := make([]exporterRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b exporterRow) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// lossRows lists every non-zero counter series whose name says it counts
// data that was dropped, lost or refused, so that no loss on the node is
// out of sight.
func lossRows(fams map[string]*dto.MetricFamily) []lossRow {
	var out []lossRow
	for name, fam := range fams {
		if fam.GetType() != dto.MetricType_COUNTER {
			continue
		}
		if !strings.Contains(name, "dropped") && !strings.Contains(name, "_lost") && !strings.Contains(name, "refused") {
			continue
		}
		for _, m := range fam.GetMetric() {
			v := metricValue(m)
			if v == 0 {
				continue
			}
			var ls []string
			for _, l := range m.GetLabel() {
				if strings.HasPrefix(l.GetName(), "otel_scope_") || l.GetName() == "service_name" ||
					l.GetName() == "service_instance_id" || l.GetName() == "service_version" {
					continue
				}
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out = append(out, lossRow{Metric: name, Labels: strings.Join(ls, " "), Value: v})
		}
	}
	slices.SortFunc(out, func(a, b lossRow) int {
		return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Labels, b.Labels))
	})
	return out
}
