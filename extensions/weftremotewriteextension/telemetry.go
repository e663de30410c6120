package weftremotewriteextension

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// Names of the storage/remote and tsdb/agent metrics read from the
// extension's own registry.
const (
	promPrefix = "prometheus_remote_storage_"

	mHighest     = promPrefix + "queue_highest_timestamp_seconds"
	mHighestSent = promPrefix + "queue_highest_sent_timestamp_seconds"
	mShards      = promPrefix + "shards"

	mAgentAppended  = "prometheus_agent_samples_appended_total" // label type: float, histogram
	mAgentExemplars = "prometheus_agent_exemplars_appended_total"
	mAgentSeries    = "prometheus_agent_active_series"
)

// kinds are the three things a queue sends, as its metric names spell them.
var kinds = []string{"samples", "exemplars", "histograms"}

// promSample is one series of a gathered metric.
type promSample struct {
	labels map[string]string
	value  float64
}

// snapshot is the registry at one moment, by metric name.
type snapshot map[string][]promSample

func gather(g prometheus.Gatherer) snapshot {
	mfs, err := g.Gather()
	s := snapshot{}
	if err != nil && len(mfs) == 0 {
		return s
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			ps := promSample{labels: make(map[string]string, len(m.GetLabel()))}
			for _, l := range m.GetLabel() {
				ps.labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				ps.value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				ps.value = m.GetGauge().GetValue()
			default:
				continue
			}
			s[mf.GetName()] = append(s[mf.GetName()], ps)
		}
	}
	return s
}

// sum adds the series of name whose labels include every pair of match.
func (s snapshot) sum(name string, match ...string) float64 {
	var v float64
next:
	for _, ps := range s[name] {
		for i := 0; i+1 < len(match); i += 2 {
			if ps.labels[match[i]] != match[i+1] {
				continue next
			}
		}
		v += ps.value
	}
	return v
}

// pending is what endpoint's queue holds unsent (samples, exemplars and
// histograms).
func (s snapshot) pending(endpoint string) float64 {
	var v float64
	for _, k := range kinds {
		v += s.sum(promPrefix+k+"_pending", "remote_name", endpoint)
	}
	return v
}

// failed is what endpoint's queue gave up on (samples, exemplars and
// histograms).
func (s snapshot) failed(endpoint string) float64 {
	var v float64
	for _, k := range kinds {
		v += s.sum(promPrefix+k+"_failed_total", "remote_name", endpoint)
	}
	return v
}

// progressLoop records the progress marks every progressInterval and
// wakes the queues' WAL watchers.
func (r *RemoteWrite) progressLoop(ctx context.Context) {
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	var lastErr time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A watcher that was busy when an append notified it misses the
		// notification and reads again only at the next one, or after
		// 15 s: a notification each second bounds that wait.
		r.rs.Notify()
		r.recordProgress()
		if err := r.prog.Save(); err != nil && time.Since(lastErr) > time.Minute {
			lastErr = time.Now()
			r.logger.Warn("weft_remote_write: progress not saved; a restart may send samples twice", zap.Error(err))
		}
	}
}

// recordProgress moves the mark of each endpoint whose catch-up is over
// and whose queue holds nothing: everything it read from the WAL, up to
// the highest timestamp it took (whole seconds), is handled. The highest
// timestamp is read before the pending counts, so what the counts cover
// includes it.
func (r *RemoteWrite) recordProgress() { r.advanceMarks(gather(r.queues), gather(r.queues), nil) }

// advanceMarks moves the marks from two snapshots taken one after the
// other. With before (a snapshot from before the queues stopped), an
// endpoint whose failures grew since is left alone: a stop that cannot
// flush in time drops what its shards hold, counting it as failed and no
// longer pending, and those samples must be sent by the next start.
func (r *RemoteWrite) advanceMarks(first, second, before snapshot) {
	for i, rw := range r.pcfg.RemoteWriteConfigs {
		if !r.catchups[i].done.Load() {
			continue
		}
		h := first.sum(mHighest, "remote_name", rw.Name)
		if h <= 0 || second.pending(rw.Name) != 0 {
			continue
		}
		if before != nil && second.failed(rw.Name) != before.failed(rw.Name) {
			continue
		}
		r.prog.Advance(rw.Name, int64(h)*1000-1)
	}
}

// walFiles returns the number of WAL segments and the bytes of the WAL
// directory (segments and checkpoints).
func walFiles(dir string) (segments, bytes int64) {
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			bytes += fi.Size()
		}
		if filepath.Dir(path) == dir && !strings.HasSuffix(d.Name(), ".tmp") {
			segments++
		}
		return nil
	})
	return segments, bytes
}

