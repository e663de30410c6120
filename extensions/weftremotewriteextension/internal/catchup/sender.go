package catchup

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/record"
	"go.uber.org/zap"
)

// Stats counts what a Sender sent and what its endpoint refused.
type Stats struct {
	Samples    atomic.Int64 // float samples sent
	Exemplars  atomic.Int64
	Histograms atomic.Int64
	Refused    atomic.Int64 // entries (one sample, exemplar or histogram each) the endpoint refused (4xx)
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Sender turns WAL records into remote-write 1.0 requests for one
// endpoint, with the endpoint's external labels and write relabelling, as
// its queue would.
type Sender struct {
	name       string
	client     remote.WriteClient
	ext        labels.Labels
	relabel    []*relabel.Config
	exemplars  bool
	histograms bool
	maxPerSend int
	minBackoff time.Duration
	maxBackoff time.Duration
	onSent     func(newest int64) // after each batch sent, with its newest timestamp
	st         *Stats
	logger     *zap.Logger

	dec     record.Decoder
	builder labels.Builder
	series  map[chunks.HeadSeriesRef][]prompb.Label // nil slice: dropped by relabelling
	refs    map[chunks.HeadSeriesRef]labels.Labels  // as written, until first used
	batch   []prompb.TimeSeries
	batchT  int64 // newest timestamp in batch
	counts  [3]int64
	buf     []byte
	samples []record.RefSample
	exs     []record.RefExemplar
	hs      []record.RefHistogramSample
	fhs     []record.RefFloatHistogramSample
	lastLog time.Time
}

func NewSender(rw *promconfig.RemoteWriteConfig, ext labels.Labels, onSent func(newest int64), st *Stats, logger *zap.Logger) (*Sender, error) {
	client, err := remote.NewWriteClient(rw.Name+"-catchup", &remote.ClientConfig{
		URL:              rw.URL,
		WriteProtoMsg:    promconfig.DefaultRemoteWriteConfig.ProtobufMessage, // 1.0: every receiver takes it
		Timeout:          rw.RemoteTimeout,
		HTTPClientConfig: rw.HTTPClientConfig,
		Headers:          rw.Headers,
		RetryOnRateLimit: rw.QueueConfig.RetryOnRateLimit,
	})
	if err != nil {
		return nil, err
	}
	return &Sender{
		name:       rw.Name,
		client:     client,
		ext:        ext,
		relabel:    rw.WriteRelabelConfigs,
		exemplars:  rw.SendExemplars,
		histograms: rw.SendNativeHistograms,
		maxPerSend: rw.QueueConfig.MaxSamplesPerSend,
		minBackoff: time.Duration(rw.QueueConfig.MinBackoff),
		maxBackoff: time.Duration(rw.QueueConfig.MaxBackoff),
		onSent:     onSent,
		st:         st,
		logger:     logger,
		dec:        record.NewDecoder(nil, nil),
		builder:    *labels.NewBuilder(labels.EmptyLabels()),
		series:     map[chunks.HeadSeriesRef][]prompb.Label{},
		refs:       map[chunks.HeadSeriesRef]labels.Labels{},
	}, nil
}

// Close drops the client's idle connections: the catch-up is its only user.
func (s *Sender) Close() {
	if c, ok := s.client.(*remote.Client); ok {
		c.Client.CloseIdleConnections()
	}
}

// Window says which entries of WAL records a Sender sends: samples and
// histograms stamped in (From, Until], exemplars stamped after From when
// Exemplars is set.
type Window struct {
	From      int64
	Until     int64 // math.MaxInt64: no upper bound
	Exemplars bool
}

// All is the window of everything stamped after from.
func All(from int64) Window { return Window{From: from, Until: math.MaxInt64, Exemplars: true} }

// Record takes one WAL record: series are remembered, entries in w are
// batched and sent.
func (s *Sender) Record(ctx context.Context, rec []byte, w Window) error {
	from, until := w.From, w.Until
	var err error
	switch s.dec.Type(rec) {
	case record.Series:
		var series []record.RefSeries
		if series, err = s.dec.Series(rec, nil); err != nil {
			return fmt.Errorf("decode series record: %w", err)
		}
		for _, se := range series {
			s.refs[se.Ref] = se.Labels
			delete(s.series, se.Ref)
		}
	case record.Samples, record.SamplesV2:
		if s.samples, err = s.dec.Samples(rec, s.samples[:0]); err != nil {
			return fmt.Errorf("decode samples record: %w", err)
		}
		for _, smp := range s.samples {
			if smp.T <= from || smp.T > until {
				continue
			}
			if lset := s.labels(smp.Ref); lset != nil {
				if err := s.add(ctx, prompb.TimeSeries{Labels: lset, Samples: []prompb.Sample{{Value: smp.V, Timestamp: smp.T}}}, smp.T, 0); err != nil {
					return err
				}
			}
		}
	case record.Exemplars:
		if !s.exemplars || !w.Exemplars {
			return nil
		}
		if s.exs, err = s.dec.Exemplars(rec, s.exs[:0]); err != nil {
			return fmt.Errorf("decode exemplars record: %w", err)
		}
		for _, e := range s.exs {
			if e.T <= from || e.T > until {
				continue
			}
			if lset := s.labels(e.Ref); lset != nil {
				ex := prompb.Exemplar{Labels: prompb.FromLabels(e.Labels, nil), Value: e.V, Timestamp: e.T}
				if err := s.add(ctx, prompb.TimeSeries{Labels: lset, Exemplars: []prompb.Exemplar{ex}}, e.T, 1); err != nil {
					return err
				}
			}
		}
	case record.HistogramSamples, record.CustomBucketsHistogramSamples, record.HistogramSamplesV2:
		if !s.histograms {
			return nil
		}
		if s.hs, err = s.dec.HistogramSamples(rec, s.hs[:0]); err != nil {
			return fmt.Errorf("decode histograms record: %w", err)
		}
		for _, h := range s.hs {
			if h.T <= from || h.T > until {
				continue
			}
			if lset := s.labels(h.Ref); lset != nil {
				if err := s.add(ctx, prompb.TimeSeries{Labels: lset, Histograms: []prompb.Histogram{prompb.FromIntHistogram(h.T, h.H)}}, h.T, 2); err != nil {
					return err
				}
			}
		}
	case record.FloatHistogramSamples, record.CustomBucketsFloatHistogramSamples, record.FloatHistogramSamplesV2:
		if !s.histograms {
			return nil
		}
		if s.fhs, err = s.dec.FloatHistogramSamples(rec, s.fhs[:0]); err != nil {
			return fmt.Errorf("decode float histograms record: %w", err)
		}
		for _, h := range s.fhs {
			if h.T <= from || h.T > until {
				continue
			}
			if lset := s.labels(h.Ref); lset != nil {
				if err := s.add(ctx, prompb.TimeSeries{Labels: lset, Histograms: []prompb.Histogram{prompb.FromFloatHistogram(h.T, h.FH)}}, h.T, 2); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// labels returns the labels ref is sent with, nil when relabelling drops
// the series or the WAL holds no series record for it.
func (s *Sender) labels(ref chunks.HeadSeriesRef) []prompb.Label {
	if l, ok := s.series[ref]; ok {
		return l
	}
	lset, ok := s.refs[ref]
	if !ok {
		return nil
	}
	delete(s.refs, ref)
	s.builder.Reset(lset)
	s.ext.Range(func(l labels.Label) {
		if lset.Get(l.Name) == "" {
			s.builder.Set(l.Name, l.Value)
		}
	})
	var out []prompb.Label
	if relabel.ProcessBuilder(&s.builder, s.relabel...) {
		out = prompb.FromLabels(s.builder.Labels(), nil)
	}
	s.series[ref] = out
	return out
}

// add batches one entry (kind 0 sample, 1 exemplar, 2 histogram) and
// sends the batch when it is full.
func (s *Sender) add(ctx context.Context, ts prompb.TimeSeries, t int64, kind int) error {
	s.batch = append(s.batch, ts)
	s.batchT = max(s.batchT, t)
	s.counts[kind]++
	if len(s.batch) >= s.maxPerSend {
		return s.Flush(ctx)
	}
	return nil
}

// Flush sends the batch and reports its newest timestamp to onSent.
func (s *Sender) Flush(ctx context.Context) error {
	if len(s.batch) == 0 {
		return nil
	}
	if err := s.sendSplit(ctx, s.batch); err != nil {
		return err
	}
	s.st.Samples.Add(s.counts[0])
	s.st.Exemplars.Add(s.counts[1])
	s.st.Histograms.Add(s.counts[2])
	s.onSent(s.batchT)
	clear(s.batch)
	s.batch, s.batchT, s.counts = s.batch[:0], 0, [3]int64{}
	return nil
}

// sendSplit sends batch, retrying what can be retried until ctx ends. A
// batch the endpoint refuses (a 4xx: Prometheus 2.x refuses a whole
// request for one sample older than its series' newest, e.g. one sent
// before a crash) is split in halves until the refused entries are alone;
// those are counted and skipped.
func (s *Sender) sendSplit(ctx context.Context, batch []prompb.TimeSeries) error {
	err := s.send(ctx, batch)
	if err == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	if len(batch) == 1 {
		s.st.Refused.Add(1)
		e := &batch[0]
		s.counts[0] -= int64(len(e.Samples))
		s.counts[1] -= int64(len(e.Exemplars))
		s.counts[2] -= int64(len(e.Histograms))
		if time.Since(s.lastLog) > time.Minute {
			s.lastLog = time.Now()
			s.logger.Warn("weft_remote_write: endpoint refused a sample the catch-up sent (counted in catchup_refused)", zap.Error(err))
		}
		return nil
	}
	h := len(batch) / 2
	if err := s.sendSplit(ctx, batch[:h]); err != nil {
		return err
	}
	return s.sendSplit(ctx, batch[h:])
}

// send sends one request; it retries recoverable errors (network, 5xx,
// 429 when retry_on_http_429) with backoff until ctx ends and returns the
// error of a refusal.
func (s *Sender) send(ctx context.Context, batch []prompb.TimeSeries) error {
	req := prompb.WriteRequest{Timeseries: batch}
	raw, err := req.Marshal()
	if err != nil {
		return fmt.Errorf("encode write request: %w", err)
	}
	s.buf = snappy.Encode(s.buf[:cap(s.buf)], raw)
	backoff := s.minBackoff
	for attempt := 0; ; attempt++ {
		_, err := s.client.Store(ctx, s.buf, attempt)
		if err == nil {
			return nil
		}
		var rerr remote.RecoverableError
		if !errors.As(err, &rerr) {
			return err
		}
		if time.Since(s.lastLog) > time.Minute {
			s.lastLog = time.Now()
			s.logger.Warn("weft_remote_write: catch-up send failed, retrying", zap.Error(err))
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, s.maxBackoff)
	}
}
