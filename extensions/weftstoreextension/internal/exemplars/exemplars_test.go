package exemplars

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// seriesSet is a head stand-in: series ref i+1 has the labels of index i.
type seriesSet []labels.Labels

func newSeriesSet(n int) seriesSet {
	s := make(seriesSet, n)
	for i := range s {
		s[i] = labels.FromStrings("__name__", "requests_total", "pod", "pod-"+strconv.Itoa(i))
	}
	return s
}

func (s seriesSet) lookup(ref storage.SeriesRef) (labels.Labels, bool) {
	if ref < 1 || int(ref) > len(s) {
		return labels.EmptyLabels(), false
	}
	return s[ref-1], true
}

func newStorage(t *testing.T, capacity int, ss seriesSet) *Storage {
	t.Helper()
	s, err := New(capacity, ss.lookup, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return s
}

var all = []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}

// exemplarGen makes exemplars of every label form the storage keeps
// differently, and the ones it must refuse.
type exemplarGen struct {
	r *rand.Rand
}

func (g exemplarGen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.r.IntN(16)]
	}
	return string(b)
}

func (g exemplarGen) labels() labels.Labels {
	switch g.r.IntN(9) {
	case 0:
		return labels.FromStrings("trace_id", g.hex(32))
	case 1:
		return labels.FromStrings("trace_id", strings.ToUpper(g.hex(32)), "span_id", g.hex(16))
	case 2:
		return labels.FromStrings("trace_id", g.hex(32), "span_id", g.hex(16), "user", "u"+g.hex(2))
	case 3:
		return labels.FromStrings("traceID", g.hex(32))
	case 4:
		return labels.FromStrings("trace_id", g.hex(31), "span_id", g.hex(16)) // not a full trace ID
	case 5:
		return labels.FromStrings("trace_id", g.hex(32), "span_id", g.hex(16), "long", strings.Repeat("x", 90)) // > 128 characters
	case 6:
		return labels.FromStrings("span_id", g.hex(16))
	case 7:
		return labels.FromStrings("trace_id", g.hex(32), "span_id", g.hex(16), "empty", "")
	}
	return labels.FromStrings("trace_id", g.hex(32), "span_id", g.hex(16))
}

// TestMatchesTSDB runs random appends on the storage and on the TSDB's
// circular exemplar storage (no out-of-order window, as the head has it)
// side by side: every validation, every append and every Select must agree,
// through many turns of small rings.
func TestMatchesTSDB(t *testing.T) {
	for _, capacity := range []int{1, 7, 64, 500} {
		t.Run(strconv.Itoa(capacity), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(capacity), 1))
			g := exemplarGen{r}
			ss := newSeriesSet(23)
			mine := newStorage(t, capacity, ss)
			ref, err := tsdb.NewCircularExemplarStorage(int64(capacity), tsdb.NewExemplarMetrics(nil), 0)
			require.NoError(t, err)
			refq, err := ref.ExemplarQuerier(t.Context())
			require.NoError(t, err)

			last := make([]exemplar.Exemplar, len(ss)) // each series' last appended
			for op := range 20000 {
				i := r.IntN(len(ss))
				e := exemplar.Exemplar{Labels: g.labels(), Value: float64(r.IntN(4)), Ts: int64(1000 + op*10), HasTs: r.IntN(4) > 0}
				switch p := last[i]; r.IntN(8) {
				case 0: // the same again, later or not
					e = p
					if r.IntN(2) == 0 {
						e.Ts += 5
					}
				case 1: // the same time, another value or labels
					e.Ts = p.Ts
				case 2: // older
					e.Ts = p.Ts - int64(r.IntN(20))
				}
				// The head's appenders drop empty labels before either check.
				e.Labels = e.Labels.WithoutEmpty()
				sref := storage.SeriesRef(i + 1)

				wantErr := ref.ValidateExemplar(ss[i], e)
				gotErr := mine.Validate(sref, e)
				require.Equal(t, errName(wantErr), errName(gotErr), "op %d: validate %v", op, e)

				addErr := ref.AddExemplar(ss[i], e)
				stored := mine.Add([]Held{{Ref: sref, E: e}})
				wantStored := 0
				if addErr == nil && wantErr == nil {
					wantStored = 1
					last[i] = e
				}
				require.Equal(t, wantStored, stored, "op %d: add %v (tsdb: %v)", op, e, addErr)

				if op%97 == 0 || op > 19900 {
					requireSameSelect(t, refq, mine, math.MinInt64, math.MaxInt64, all)
					lo := int64(1000 + r.IntN(op+1)*10)
					one := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "pod", "pod-"+strconv.Itoa(i))}
					requireSameSelect(t, refq, mine, lo, lo+500, all, one)
					requireSameSelect(t, refq, mine, lo, lo+500, one)
				}
			}
			n, series := mine.Len()
			require.Equal(t, capacity, n, "the ring is full")
			require.LessOrEqual(t, series, min(capacity, len(ss)))
		})
	}
}

func errName(err error) string {
	for _, known := range []error{storage.ErrDuplicateExemplar, storage.ErrOutOfOrderExemplar, storage.ErrExemplarLabelLength} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	if err != nil {
		return "unexpected: " + err.Error()
	}
	return "stored"
}

func requireSameSelect(t *testing.T, ref storage.ExemplarQuerier, mine *Storage, start, end int64, ms ...[]*labels.Matcher) {
	t.Helper()
	want, err := ref.Select(start, end, ms...)
	require.NoError(t, err)
	got, err := mine.Select(start, end, ms...)
	require.NoError(t, err)
	require.Equal(t, want, got, "Select(%d, %d, %v)", start, end, ms)
}