// registerTelemetry publishes the queues' and the WAL's state as
// self-metrics, read from the extension's registry at collection time.
// Called with r.mu held.
func (r *RemoteWrite) registerTelemetry() error {
	if r.tel.MeterProvider == nil {
		return nil
	}
	m := r.tel.MeterProvider.Meter("github.com/weftobs/weft/extensions/weftremotewriteextension")
	var errs []error
	counter := func(name, desc, unit string) metric.Float64ObservableCounter {
		c, err := m.Float64ObservableCounter("weft_remote_write."+name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, desc, unit string) metric.Float64ObservableGauge {
		g, err := m.Float64ObservableGauge("weft_remote_write."+name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return g
	}
	sent := counter("sent", "Samples, exemplars and histograms the queue sent to the endpoint, by kind.", "{item}")
	failed := counter("failed", "Samples, exemplars and histograms the endpoint refused or that failed for good, by kind.", "{item}")
	retried := counter("retried", "Samples, exemplars and histograms sent again after a recoverable error, by kind.", "{item}")
	dropped := counter("dropped", "Samples, exemplars and histograms read from the WAL and not sent, by kind and reason (relabelling, too old, unknown series).", "{item}")
	pending := gauge("pending", "Samples, exemplars and histograms in the queue's shards, not yet sent, by kind.", "{item}")
	shards := gauge("shards", "Shards (concurrent senders) of the queue.", "{shard}")
	lag := gauge("lag", "Newest timestamp the queue took from the WAL minus the newest it sent.", "s")
	catchSent := counter("catchup_sent", "Samples, exemplars and histograms the catch-up sent at start (what the previous run left unsent), by kind.", "{item}")
	catchRefused := counter("catchup_refused", "Samples, exemplars and histograms of the catch-up that the endpoint refused (mostly ones it already had).", "{item}")
	refused := counter("refused", "Samples and histograms refused at append, by reason (too_far_in_future: stamped more than max_future_skew ahead of the node's clock).", "{item}")
	appended := counter("appended", "Samples, exemplars and histograms appended to the WAL, by kind.", "{item}")
	series := gauge("active_series", "Series the WAL tracks.", "{series}")
	walBytes := gauge("wal_size", "Bytes of the WAL directory (segments and checkpoint).", "By")
	walSegs := gauge("wal_segments", "WAL segment files.", "{segment}")
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	reg, dir := r.reg, filepath.Join(r.cfg.WAL.Directory, "wal")
	names := make([]string, len(r.pcfg.RemoteWriteConfigs))
	for i, rw := range r.pcfg.RemoteWriteConfigs {
		names[i] = rw.Name
	}
	catchups, tooFar := r.catchups, &r.tooFar
	registration, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := gather(reg)
		for i, name := range names {
			ep := attribute.String("endpoint", name)
			for _, k := range kinds {
				kind := attribute.String("kind", k)
				attrs := metric.WithAttributes(ep, kind)
				o.ObserveFloat64(sent, s.sum(promPrefix+k+"_total", "remote_name", name), attrs)
				o.ObserveFloat64(failed, s.sum(promPrefix+k+"_failed_total", "remote_name", name), attrs)
				o.ObserveFloat64(retried, s.sum(promPrefix+k+"_retried_total", "remote_name", name), attrs)
				o.ObserveFloat64(pending, s.sum(promPrefix+k+"_pending", "remote_name", name), attrs)
				for _, ps := range s[promPrefix+k+"_dropped_total"] {
					if ps.labels["remote_name"] == name {
						o.ObserveFloat64(dropped, ps.value, metric.WithAttributes(ep, kind, attribute.String("reason", ps.labels["reason"])))
					}
				}
			}
			st := catchups[i]
			o.ObserveFloat64(catchSent, float64(st.sent.Samples.Load()), metric.WithAttributes(ep, attribute.String("kind", "samples")))
			o.ObserveFloat64(catchSent, float64(st.sent.Exemplars.Load()), metric.WithAttributes(ep, attribute.String("kind", "exemplars")))
			o.ObserveFloat64(catchSent, float64(st.sent.Histograms.Load()), metric.WithAttributes(ep, attribute.String("kind", "histograms")))
			o.ObserveFloat64(catchRefused, float64(st.sent.Refused.Load()), metric.WithAttributes(ep))
			if st.live.Load() {
				o.ObserveFloat64(shards, s.sum(mShards, "remote_name", name), metric.WithAttributes(ep))
				o.ObserveFloat64(lag, max(0, s.sum(mHighest, "remote_name", name)-s.sum(mHighestSent, "remote_name", name)), metric.WithAttributes(ep))
			}
		}
		o.ObserveFloat64(appended, s.sum(mAgentAppended, "type", "float"), metric.WithAttributes(attribute.String("kind", "samples")))
		o.ObserveFloat64(appended, s.sum(mAgentAppended, "type", "histogram"), metric.WithAttributes(attribute.String("kind", "histograms")))
		o.ObserveFloat64(appended, s.sum(mAgentExemplars), metric.WithAttributes(attribute.String("kind", "exemplars")))
		o.ObserveFloat64(series, s.sum(mAgentSeries))
		o.ObserveFloat64(refused, float64(tooFar.Load()), metric.WithAttributes(attribute.String("reason", "too_far_in_future")))
		segs, bytes := walFiles(dir)
		o.ObserveFloat64(walBytes, float64(bytes))
		o.ObserveFloat64(walSegs, float64(segs))
		return nil
	}, sent, failed, retried, dropped, pending, shards, lag, catchSent, catchRefused, refused, appended, series, walBytes, walSegs)
	if err != nil {
		return err
	}
	r.telReg = registration
	return nil
}
