package rules

import (
	"fmt"
)

// CheckRuleFiles loads the rule files that cfg's rule_files name exactly as
// the engine's Reload does (the same expansion of files, directories
// and globs, the same parser and checks, cfg's name_validation), without
// running anything. It is what `weft validate` adds to the collector's
// validation: the running engine accepts a set of files if and only if
// CheckRuleFiles returns no error for it.
//
// warnings has a line per glob that matches no file (no error: the agent
// runs without its rules until files appear). errs has every error, each
// naming the file and, where known, the line and column, as the
// engine reports them: "file: line:col: message". The Kubernetes
// source (kubernetes.enabled) is not read.
func CheckRuleFiles(cfg *Config) (warnings []string, errs []error) {
	for _, g := range emptyGlobs(cfg.RuleFiles) {
		warnings = append(warnings, fmt.Sprintf("rule_files glob %q matches no file", g))
	}
	e := newEngine(cfg, Settings{})
	files, contents, _, readErr := readSources(cfg.RuleFiles)
	_, parseErr := e.parseSet(files, contents)
	return warnings, append(unjoin(parseErr), unjoin(readErr)...)
}

// unjoin splits an errors.Join result (nested ones too) into its errors.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
