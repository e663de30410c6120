// Package rulesapi holds the types a rules engine (the weft_rules
// extension) hands to its readers (weft_query's /api/v1/rules,
// /api/v1/alerts and status page): plain values, so neither side imports
// the other.
package rulesapi

import "time"

// Source is what the query API reads from a rules engine (the
// weft_rules extension implements it). Both methods must be safe to call
// concurrently and return copies the caller may keep.
type Source interface {
	// RuleGroups returns the loaded rule groups with their last evaluation.
	RuleGroups() []Group
	// Alerts returns the active (pending and firing) alerts.
	Alerts() []Alert
}

// HealthSource is optionally implemented by a Source: the state of
// its rule sources, shown above the rules on the status page.
type HealthSource interface {
	RulesHealth() Health
}

// Health is a rules engine's view of its sources.
type Health struct {
	LastReload  time.Time
	ReloadOK    bool     // the last reload attempt was applied
	LastError   string   // error of the last failed attempt, with file and line
	Inherited   bool     // running the previous instance's set: this one's was invalid
	Rejected    []string // sources left out of the running set, each with its error
	SourceError string   // the last error of a remote source (Kubernetes API), "" while healthy
}

// Group is one group of rules, as /api/v1/rules reports it.
type Group struct {
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
	// Scope is where the rule is evaluated: "node" (here, over this
	// node's data) or "cluster" (by a ruler over Thanos Query: listed
	// here, never evaluated here); "" when the source decides none.
	Scope string
	// ScopeReason says why, e.g. "sum by (service) drops node/pod/instance".
	ScopeReason string
	// PartialOf is set on the partial recording rules (weft:partial:…)
	// a node evaluates for a cluster rule: that rule's name.
	PartialOf string
}

// Rule scopes.
const (
	ScopeNode    = "node"
	ScopeCluster = "cluster"
)

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
