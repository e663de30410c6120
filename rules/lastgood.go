package rules

import (
	"sync"

	promrules "github.com/prometheus/prometheus/rules"
	"go.opentelemetry.io/collector/component"
)

// lastGoodSets keeps, per weft_rules component ID, the sources of the last
// rule set that was applied, and the rule groups of an instance that shut
// down. A collector reload (SIGHUP or a config change) shuts every
// extension down and builds new ones from new factories; a new instance
// whose own rule set is invalid starts from the last good one instead of
// running no rules, and takes the alert state of the groups it continues
// (as Prometheus's own reload does) instead of restoring it from
// ALERTS_FOR_STATE as after a restart.
type lastGoodSets struct {
	mu     sync.Mutex
	sets   map[component.ID]ruleSources
	groups map[component.ID]map[string]*promrules.Group
}

// putGroups keeps the groups of a stopped instance, by group key.
func (l *lastGoodSets) putGroups(id component.ID, gs []*promrules.Group) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.groups == nil {
		l.groups = make(map[component.ID]map[string]*promrules.Group)
	}
	m := make(map[string]*promrules.Group, len(gs))
	for _, g := range gs {
		m[promrules.GroupKey(g.File(), g.Name())] = g
	}
	l.groups[id] = m
}

// takeGroups returns and forgets the groups kept for id.
func (l *lastGoodSets) takeGroups(id component.ID) map[string]*promrules.Group {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.groups[id]
	delete(l.groups, id)
	return g
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
