package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// hops is the number of nodes a request crosses: node h sees hop h of
// every request (n1 → n2 → n3), one span each.
const hops = 3

// services are the mesh's services, one per hop.
var services = [hops]string{"productpage", "reviews", "ratings"}

// errorEvery makes every errorEvery-th request an error trace (1 %).
const errorEvery = 100

// request is one request through the mesh: a trace of one span per hop.
type request struct {
	id pcommon.TraceID
	// errHop is the hop whose span failed, -1 for none.
	errHop int8
	// http500 says how the hop failed: http.response.status_code 500
	// (status unset) instead of status ERROR.
	http500 bool
}

// spanID is hop h's span of the request: the trace ID's first seven bytes
// and the hop, so the sink can tell the hop of every span it receives.
func (r *request) spanID(h int) pcommon.SpanID {
	var s pcommon.SpanID
	copy(s[:7], r.id[:7])
	s[7] = byte(h + 1)
	return s
}

// mesh generates the requests of one run: random trace IDs from a seeded
// generator, the i-th an error trace when i is a multiple of errorEvery,
// its failing hop and its kind of failure rotating.
type mesh struct {
	rng  *rand.Rand
	reqs []request
}

func newMesh(seed uint64) *mesh {
	return &mesh{rng: rand.New(rand.NewPCG(seed, seed^0x6576696465))}
}

// next appends n requests and returns them.
func (m *mesh) next(n int) []request {
	start := len(m.reqs)
	for range n {
		i := len(m.reqs)
		r := request{errHop: -1}
		hi, lo := m.rng.Uint64(), m.rng.Uint64()
		for b := range 8 {
			r.id[b] = byte(hi >> (56 - 8*b))
			r.id[8+b] = byte(lo >> (56 - 8*b))
		}
		if i%errorEvery == 0 {
			k := i / errorEvery
			r.errHop = int8(k % hops)
			r.http500 = (k/hops)%2 == 1
		}
		m.reqs = append(m.reqs, r)
	}
	return m.reqs[start:]
}

// hopTraces is hop h of the requests as one OTLP request: the resource of
// the hop's pod, one server span per request with the attributes an Envoy
// sidecar's span carries.
func hopTraces(reqs []request, h int, now time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr("service.name", services[h])
	res.PutStr("k8s.pod.name", services[h]+"-v1-7d4b9c")
	res.PutStr("k8s.namespace.name", "bookinfo")
	res.PutStr("k8s.node.name", fmt.Sprintf("n%d", h+1))
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("envoy")
	spans := ss.Spans()
	spans.EnsureCapacity(len(reqs))
	for i := range reqs {
		r := &reqs[i]
		sp := spans.AppendEmpty()
		sp.SetTraceID(r.id)
		sp.SetSpanID(r.spanID(h))
		if h > 0 {
			sp.SetParentSpanID(r.spanID(h - 1))
		}
		sp.SetName("GET /" + services[h])
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(h-30) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(h) * time.Millisecond)))
		code := int64(200)
		if int(r.errHop) == h {
			if r.http500 {
				code = 500
			} else {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("upstream connect error or disconnect/reset before headers")
			}
		}
		a := sp.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.path", "/"+services[h])
		a.PutStr("server.address", services[h]+".bookinfo.svc.cluster.local")
		a.PutStr("network.peer.address", "10.0.1.17")
		a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)")
		a.PutStr("upstream_cluster", "inbound|9080||")
		a.PutInt("http.response.status_code", code)
	}
	return td
}

// poster sends OTLP/HTTP trace requests and counts what was refused.
type poster struct {
	client  *http.Client
	mu      sync.Mutex
	refused int    // requests answered with a status other than 200
	lastErr string // the last refusal, for the report
}

func newPoster() *poster {
	return &poster{client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 8},
	}}
}

func (p *poster) close() { p.client.CloseIdleConnections() }

// post sends td to an OTLP/HTTP receiver at addr; a refusal is counted,
// not returned: the workload goes on as a mesh would.
func (p *poster) post(ctx context.Context, addr string, td ptrace.Traces) error {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.refuse(err.Error())
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.refuse(fmt.Sprintf("%s: %d %s", addr, resp.StatusCode, msg))
	}
	return nil
}

func (p *poster) refuse(msg string) {
	p.mu.Lock()
	p.refused++
	p.lastErr = msg
	p.mu.Unlock()
}

// drive sends requests at rate per second for d, in ticks of 100 ms:
// at each tick the requests due since the start, hop h of them to
// nodes[h % len(nodes)], the nodes at once. The requests are m's (a
// fresh mesh per run); it returns the time sending took.
func drive(ctx context.Context, p *poster, m *mesh, nodes []string, rate int, d time.Duration) (time.Duration, error) {
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		el := min(time.Since(start), d)
		if due := int(el.Seconds()*float64(rate)) - len(m.reqs); due > 0 {
			if err := sendHops(ctx, p, m.next(due), nodes); err != nil {
				return time.Since(start), err
			}
		}
		if el >= d {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-tick.C:
		}
	}
}

// sendHops sends hop h of batch to nodes[h % len(nodes)], concurrently,
// in requests of at most 500 spans.
func sendHops(ctx context.Context, p *poster, batch []request, nodes []string) error {
	now := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, hops)
	for h := range hops {
		wg.Go(func() {
			for s := 0; s < len(batch); s += 500 {
				part := batch[s:min(s+500, len(batch))]
				if err := p.post(ctx, nodes[h%len(nodes)], hopTraces(part, h, now)); err != nil {
					errs[h] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
