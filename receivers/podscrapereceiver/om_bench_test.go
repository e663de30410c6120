package podscrapereceiver

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/weftobs/weft/extensions/weftstoreextension/weftstoretest"
)

// openMetricsPayload is envoyPayload as OpenMetrics, every counter and
// bucket line carrying an exemplar when withExemplars.
func openMetricsPayload(n int, withExemplars bool, scrape int) []byte {
	var b bytes.Buffer
	for i, line := range bytes.Split(envoyPayload(n), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if bytes.HasPrefix(line, []byte("# TYPE ")) && bytes.HasSuffix(line, []byte("_total counter")) {
			line = append(bytes.TrimSuffix(line, []byte("_total counter")), " counter"...)
		}
		b.Write(line)
		if withExemplars && (bytes.Contains(line, []byte("_total{")) || bytes.Contains(line, []byte("_bucket{"))) {
			fmt.Fprintf(&b, ` # {trace_id="%016x%016x",span_id="%016x"} 1.5`, scrape, i, i)
		}
		b.WriteByte('\n')
	}
	b.WriteString("# EOF\n")
	return b.Bytes()
}

// BenchmarkScrapeToStoreOpenMetrics is BenchmarkScrapeToStore's native
// path for an OpenMetrics target whose counters and buckets carry an
// exemplar every other scrape (the store-memory workload's payload):
// bytes and allocations per scrape show what each scrape leaves to the
// garbage collector.
func BenchmarkScrapeToStoreOpenMetrics(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("envoy-%dk", n/1000), func(b *testing.B) {
			bodies := [][]byte{openMetricsPayload(n, false, 0), openMetricsPayload(n, true, 1)}
			st := weftstoretest.Start(b, nil)
			a := newAppender(labels.FromStrings("job", "envoy", "instance", "10.0.0.1:15090"), false, scrapeLimits{honorTimestamps: true}, nil)
			a.out = newNativeOut([]string{"weft_store"}, []storage.Appendable{st.Appendable()})
			a.pdata = false
			var (
				samples, k int
				c          chunker
				r          bytes.Reader
				last       int64
			)
			run := func() {
				samples = nativeScrape(b, a, &c, &r, bodies[k%2], ctOM, nextNow(&last))
				k++
			}
			run()
			run()
			reportPerSample(b, bodies[0], &samples, run)
			if len(a.out.failures) > 0 {
				b.Fatalf("samples refused: %v", a.out.failures)
			}
		})
	}
}
