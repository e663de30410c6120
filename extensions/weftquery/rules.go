package weftquery

import (
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/component"
)

// RulesSource is what the query API reads from a rules engine (the
// weft_rules extension implements it). Both methods must be safe to call
// concurrently and return copies the caller may keep.
type RulesSource interface {
	// RuleGroups returns the loaded rule groups with their last evaluation.
	RuleGroups() []RuleGroup
	// Alerts returns the active (pending and firing) alerts.
	Alerts() []Alert
}

// RulesHealthSource is optionally implemented by a RulesSource: the state of
// its rule sources, shown above the rules on the status page.
type RulesHealthSource interface {
	RulesHealth() RulesHealth
}

// RulesHealth is a rules engine's view of its sources.
type RulesHealth struct {
	LastReload  time.Time
	ReloadOK    bool     // the last reload attempt was applied
	LastError   string   // error of the last failed attempt, with file and line
	Inherited   bool     // running the previous instance's set: this one's was invalid
	Rejected    []string // sources left out of the running set, each with its error
	SourceError string   // the last error of a remote source (Kubernetes API), "" while healthy
}

// RuleGroup is one group of rules, as /api/v1/rules reports it.
type RuleGroup struct {
	Name           string
	File           string
	Interval       time.Duration
	Rules          []Rule
	LastEvaluation time.Time
	EvaluationTime time.Duration
}

// Rule is an alerting rule (Type "alerting") or a recording rule ("recording").
type Rule struct {
	Type        string // "alerting" or "recording"
	Name        string
	Query       string
	For         time.Duration
	Labels      map[string]string
	Annotations map[string]string
	// Health is "ok", "err" or "unknown"; LastError is set with "err".
	Health         string
	LastError      string
	State          string // alerting rules: "inactive", "pending" or "firing"
	Alerts         []Alert
	LastEvaluation time.Time
	EvaluationTime time.Duration
}

// Alert is an active alert with its evidence.
type Alert struct {
	Labels      map[string]string
	Annotations map[string]string
	State       string // "pending" or "firing"
	ActiveAt    time.Time
	Value       float64
	// TraceIDs are the hex trace IDs attached as evidence (may be empty).
	TraceIDs []string
}

// findRules returns the rules source: the named extension (which must be
// one), else the first extension by ID that is one, else nil.
func findRules(exts map[component.ID]component.Component, id component.ID) (RulesSource, error) {
	if id.Type().String() != "" {
		rs, ok := exts[id].(RulesSource)
		if !ok {
			return nil, fmt.Errorf("weft_query: rules: extension %q does not exist or offers no rules and alerts", id)
		}
		return rs, nil
	}
	ids := make([]component.ID, 0, len(exts))
	for eid, e := range exts {
		if _, ok := e.(RulesSource); ok {
			ids = append(ids, eid)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	slices.SortFunc(ids, func(a, b component.ID) int {
		if a.String() < b.String() {
			return -1
		}
		if a.String() > b.String() {
			return 1
		}
		return 0
	})
	return exts[ids[0]].(RulesSource), nil
}
