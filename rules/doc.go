// Package rules is weft's rules engine: it loads Prometheus rule files and
// PrometheusRule manifests (files and, through internal/kube, the
// Kubernetes API), decides each rule's scope (node or cluster; cluster
// rules are split into node partials and a rule for Thanos Ruler, see
// PlanRules), evaluates node rules and partials on the node over
// weft_store's TSDB with Prometheus's own rule manager, attaches evidence
// (failing trace IDs, their spans and log lines) to firing alerts, and
// notifies Alertmanager and webhooks.
//
// The weft_rules extension (extensions/weftrulesextension) is its front door: New
// builds an Engine from a Config and a Store, Start and Stop run it,
// Reload swaps in a new rule set (an invalid one is rejected and the
// running set goes on), and Status, Groups, RuleGroups and Alerts report
// on it. CheckRuleFiles is what `weft validate` runs.
package rules
