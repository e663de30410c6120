package kubepods

import (
	"bytes"
	"testing"
)

// FuzzConsume feeds arbitrary watch streams to the event loop: it must not
// panic, must keep every pod under its own key and hand out exactly the
// changes it applied (added minus deleted = pods known).
func FuzzConsume(f *testing.F) {
	f.Add([]byte(eventJSON("ADDED", podJSON("default", "a", "2", "10.0.0.1")) +
		eventJSON("MODIFIED", podJSON("default", "a", "3", "10.0.0.2")) +
		eventJSON("DELETED", podJSON("default", "a", "4", "10.0.0.2"))))
	f.Add([]byte(eventJSON("BOOKMARK", `{"kind":"Pod","metadata":{"resourceVersion":"9"}}`)))
	f.Add([]byte(eventJSON("ERROR", `{"kind":"Status","status":"Failure","reason":"Expired","code":410}`)))
	f.Add([]byte(eventJSON("DELETED", podJSON("x", "never-added", "5", ""))))
	f.Add([]byte(`{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"b","resourceVersion":"1"},"spec":{"containers":[{"ports":[{"containerPort":-1}]}]}}}{"type":"ADDED"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		added, deleted := 0, 0
		w := &Watcher{pods: map[string]*Pod{}, handler: func(events []Event) {
			for _, e := range events {
				switch e.Type {
				case Added:
					added++
				case Deleted:
					deleted++
				}
				if e.Pod == nil {
					t.Fatalf("event %v without a pod", e.Type)
				}
			}
		}}
		_, _ = w.consume(bytes.NewReader(data))
		for k, p := range w.pods {
			if k != p.Key() {
				t.Fatalf("pod %q stored under %q", p.Key(), k)
			}
		}
		if added-deleted != len(w.pods) {
			t.Fatalf("added %d - deleted %d != %d pods known", added, deleted, len(w.pods))
		}
	})
}
