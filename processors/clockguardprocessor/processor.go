package clockguardprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftobs/weft/internal/refusal"
)

// reasonTooFarInFuture is the one refusal reason, named as weft_store names
// its own.
const reasonTooFarInFuture = "too_far_in_future"

// guard drops data points and exemplars stamped too far ahead.
type guard struct {
	logger  *zap.Logger
	skew    time.Duration
	now     func() time.Time
	points  *refusal.Counts // data points by source
	exemplr *refusal.Counts // exemplars by source
	reg     metric.Registration
}

func newGuard(set component.TelemetrySettings, cfg *Config, now func() time.Time) (*guard, error) {
	g := &guard{logger: set.Logger, skew: cfg.MaxFutureSkew, now: now, points: refusal.New(), exemplr: refusal.New()}
	if set.MeterProvider == nil {
		return g, nil
	}
	m := set.MeterProvider.Meter("github.com/weftobs/weft/processors/clockguardprocessor")
	points, err1 := m.Int64ObservableCounter("clock_guard.refused_data_points",
		metric.WithDescription("Metric data points dropped because they were stamped too far ahead of the node's clock, by reason and source."),
		metric.WithUnit("{data_point}"))
	exemplars, err2 := m.Int64ObservableCounter("clock_guard.refused_exemplars",
		metric.WithDescription("Exemplars dropped because they were stamped too far ahead of the node's clock, by reason and source."),
		metric.WithUnit("{exemplar}"))
	for _, err := range []error{err1, err2} {
		if err != nil {
			return nil, err
		}
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		observe(o, points, g.points)
		observe(o, exemplars, g.exemplr)
		return nil
	}, points, exemplars)
	if err != nil {
		return nil, err
	}
	g.reg = reg
	return g, nil
}

func observe(o metric.Observer, c metric.Int64ObservableCounter, counts *refusal.Counts) {
	for r, bySource := range counts.Snapshot() {
		for src, n := range bySource {
			o.ObserveInt64(c, n, metric.WithAttributes(attribute.String("reason", r), attribute.String("source", src)))
		}
	}
}

func (g *guard) shutdown(context.Context) error {
	if g.reg != nil {
		return g.reg.Unregister()
	}
	return nil
}

// batch is what one call refused, for the log line and the error.
type batch struct {
	now       time.Time
	maxt      pcommon.Timestamp
	kept      int // data points left
	refused   int // data points dropped
	exemplars int // exemplars dropped
}

// resourceRefusal is the first refusal seen in one resource, kept for its
// log line.
type resourceRefusal struct {
	metric  string
	t       pcommon.Timestamp
	points  int
	exemplr int
}

func (g *guard) processMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	now := g.now()
	b := batch{now: now, maxt: pcommon.NewTimestampFromTime(now.Add(g.skew))}
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		var rr resourceRefusal
		emptied := false
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			before := sm.Metrics().Len()
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool { return g.filterMetric(m, &b, &rr) })
			gone := before > 0 && sm.Metrics().Len() == 0
			emptied = emptied || gone
			return gone
		})
		if rr.points > 0 || rr.exemplr > 0 {
			g.note(b, rm.Resource().Attributes(), rr)
		}
		return emptied && rm.ScopeMetrics().Len() == 0
	})
	if b.refused > 0 && b.kept == 0 {
		// A status of its own: the OTLP receiver answers InvalidArgument
		// (HTTP 400, not retried) instead of its default for a permanent
		// error, Internal (500).
		return md, consumererror.NewPermanent(status.Errorf(codes.InvalidArgument,
			"clock_guard: all %d data points are stamped more than max_future_skew (%s) ahead of the node's clock (%s)",
			b.refused, g.skew, now.UTC().Format(time.RFC3339)))
	}
	return md, nil
}

// filterMetric drops m's data points and exemplars stamped after b.maxt and
// reports whether m is left without data points because of it.
func (g *guard) filterMetric(m pmetric.Metric, b *batch, rr *resourceRefusal) bool {
	refused, exemplars := 0, 0
	// late reports whether a data point stamped t is dropped.
	late := func(t pcommon.Timestamp) bool {
		if t <= b.maxt {
			return false
		}
		refused++
		if rr.t == 0 {
			rr.metric, rr.t = m.Name(), t
		}
		return true
	}
	// trimExemplars drops a kept data point's late exemplars; it returns
	// false (the data point stays) so it reads as the second half of late.
	trimExemplars := func(ex pmetric.ExemplarSlice) bool {
		ex.RemoveIf(func(e pmetric.Exemplar) bool {
			if e.Timestamp() > b.maxt {
				exemplars++
				return true
			}
			return false
		})
		return false
	}
	var left int
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool { return late(dp.Timestamp()) || trimExemplars(dp.Exemplars()) })
		left = dps.Len()
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool { return late(dp.Timestamp()) || trimExemplars(dp.Exemplars()) })
		left = dps.Len()
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		dps.RemoveIf(func(dp pmetric.HistogramDataPoint) bool { return late(dp.Timestamp()) || trimExemplars(dp.Exemplars()) })
		left = dps.Len()
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		dps.RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool {
			return late(dp.Timestamp()) || trimExemplars(dp.Exemplars())
		})
		left = dps.Len()
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		dps.RemoveIf(func(dp pmetric.SummaryDataPoint) bool { return late(dp.Timestamp()) })
		left = dps.Len()
	}
	b.kept += left
	b.refused += refused
	b.exemplars += exemplars
	rr.points += refused
	rr.exemplr += exemplars
	return refused > 0 && left == 0
}

// note counts one resource's refusals and logs them, at most once per
// source per refusal.LogInterval.
func (g *guard) note(b batch, attrs pcommon.Map, rr resourceRefusal) {
	src := refusal.SourceOf(attrs)
	logPoints, points := false, int64(0)
	if rr.points > 0 {
		logPoints, points = g.points.Note(b.now, reasonTooFarInFuture, src.ID, int64(rr.points))
	}
	logEx, exemplars := false, int64(0)
	if rr.exemplr > 0 {
		logEx, exemplars = g.exemplr.Note(b.now, reasonTooFarInFuture, src.ID, int64(rr.exemplr))
	}
	if !logPoints && !logEx {
		return
	}
	fields := []zap.Field{
		zap.String("source", src.ID), zap.String("job", src.Job), zap.String("instance", src.Instance),
		zap.Time("node_time", b.now), zap.Duration("max_future_skew", g.skew),
		zap.Int64("refused_data_points", points), zap.Int64("refused_exemplars", exemplars),
	}
	if rr.t != 0 {
		fields = append(fields, zap.String("metric", rr.metric), zap.Time("sample_time", rr.t.AsTime()),
			zap.Duration("skew", rr.t.AsTime().Sub(b.now)))
	}
	g.logger.Warn("Metric data stamped too far ahead of the node's clock dropped", fields...)
}