// TestCompactForms: only lowercase trace (and span) IDs of the right
// length are kept as bytes, and they come back as the same labels.
func TestCompactForms(t *testing.T) {
	tid, sid := "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	for _, c := range []struct {
		name string
		l    labels.Labels
		want form
	}{
		{"trace and span", labels.FromStrings("trace_id", tid, "span_id", sid), formTraceSpan},
		{"trace", labels.FromStrings("trace_id", tid), formTrace},
		{"span only", labels.FromStrings("span_id", sid), formLabels},
		{"uppercase", labels.FromStrings("trace_id", strings.ToUpper(tid)), formLabels},
		{"short", labels.FromStrings("trace_id", tid[1:]), formLabels},
		{"another label", labels.FromStrings("trace_id", tid, "span_id", sid, "a", "b"), formLabels},
		{"other name", labels.FromStrings("traceID", tid), formLabels},
		{"no labels", labels.EmptyLabels(), formLabels},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, ids := compact(c.l)
			require.Equal(t, c.want, f)
			s := &Storage{ring: []entry{{form: f, ids: ids}}, other: map[int32]labels.Labels{}}
			if f == formLabels {
				s.other[0] = c.l
			}
			require.Equal(t, c.l, s.labels(0))
		})
	}
}

// TestSeriesLabelsShared: a series' labels are the ones Lookup gave, and an
// exemplar of a series the head does not hold is not stored.
func TestSeriesLabelsShared(t *testing.T) {
	ss := newSeriesSet(2)
	s := newStorage(t, 10, ss)
	e := exemplar.Exemplar{Labels: labels.FromStrings("trace_id", strings.Repeat("ab", 16)), Value: 1, Ts: 5, HasTs: true}
	require.Equal(t, 1, s.Add([]Held{{Ref: 2, E: e}}))
	require.Equal(t, 0, s.Add([]Held{{Ref: 3, E: e}}), "series 3 is not in the head")
	res, err := s.Select(0, 10, all)
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, ss[1], res[0].SeriesLabels)
	require.Equal(t, []exemplar.Exemplar{e}, res[0].Exemplars)
}

// TestOfTrace finds a trace's exemplars in every label form, in any case
// of hex digits, and no other.
func TestOfTrace(t *testing.T) {
	ss := newSeriesSet(4)
	s := newStorage(t, 100, ss)
	id := [16]byte{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	tid := fmt.Sprintf("%x", id)
	other := strings.Repeat("1", 32)
	add := func(ref storage.SeriesRef, ts int64, l labels.Labels) {
		t.Helper()
		require.Equal(t, 1, s.Add([]Held{{Ref: ref, E: exemplar.Exemplar{Labels: l, Value: 1, Ts: ts, HasTs: true}}}))
	}
	add(1, 10, labels.FromStrings("trace_id", tid, "span_id", "b7ad6b7169203331"))
	add(1, 20, labels.FromStrings("trace_id", other, "span_id", "b7ad6b7169203331"))
	add(2, 30, labels.FromStrings("trace_id", strings.ToUpper(tid)))
	add(3, 40, labels.FromStrings("traceID", tid, "user", "u1"))
	add(4, 50, labels.FromStrings("trace_id", tid))
	add(1, 60, labels.FromStrings("trace_id", tid))

	got := map[string][]int64{}
	for _, r := range s.OfTrace(id) {
		for _, e := range r.Exemplars {
			got[r.SeriesLabels.Get("pod")] = append(got[r.SeriesLabels.Get("pod")], e.Ts)
		}
	}
	require.Equal(t, map[string][]int64{"pod-0": {10, 60}, "pod-1": {30}, "pod-2": {40}, "pod-3": {50}}, got)
}

func TestNewCapacity(t *testing.T) {
	for _, c := range []int{0, -1, MaxCapacity + 1} {
		_, err := New(c, newSeriesSet(1).lookup, slog.New(slog.DiscardHandler))
		require.ErrorContains(t, err, "must be from 1 to")
	}
}

// BenchmarkAdd adds one new exemplar per series of 100k, then the same
// again (duplicates, as a scrape of unchanged exemplars is).
func BenchmarkAdd(b *testing.B) {
	const n = 100_000
	ss := newSeriesSet(n)
	g := exemplarGen{rand.New(rand.NewPCG(1, 2))}
	hs := make([]Held, n)
	for i := range hs {
		hs[i] = Held{Ref: storage.SeriesRef(i + 1), E: exemplar.Exemplar{Labels: labels.FromStrings("trace_id", g.hex(32), "span_id", g.hex(16)), Value: 1, HasTs: true}}
	}
	s, err := New(n, ss.lookup, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range hs {
			hs[j].E.Ts = int64(i / 2)
		}
		for k := 0; k < n; k += 1024 {
			s.Add(hs[k:min(k+1024, n)])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/exemplar")
}

// The ring's entries hold no pointer: on Linux the ring is outside the Go
// heap (ring_linux.go), where the collector would not see one. The ring
// is mapped there, its slots zero (free).
func TestRingHoldsNoPointers(t *testing.T) {
	require.False(t, hasPointers(reflect.TypeFor[entry]()), "entry holds a pointer")
	ring, mapped := newRing(1000)
	require.Len(t, ring, 1000)
	if runtime.GOOS == "linux" {
		require.NotNil(t, mapped, "the ring is on the heap")
		require.Equal(t, unsafe.Pointer(unsafe.SliceData(mapped)), unsafe.Pointer(unsafe.SliceData(ring)))
	}
	for i := range ring {
		require.Zero(t, ring[i].ref)
	}
	freeRing(mapped)
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}
