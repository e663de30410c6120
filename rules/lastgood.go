package rules

import (
	"sync"

	"go.opentelemetry.io/collector/component"
)

// lastGoodSets keeps, per weft_rules component ID, the sources of the last
// rule set that was applied. A collector reload (SIGHUP or a config
// change) shuts every extension down and builds new ones from new
// factories; a new instance whose own rule set is invalid starts from this
// one instead of running no rules.
type lastGoodSets struct {
	mu   sync.Mutex
	sets map[component.ID]ruleSources
}

// ruleSources are the names and contents of a rule set's sources (files
// and Kubernetes objects), as read for a reload.
type ruleSources struct {
	files    []string
	contents [][]byte
}

func (l *lastGoodSets) put(id component.ID, files []string, contents [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sets == nil {
		l.sets = make(map[component.ID]ruleSources)
	}
	l.sets[id] = ruleSources{files: append([]string(nil), files...), contents: append([][]byte(nil), contents...)}
}

func (l *lastGoodSets) get(id component.ID) (ruleSources, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.sets[id]
	return s, ok
}

// processSets is the process's store of last good rule sets. It is the
// one package-level variable of weft_rules, and has to be: the collector
// calls NewFactory again on every reload (otelcol.CollectorSettings.Factories
// runs per reload), so nothing held by a factory or an instance survives.
var processSets = &lastGoodSets{}
