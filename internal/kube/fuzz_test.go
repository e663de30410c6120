package kube

import (
	"bytes"
	"testing"
)

// FuzzConsume feeds arbitrary watch streams to the reflector's event loop:
// it must not panic, must keep every object under its own key and hand out
// exactly the changes it applied (added minus deleted = objects known).
// Seeds: pod streams, and the PrometheusRule streams of weft_rules'
// former watcher (testdata/fuzz/FuzzConsume/rules_*).
func FuzzConsume(f *testing.F) {
	f.Add([]byte(eventJSON("ADDED", podJSON("default", "a", "2", "10.0.0.1")) +
		eventJSON("MODIFIED", podJSON("default", "a", "3", "10.0.0.2")) +
		eventJSON("DELETED", podJSON("default", "a", "4", "10.0.0.2"))))
	f.Add([]byte(eventJSON("BOOKMARK", `{"kind":"Pod","metadata":{"resourceVersion":"9"}}`)))
	f.Add([]byte(eventJSON("ERROR", `{"kind":"Status","status":"Failure","reason":"Expired","code":410}`)))
	f.Add([]byte(eventJSON("DELETED", podJSON("x", "never-added", "5", ""))))
	f.Add([]byte(`{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"b","resourceVersion":"1"},"spec":{"containers":[{"ports":[{"containerPort":-1}]}]}}}{"type":"ADDED"`))
	f.Add([]byte(`{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"shop","resourceVersion":"5"},"spec":{"groups":[]}}}
{"type":"MODIFIED","object":{"metadata":{"name":"a","namespace":"shop","resourceVersion":"6"},"spec":{"groups":[{"name":"g","rules":[]}]}}}
{"type":"BOOKMARK","object":{"kind":"PrometheusRule","metadata":{"resourceVersion":"9"}}}
{"type":"DELETED","object":{"metadata":{"name":"a","namespace":"shop","resourceVersion":"10"}}}
`))
	f.Add([]byte(`{"type":"ADDED","object":[1,2]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		added, deleted := 0, 0
		r := &Reflector[Pod]{objs: map[string]*Pod{}, lw: ListWatch[Pod]{Meta: (*Pod).Meta}, handler: func(events []Event[Pod]) {
			for _, e := range events {
				switch e.Type {
				case Added:
					added++
				case Deleted:
					deleted++
				}
				if e.Object == nil {
					t.Fatalf("event %v without an object", e.Type)
				}
			}
		}}
		_, _ = r.consume(bytes.NewReader(data))
		for k, p := range r.objs {
			if k != p.Meta().key() {
				t.Fatalf("pod %q stored under %q", p.Meta().key(), k)
			}
		}
		if added-deleted != len(r.objs) {
			t.Fatalf("added %d - deleted %d != %d pods known", added, deleted, len(r.objs))
		}
	})
}
