package rules

import (
	"sync"

	promrules "github.com/prometheus/prometheus/rules"
)

// LastGood keeps, per engine ID (the weft_rules component ID), the sources of the last
// rule set that was applied, and the rule groups of an instance that shut
// down. A collector reload (SIGHUP or a config change) shuts every
// extension down and builds new ones from new factories; a new instance
// whose own rule set is invalid starts from the last good one instead of
// running no rules, and takes the alert state of the groups it continues
// (as Prometheus's own reload does) instead of restoring it from
// ALERTS_FOR_STATE as after a restart.
// The zero value is ready to use; the extension keeps one per process
// (the collector builds new factories on every reload).
type LastGood struct {
	mu     sync.Mutex
	sets   map[string]ruleSources
	groups map[string]map[string]*promrules.Group
}

// putGroups keeps the groups of a stopped instance, by group key.
func (l *LastGood) putGroups(id string, gs []*promrules.Group) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.groups == nil {
		l.groups = make(map[string]map[string]*promrules.Group)
	}
	m := make(map[string]*promrules.Group, len(gs))
	for _, g := range gs {
		m[promrules.GroupKey(g.File(), g.Name())] = g
	}
	l.groups[id] = m
}

// takeGroups returns and forgets the groups kept for id.
func (l *LastGood) takeGroups(id string) map[string]*promrules.Group {
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

func (l *LastGood) put(id string, files []string, contents [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sets == nil {
		l.sets = make(map[string]ruleSources)
	}
	l.sets[id] = ruleSources{files: append([]string(nil), files...), contents: append([][]byte(nil), contents...)}
}

func (l *LastGood) get(id string) (ruleSources, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.sets[id]
	return s, ok
}
