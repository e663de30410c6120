package podscrapereceiver

import (
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// FuzzAppendBody feeds arbitrary bodies in each format through the
// parse → pdata path: it must never panic, a body that parses once parses
// the same way again, and a repeated body ends no series.
func FuzzAppendBody(f *testing.F) {
	f.Add([]byte("# TYPE a counter\na_total{x=\"1\"} 1\n"), uint8(0))
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"), uint8(0))
	f.Add([]byte("# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n"), uint8(0))
	f.Add([]byte("# TYPE c counter\nc_total 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 1 1.5\nc_created 1.2\n# EOF\n"), uint8(1))
	f.Add([]byte("a NaN\nb +Inf\nc -Inf 1700000000000\n"), uint8(0))
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"5\"} 3\nh_bucket{le=\"1\"} 1\nh_count 2\n"), uint8(0))
	f.Add([]byte{0x0a, 0x03, 'a', 'b', 'c'}, uint8(2))
	f.Add([]byte("# TYPE x gaugehistogram\nx_bucket{le=\"+Inf\"} 1\nx_gcount 1\nx_gsum 1\n# EOF\n"), uint8(1))
	cts := []string{ctText, ctOM, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"}
	f.Fuzz(func(t *testing.T, body []byte, ct uint8) {
		a := testAppender(false, 0)
		contentType := cts[int(ct)%len(cts)]
		now := time.Unix(1700000000, 0)
		run := func() (parseStats, error) {
			md := pmetric.NewMetrics()
			ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
			st, err := a.appendBody(body, contentType, now, ms)
			if err != nil {
				a.fail(now, ms)
			}
			now = now.Add(15 * time.Second)
			return st, err
		}
		st1, err1 := run()
		st2, err2 := run()
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("same body, different outcome: %v then %v", err1, err2)
		}
		if err1 == nil {
			if st1.scraped != st2.scraped || st1.postRelabel != st2.postRelabel {
				t.Fatalf("same body, different counts: %+v then %+v", st1, st2)
			}
			if st2.staleEmitted != 0 {
				t.Fatalf("a repeated body ended %d series", st2.staleEmitted)
			}
		}
	})
}

// FuzzStreamMatchesWhole parses arbitrary bodies whole and streamed through
// a window of 16 to 4111 bytes: the outcome is the same (data points,
// counts, failure reason) unless a line does not fit the window.
func FuzzStreamMatchesWhole(f *testing.F) {
	f.Add(textFamilies(2), uint8(0), uint16(100))
	f.Add(tinyLines(5), uint8(0), uint16(48))
	f.Add(omFamilies(2), uint8(1), uint16(160))
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_other{le=\"1\"} 1\n# TYPE s summary\ns_x{quantile=\"1\"} 2\n"), uint8(0), uint16(30))
	f.Add([]byte("a 1\n\x00b 2\nc 3\n"), uint8(0), uint16(10))
	f.Add([]byte("a 1\n# EOF\n"), uint8(1), uint16(6))
	f.Add([]byte("# TYPE a counter\na_total{x=\"1\nz\"} 1\n"), uint8(0), uint16(20))
	f.Add([]byte{0x0a, 0x03, 'a', 'b', 'c'}, uint8(2), uint16(0))
	cts := []string{ctText, ctOM, ctProto}
	f.Fuzz(func(t *testing.T, body []byte, ct uint8, w uint16) {
		contentType := cts[int(ct)%len(cts)]
		window := 16 + int(w)%4096
		whole := wholeOnce(t, body, contentType)
		got, c := streamOnce(t, body, contentType, window)
		if len(c.buf) > window {
			t.Fatalf("buffer of %d bytes, window %d", len(c.buf), window)
		}
		if got.reason == reasonLineTooLong {
			return
		}
		if got.reason != whole.reason {
			t.Fatalf("window %d: streamed %q, whole %q", window, got.err, whole.err)
		}
		if whole.reason == "" && !reflect.DeepEqual(whole, got) {
			t.Fatalf("window %d: streamed %+v, whole %+v", window, got, whole)
		}
	})
}
