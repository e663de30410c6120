package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/thanos-io/thanos/pkg/info/infopb"
	"github.com/thanos-io/thanos/pkg/store/storepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// gogoCodec is the client's gRPC codec: the messages' own gogo
// Marshal/Unmarshal (Thanos's pkg/extgrpc is not imported: it replaces the
// process-wide "proto" codec). It counts the bytes of every message it
// decodes: the bytes on the wire without gRPC's 5-byte message prefix and
// HTTP/2 framing. A codec serves one call at a time.
type gogoCodec struct {
	// copyBuf copies each message before decoding: labelpb.ZLabel's
	// strings point into the buffer, which gRPC reuses after Unmarshal.
	// Only callers that read labels need it.
	copyBuf bool
	bytes   int64
	msgs    int64
}

type gogoMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

func (c *gogoCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(gogoMessage)
	if !ok {
		return nil, fmt.Errorf("gogo codec: %T is no gogo message", v)
	}
	return m.Marshal()
}

func (c *gogoCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(gogoMessage)
	if !ok {
		return fmt.Errorf("gogo codec: %T is no gogo message", v)
	}
	c.bytes += int64(len(data))
	c.msgs++
	if c.copyBuf {
		data = bytes.Clone(data)
	}
	return m.Unmarshal(data)
}

func (c *gogoCodec) Name() string { return "proto" }

// dial connects to a StoreAPI endpoint (plaintext, loopback).
func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
}

// info is what an endpoint's Info call says about itself.
type info struct {
	Component string
	LabelSets []string
	MinTime   int64
	MaxTime   int64
	HasStore  bool
}

func callInfo(ctx context.Context, conn *grpc.ClientConn) (info, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := infopb.NewInfoClient(conn).Info(ctx, &infopb.InfoRequest{}, grpc.ForceCodec(&gogoCodec{copyBuf: true}))
	if err != nil {
		return info{}, fmt.Errorf("Info: %w", err)
	}
	out := info{Component: resp.ComponentType}
	for _, ls := range resp.LabelSets {
		var parts []string
		for _, l := range ls.Labels {
			parts = append(parts, l.Name+"="+l.Value)
		}
		out.LabelSets = append(out.LabelSets, "{"+strings.Join(parts, ",")+"}")
	}
	if resp.Store != nil {
		out.HasStore, out.MinTime, out.MaxTime = true, resp.Store.MinTime, resp.Store.MaxTime
	}
	return out, nil
}

// seriesRequest asks for every series (__name__=~".+") between minT and
// maxT, with chunks, aborting on a partial response.
func seriesRequest(minT, maxT, batch int64) *storepb.SeriesRequest {
	return &storepb.SeriesRequest{
		MinTime:                 minT,
		MaxTime:                 maxT,
		Matchers:                []storepb.LabelMatcher{{Type: storepb.LabelMatcher_RE, Name: labels.MetricName, Value: ".+"}},
		PartialResponseStrategy: storepb.PartialResponseStrategy_ABORT,
		ResponseBatchSize:       batch,
	}
}

// streamStats is what one Series call returned, counted as it arrived.
type streamStats struct {
	Wall     time.Duration
	Series   int64
	Chunks   int64
	Samples  int64 // from the chunks' headers: every sample of every chunk, in range or not
	Bytes    int64 // decoded message bytes
	Messages int64
	Warnings []string
}

// streamSeries runs one Series call and counts what arrives without
// looking at labels or decoding chunks (the measured path: the client does
// as little as it can so the server is what is measured).
func streamSeries(ctx context.Context, conn *grpc.ClientConn, req *storepb.SeriesRequest) (streamStats, error) {
	codec := &gogoCodec{}
	var st streamStats
	count := func(s *storepb.Series) {
		st.Series++
		for _, c := range s.Chunks {
			st.Chunks++
			if c.Raw != nil && len(c.Raw.Data) >= 2 {
				// XOR and histogram chunks begin with their sample count.
				st.Samples += int64(binary.BigEndian.Uint16(c.Raw.Data))
			}
		}
	}
	start := time.Now()
	err := recvSeries(ctx, conn, req, codec, count, &st.Warnings)
	st.Wall = time.Since(start)
	st.Bytes, st.Messages = codec.bytes, codec.msgs
	return st, err
}

// recvSeries runs a Series call and hands every series to fn, batches
// unpacked; warnings are collected, hints ignored.
func recvSeries(ctx context.Context, conn *grpc.ClientConn, req *storepb.SeriesRequest, codec *gogoCodec, fn func(*storepb.Series), warnings *[]string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := storepb.NewStoreClient(conn).Series(ctx, req, grpc.ForceCodec(codec))
	if err != nil {
		return fmt.Errorf("Series: %w", err)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("Series: receive: %w", err)
		}
		switch r := resp.Result.(type) {
		case *storepb.SeriesResponse_Series:
			fn(r.Series)
		case *storepb.SeriesResponse_Batch:
			for _, s := range r.Batch.Series {
				fn(s)
			}
		case *storepb.SeriesResponse_Warning:
			*warnings = append(*warnings, r.Warning)
		}
	}
}

