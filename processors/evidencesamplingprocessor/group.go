package evidencesamplingprocessor

import (
	"bytes"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// traceItem is a span or a log record: it carries a trace ID and moves.
type traceItem[T any] interface {
	TraceID() pcommon.TraceID
	MoveTo(dest T)
}

// itemSlice is a ptrace.SpanSlice or a plog.LogRecordSlice.
type itemSlice[S, T any] interface {
	Len() int
	At(i int) T
	Sort(less func(a, b T) bool)
	AppendEmpty() T
	MoveAndAppendTo(dest S)
	RemoveIf(f func(T) bool)
}

// chunkByTrace sorts waiting by trace ID and puts each trace's items into
// the buffer as one chunk under hdr: it moves them into body (the item
// list of an otherwise empty message), encodes that message with marshal
// and hands the chunk to wait. Items whose chunk cannot be encoded go to
// fallback (passed on rather than lost). It returns the chunks wait
// returns: those of traces decided early that are kept.
func chunkByTrace[S itemSlice[S, T], T traceItem[T]](waiting, body, fallback S, marshal func() ([]byte, error),
	hdr *header, wait func(id pcommon.TraceID, c chunk, items int) []chunk,
) []chunk {
	waiting.Sort(func(a, b T) bool {
		ia, ib := a.TraceID(), b.TraceID()
		return bytes.Compare(ia[:], ib[:]) < 0
	})
	var keep []chunk
	for start := 0; start < waiting.Len(); {
		id := waiting.At(start).TraceID()
		end := start + 1
		for end < waiting.Len() && waiting.At(end).TraceID() == id {
			end++
		}
		for k := start; k < end; k++ {
			waiting.At(k).MoveTo(body.AppendEmpty())
		}
		b, err := marshal()
		if err != nil { // not for data that came in as pdata; kept rather than lost
			body.MoveAndAppendTo(fallback)
		} else {
			body.RemoveIf(func(T) bool { return true })
			keep = append(keep, wait(id, chunk{hdr: hdr, body: b}, end-start)...)
		}
		start = end
	}
	return keep
}