// scrapeSynthetic are the series a scraper adds per target (Prometheus's and
// pod_scrape's alike); they are counted apart from the payload.
var scrapeSynthetic = map[string]bool{
	"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true,
	"scrape_samples_post_metric_relabeling": true, "scrape_series_added": true, "target_info": true,
}

// content is a Series response decoded in full: every label set (without
// instance, whose port differs between the sides) with the samples of its
// chunks inside the requested range.
type content struct {
	Series          int64
	PayloadSeries   int64
	PayloadSamples  int64 // in [minT, maxT]
	SyntheticSeries int64
	SyntheticNames  []string
	OutOfRange      int64 // samples outside [minT, maxT] that came with overlapping chunks
	Duplicates      int64 // label sets seen twice
	Unsorted        string
	BadChunks       []string
	Warnings        []string
	Example         string // one payload series' full label set, as served
	keys            map[string]int
}

// readContent runs a Series call and decodes everything.
func readContent(ctx context.Context, conn *grpc.ClientConn, req *storepb.SeriesRequest) (*content, error) {
	ct := &content{keys: map[string]int{}}
	var prev labels.Labels
	synth := map[string]bool{}
	var b labels.ScratchBuilder
	var it chunkenc.Iterator
	fn := func(s *storepb.Series) {
		ct.Series++
		b.Reset()
		var name string
		var key strings.Builder
		for _, l := range s.Labels {
			b.Add(l.Name, l.Value)
			if l.Name == labels.MetricName {
				name = l.Value
			}
			if l.Name != "instance" {
				key.WriteString(l.Name + "=" + l.Value + ",")
			}
		}
		b.Sort()
		ls := b.Labels()
		if ct.Unsorted == "" && prev.Len() > 0 && labels.Compare(prev, ls) >= 0 {
			ct.Unsorted = fmt.Sprintf("%s after %s", ls, prev)
		}
		prev = ls
		inRange := int64(0)
		for _, c := range s.Chunks {
			if c.Raw == nil {
				ct.BadChunks = append(ct.BadChunks, fmt.Sprintf("%s: aggregate chunk without raw data", ls))
				continue
			}
			enc := chunkenc.EncXOR
			switch c.Raw.Type {
			case storepb.Chunk_HISTOGRAM:
				enc = chunkenc.EncHistogram
			case storepb.Chunk_FLOAT_HISTOGRAM:
				enc = chunkenc.EncFloatHistogram
			}
			chk, err := chunkenc.FromData(enc, c.Raw.Data)
			if err != nil {
				ct.BadChunks = append(ct.BadChunks, fmt.Sprintf("%s: %v", ls, err))
				continue
			}
			it = chk.Iterator(it)
			n := 0
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				n++
				t := it.AtT()
				if t < c.MinTime || t > c.MaxTime {
					ct.BadChunks = append(ct.BadChunks, fmt.Sprintf("%s: sample at %d outside its chunk's [%d, %d]", ls, t, c.MinTime, c.MaxTime))
				}
				if t >= req.MinTime && t <= req.MaxTime {
					inRange++
				} else {
					ct.OutOfRange++
				}
			}
			if err := it.Err(); err != nil {
				ct.BadChunks = append(ct.BadChunks, fmt.Sprintf("%s: %v", ls, err))
			}
			if n != chk.NumSamples() {
				ct.BadChunks = append(ct.BadChunks, fmt.Sprintf("%s: %d samples decoded, header says %d", ls, n, chk.NumSamples()))
			}
		}
		k := key.String()
		if _, dup := ct.keys[k]; dup {
			ct.Duplicates++
		}
		ct.keys[k] += int(inRange)
		if scrapeSynthetic[name] {
			ct.SyntheticSeries++
			synth[name] = true
			return
		}
		ct.PayloadSeries++
		ct.PayloadSamples += inRange
		if ct.Example == "" {
			ct.Example = ls.String()
		}
	}
	err := recvSeries(ctx, conn, req, &gogoCodec{copyBuf: true}, fn, &ct.Warnings)
	for n := range synth {
		ct.SyntheticNames = append(ct.SyntheticNames, n)
	}
	sort.Strings(ct.SyntheticNames)
	return ct, err
}

// diffContent lists (up to max) the label sets one side has and the other
// lacks, and those whose in-range sample counts differ.
func diffContent(a, b *content, aName, bName string, limit int) []string {
	var out []string
	add := func(s string) {
		if len(out) < limit {
			out = append(out, s)
		}
	}
	for k, na := range a.keys {
		nb, ok := b.keys[k]
		switch {
		case !ok:
			add(fmt.Sprintf("only %s: {%s}", aName, strings.TrimSuffix(k, ",")))
		case na != nb:
			add(fmt.Sprintf("{%s}: %d samples from %s, %d from %s", strings.TrimSuffix(k, ","), na, aName, nb, bName))
		}
	}
	for k := range b.keys {
		if _, ok := a.keys[k]; !ok {
			add(fmt.Sprintf("only %s: {%s}", bName, strings.TrimSuffix(k, ",")))
		}
	}
	sort.Strings(out)
	return out
}
