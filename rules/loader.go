package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Manifest identity accepted by the loader.
const (
	manifestAPIVersion = "monitoring.coreos.com/v1"
	manifestKind       = "PrometheusRule"
)

// expandSources turns rule_files entries (files, directories, globs) into a
// sorted list of files without duplicates. A directory contributes its
// *.yaml and *.yml files (not recursive; names starting with "." are
// skipped, like the ..data links of a mounted ConfigMap). A glob that
// matches nothing contributes nothing; a plain path that does not exist is
// an error.
func expandSources(patterns []string) ([]string, error) {
	var files []string
	var errs []error
	for _, p := range patterns {
		matches := []string{p}
		if hasMeta(p) {
			m, err := filepath.Glob(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("rule_files %q: %w", p, err))
				continue
			}
			matches = m
		}
		for _, m := range matches {
			if m != p && strings.HasPrefix(filepath.Base(m), ".") {
				continue
			}
			fi, err := os.Stat(m)
			if err != nil {
				errs = append(errs, fmt.Errorf("rule_files %q: %w", p, err))
				continue
			}
			if !fi.IsDir() {
				files = append(files, m)
				continue
			}
			ents, err := os.ReadDir(m)
			if err != nil {
				errs = append(errs, fmt.Errorf("rule_files %q: %w", p, err))
				continue
			}
			for _, e := range ents {
				n := e.Name()
				if strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
					continue
				}
				full := filepath.Join(m, n)
				if st, err := os.Stat(full); err == nil && !st.IsDir() {
					files = append(files, full)
				}
			}
		}
	}
	slices.Sort(files)
	return slices.Compact(files), errors.Join(errs...)
}

// emptyGlobs returns the rule_files globs that match no file (a glob that
// matches nothing is no error, but usually a mistake worth a warning).
func emptyGlobs(patterns []string) []string {
	var empty []string
	for _, p := range patterns {
		if !hasMeta(p) {
			continue
		}
		if m, err := filepath.Glob(p); err == nil && len(m) == 0 {
			empty = append(empty, p)
		}
	}
	return empty
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// loadRuleFile is loadRuleFileNames with UTF-8 names (name_validation: utf8).
func loadRuleFile(path string, content []byte, p parser.Parser, logger *slog.Logger) (*rulefmt.RuleGroups, []error) {
	return loadRuleFileNames(path, content, p, model.UTF8Validation, logger)
}

// loadRuleFileNames reads and validates one file: Prometheus rule groups,
// or PrometheusRule manifests. Metric and label names must be valid in
// names (name_validation). Errors name the file and, where known, the line.
func loadRuleFileNames(path string, content []byte, p parser.Parser, names model.ValidationScheme, logger *slog.Logger) (*rulefmt.RuleGroups, []error) {
	if isManifest(content) {
		rgs, errs := parseManifests(content, p, names, logger)
		return rgs, prefixErrs(path, errs)
	}
	rgs, errs := parseGroups(content, p, names, logger)
	if len(errs) == 0 {
		errs = checkScopeKeys(rgs)
	}
	if len(errs) == 0 {
		if line := secondDocument(content); line > 0 {
			errs = []error{fmt.Errorf("%d: several YAML documents in a rule file (the second starts here); only PrometheusRule manifests may be multi-document", line)}
		}
	}
	return rgs, prefixErrs(path, errs)
}

func prefixErrs(path string, errs []error) []error {
	for i, err := range errs {
		errs[i] = fmt.Errorf("%s: %w", path, err)
	}
	return errs
}

// secondDocument returns the line of the second YAML document of content
// (its "---"), or 0 when there is none.
func secondDocument(content []byte) int {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		return 0
	}
	n = yaml.Node{}
	if err := dec.Decode(&n); errors.Is(err, io.EOF) {
		return 0
	}
	return max(n.Line, 1)
}

// isManifest reports whether the first YAML document with content is a
// Kubernetes object (has apiVersion or kind at its root).
func isManifest(content []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for range 10000 { // bounded: a decoder that stops advancing cannot hang us
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return false
		}
		if len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		if root.Kind != yaml.MappingNode {
			return false
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			if k := root.Content[i].Value; k == "apiVersion" || k == "kind" {
				return true
			}
		}
		return false
	}
	return false
}

// manifest is a PrometheusRule object. Metadata accepts the fields of a
// Kubernetes ObjectMeta; spec only groups.
type manifest struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       yaml.Node  `yaml:"spec"`
	Status     yaml.Node  `yaml:"status"`
}

type objectMeta struct {
	Name                       string            `yaml:"name"`
	Namespace                  string            `yaml:"namespace"`
	Labels                     map[string]string `yaml:"labels"`
	Annotations                map[string]string `yaml:"annotations"`
	GenerateName               string            `yaml:"generateName"`
	UID                        string            `yaml:"uid"`
	ResourceVersion            string            `yaml:"resourceVersion"`
	Generation                 int64             `yaml:"generation"`
	SelfLink                   string            `yaml:"selfLink"`
	CreationTimestamp          yaml.Node         `yaml:"creationTimestamp"`
	DeletionTimestamp          yaml.Node         `yaml:"deletionTimestamp"`
	DeletionGracePeriodSeconds yaml.Node         `yaml:"deletionGracePeriodSeconds"`
	OwnerReferences            yaml.Node         `yaml:"ownerReferences"`
	Finalizers                 []string          `yaml:"finalizers"`
	ManagedFields              yaml.Node         `yaml:"managedFields"`
}

// document is one YAML document of a stream with its first line (0-based).
type document struct {
	start int
	lines []string
}

// splitDocuments cuts a YAML stream at "---" lines. Lines keep their
// position so that errors point into the original file.
func splitDocuments(content []byte) []document {
	lines := strings.Split(string(content), "\n")
	var docs []document
	cur := document{}
	for i, l := range lines {
		l = strings.TrimRight(l, "\r")
		lines[i] = l
		if l == "---" || strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "---\t") || l == "..." {
			docs = append(docs, cur)
			cur = document{start: i + 1}
			continue
		}
		cur.lines = append(cur.lines, l)
	}
	return append(docs, cur)
}

// text returns the document with blank lines in front of it, so that YAML
// line numbers are the file's.
func (d document) text() []byte {
	return []byte(strings.Repeat("\n", d.start) + strings.Join(d.lines, "\n") + "\n")
}

// parseManifests validates every PrometheusRule document of a file and
// returns their groups together. spec.groups is handed to rulefmt with its
// lines in place, so every error carries the file's line numbers.
func parseManifests(content []byte, p parser.Parser, names model.ValidationScheme, logger *slog.Logger) (*rulefmt.RuleGroups, []error) {
	all := &rulefmt.RuleGroups{}
	var errs []error
	seen := map[string]int{} // group name → line
	for _, d := range splitDocuments(content) {
		text := d.text()
		var root yaml.Node
		if err := yaml.Unmarshal(text, &root); err != nil {
			errs = append(errs, err)
			continue
		}
		if len(root.Content) == 0 {
			continue // empty document
		}
		docLine := root.Content[0].Line
		var m manifest
		dec := yaml.NewDecoder(bytes.NewReader(text))
		dec.KnownFields(true)
		if err := dec.Decode(&m); err != nil {
			errs = append(errs, err)
			continue
		}
		if m.APIVersion != manifestAPIVersion || m.Kind != manifestKind {
			errs = append(errs, fmt.Errorf("%d: apiVersion %q kind %q: want %s %s", docLine, m.APIVersion, m.Kind, manifestAPIVersion, manifestKind))
			continue
		}
		groupsText, groupsNode, err := specGroups(root.Content[0], &m.Spec, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if groupsNode == nil {
			continue // no groups
		}
		rgs, gerrs := parseGroups(groupsText, p, names, logger)
		if len(gerrs) == 0 {
			gerrs = checkScopeKeys(rgs)
		}
		if len(gerrs) > 0 {
			errs = append(errs, gerrs...)
			continue
		}
		if err := applyManifestScope(rgs, m.Metadata.Annotations, docLine); err != nil {
			errs = append(errs, err)
			continue
		}
		for i, g := range rgs.Groups {
			line := groupsNode.Line
			if i < len(groupsNode.Content) {
				line = groupsNode.Content[i].Line
			}
			if prev, dup := seen[g.Name]; dup {
				errs = append(errs, fmt.Errorf("%d: group name %q repeated (first at line %d)", line, g.Name, prev))
				continue
			}
			seen[g.Name] = line
			all.Groups = append(all.Groups, g)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return all, nil
}

// specGroups finds spec.groups and returns a YAML text "groups: …" whose
// lines are the file's, and the groups value node.
func specGroups(root, spec *yaml.Node, d document) ([]byte, *yaml.Node, error) {
	if spec.Kind == 0 {
		return nil, nil, fmt.Errorf("%d: PrometheusRule without spec", root.Line)
	}
	if spec.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("%d:%d: spec: want a mapping", spec.Line, spec.Column)
	}
	var key, val *yaml.Node
	for i := 0; i+1 < len(spec.Content); i += 2 {
		k := spec.Content[i]
		if k.Value != "groups" {
			return nil, nil, fmt.Errorf("%d:%d: field %s not found in PrometheusRule spec", k.Line, k.Column, k.Value)
		}
		key, val = k, spec.Content[i+1]
	}
	if key == nil {
		return nil, nil, nil
	}
	if spec.Style&yaml.FlowStyle != 0 {
		// Flow style: no clean line range; re-encode (lines of errors are
		// then relative to spec).
		b, err := yaml.Marshal(map[string]*yaml.Node{"groups": val})
		return b, val, err
	}
	// The groups text runs from its key to the line before the next key
	// that follows it in the document (in spec or at the root), or to the
	// end of the document.
	end := d.start + len(d.lines) + 1 // 1-based, exclusive
	for _, m := range []*yaml.Node{spec, root} {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if l := m.Content[i].Line; l > key.Line && l < end {
				end = l
			}
		}
	}
	var b strings.Builder
	b.WriteString(strings.Repeat("\n", key.Line-1))
	for l := key.Line; l < end; l++ {
		line := d.lines[l-1-d.start]
		if l == key.Line {
			line = line[key.Column-1:]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return []byte(b.String()), val, nil
}

// parseGroups parses a "groups:" document with rulefmt, after checking
// what rulefmt reports without a line (durations, repeated group names,
// label and annotation names), and then, for legacy names, what rulefmt
// does not check (recording rule names, names in expressions).
func parseGroups(content []byte, p parser.Parser, names model.ValidationScheme, logger *slog.Logger) (*rulefmt.RuleGroups, []error) {
	var root yaml.Node
	if err := yaml.Unmarshal(content, &root); err == nil {
		if errs := checkGroupsNode(&root); len(errs) > 0 {
			return nil, errs
		}
	}
	rgs, errs := rulefmt.Parse(content, false, model.UTF8Validation, p, logger)
	addRuleLines(&root, errs)
	if names == model.LegacyValidation {
		errs = append(errs, checkLegacyNames(&root, p)...)
	}
	return rgs, dedupErrs(errs)
}

// checkGroupsNode checks group names for repeats, every duration field for
// syntax and label and annotation names (as rulefmt does), naming line and
// column.
func checkGroupsNode(doc *yaml.Node) []error {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	groups := mapValue(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return nil
	}
	var errs []error
	seen := map[string]int{}
	checkDur := func(m *yaml.Node, key string) {
		v := mapValue(m, key)
		if v == nil || v.Kind != yaml.ScalarNode {
			return
		}
		if _, err := model.ParseDuration(v.Value); err != nil {
			errs = append(errs, fmt.Errorf("%d:%d: %s: %w", v.Line, v.Column, key, err))
		}
	}
	for _, g := range groups.Content {
		if g.Kind != yaml.MappingNode {
			continue
		}
		if n := mapValue(g, "name"); n != nil && n.Kind == yaml.ScalarNode {
			if prev, dup := seen[n.Value]; dup {
				errs = append(errs, fmt.Errorf("%d:%d: group name %q repeated (first at line %d)", n.Line, n.Column, n.Value, prev))
			} else {
				seen[n.Value] = n.Line
			}
		}
		checkDur(g, "interval")
		checkDur(g, "query_offset")
		gname := scalarValue(g, "name")
		errs = append(errs, checkLabelNames(mapValue(g, "labels"), model.UTF8Validation, "label", fmt.Sprintf("group %q", gname))...)
		rules := mapValue(g, "rules")
		if rules == nil || rules.Kind != yaml.SequenceNode {
			continue
		}
		for i, r := range rules.Content {
			if r.Kind == yaml.MappingNode {
				checkDur(r, "for")
				checkDur(r, "keep_firing_for")
				where := ruleWhere(gname, i, r)
				errs = append(errs, checkLabelNames(mapValue(r, "labels"), model.UTF8Validation, "label", where)...)
				errs = append(errs, checkLabelNames(mapValue(r, "annotations"), model.UTF8Validation, "annotation", where)...)
			}
		}
	}
	return errs
}

// addRuleLines gives the rule errors of rulefmt that name no line
// (templates, label values, a missing expr) the line and column of their
// rule.
func addRuleLines(doc *yaml.Node, errs []error) {
	for i, err := range errs {
		var re *rulefmt.Error
		if !errors.As(err, &re) {
			continue
		}
		r := ruleNode(doc, re.Group, re.Rule)
		if r == nil {
			continue
		}
		// rulefmt writes a missing key (expr, alert/record) as 0:0.
		if msg := err.Error(); strings.HasPrefix(msg, "0:0: ") {
			for strings.HasPrefix(msg, "0:0: ") {
				msg = msg[len("0:0: "):]
			}
			errs[i] = fmt.Errorf("%d:%d: %s", r.Line, r.Column, msg)
			continue
		}
		if !strings.HasPrefix(err.Error(), "group ") {
			continue
		}
		errs[i] = fmt.Errorf("%d:%d: %w", r.Line, r.Column, err)
	}
}

// ruleNode returns rule n (1-based) of the first group named group.
func ruleNode(doc *yaml.Node, group string, n int) *yaml.Node {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	groups := mapValue(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return nil
	}
	for _, g := range groups.Content {
		if g.Kind != yaml.MappingNode || scalarValue(g, "name") != group {
			continue
		}
		rules := mapValue(g, "rules")
		if rules == nil || rules.Kind != yaml.SequenceNode || n < 1 || n > len(rules.Content) {
			return nil
		}
		return rules.Content[n-1]
	}
	return nil
}

// checkLabelNames checks the keys of a labels or annotations mapping: valid
// in names, and a label is never __name__ (as rulefmt checks, but naming
// line and column). where says whose they are.
func checkLabelNames(m *yaml.Node, names model.ValidationScheme, kind, where string) []error {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	var errs []error
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		switch {
		case k.Value == ScopeKey && (kind == "annotation" || !strings.Contains(where, ", rule ")):
			// weft's own key (scope.go) on a group or as an annotation:
			// never a series label.
		case kind == "label" && k.Value == model.MetricNameLabel:
			errs = append(errs, fmt.Errorf("%d:%d: %s: invalid label name %q (reserved for the metric name)", k.Line, k.Column, where, k.Value))
		case names == model.LegacyValidation && !names.IsValidLabelName(k.Value):
			errs = append(errs, fmt.Errorf("%d:%d: %s: %s name %q is not a legacy name%s", k.Line, k.Column, where, kind, k.Value, legacyHint))
		case !names.IsValidLabelName(k.Value):
			errs = append(errs, fmt.Errorf("%d:%d: %s: invalid %s name %q", k.Line, k.Column, where, kind, k.Value))
		}
	}
	return errs
}

// legacyHint ends the errors of names refused by name_validation: legacy.
const legacyHint = " (name_validation: legacy: [a-zA-Z_:][a-zA-Z0-9_:]*, no ':' in label names)"

// checkLegacyNames refuses what name_validation: legacy forbids and rulefmt
// (with UTF-8 names) accepts: label and annotation names, recording rule
// names, and metric and label names in expressions ({"my.metric"},
// {__name__="my.metric"}, by ("a.b"), on, group_left/right, label_replace,
// label_join). Expressions that do not parse are left to rulefmt.
func checkLegacyNames(doc *yaml.Node, p parser.Parser) []error {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	groups := mapValue(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return nil
	}
	var errs []error
	for _, g := range groups.Content {
		if g.Kind != yaml.MappingNode {
			continue
		}
		gname := scalarValue(g, "name")
		errs = append(errs, checkLabelNames(mapValue(g, "labels"), model.LegacyValidation, "label", fmt.Sprintf("group %q", gname))...)
		rules := mapValue(g, "rules")
		if rules == nil || rules.Kind != yaml.SequenceNode {
			continue
		}
		for i, r := range rules.Content {
			if r.Kind != yaml.MappingNode {
				continue
			}
			where := ruleWhere(gname, i, r)
			if rec := mapValue(r, "record"); rec != nil && rec.Kind == yaml.ScalarNode && rec.Value != "" &&
				!model.LegacyValidation.IsValidMetricName(rec.Value) {
				errs = append(errs, fmt.Errorf("%d:%d: %s: recording rule name %q is not a legacy name%s", rec.Line, rec.Column, where, rec.Value, legacyHint))
			}
			if ex := mapValue(r, "expr"); ex != nil && ex.Kind == yaml.ScalarNode {
				if expr, err := p.ParseExpr(ex.Value); err == nil {
					for _, bad := range legacyNameViolations(expr) {
						errs = append(errs, fmt.Errorf("%d:%d: %s: %s is not a legacy name%s", ex.Line, ex.Column, where, bad, legacyHint))
					}
				}
			}
			errs = append(errs, checkLabelNames(mapValue(r, "labels"), model.LegacyValidation, "label", where)...)
			errs = append(errs, checkLabelNames(mapValue(r, "annotations"), model.LegacyValidation, "annotation", where)...)
		}
	}
	return errs
}

// legacyNameViolations lists the metric and label names of expr that are
// not legacy names, each as `metric name "x"` or `label name "x"`.
func legacyNameViolations(expr parser.Expr) []string {
	var out []string
	label := func(n string) {
		if !model.LegacyValidation.IsValidLabelName(n) {
			out = append(out, fmt.Sprintf("label name %q", n))
		}
	}
	labelArg := func(e parser.Expr) {
		if s, ok := e.(*parser.StringLiteral); ok {
			label(s.Val)
		}
	}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					label(m.Name)
				} else if m.Type == labels.MatchEqual && !model.LegacyValidation.IsValidMetricName(m.Value) {
					out = append(out, fmt.Sprintf("metric name %q", m.Value))
				}
			}
		case *parser.AggregateExpr:
			for _, l := range n.Grouping {
				label(l)
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				for _, l := range n.VectorMatching.MatchingLabels {
					label(l)
				}
				for _, l := range n.VectorMatching.Include {
					label(l)
				}
			}
		case *parser.Call:
			switch n.Func.Name {
			case "label_replace": // (v, dst, replacement, src, regex)
				if len(n.Args) == 5 {
					labelArg(n.Args[1])
					labelArg(n.Args[3])
				}
			case "label_join": // (v, dst, separator, src...)
				for i, a := range n.Args {
					if i == 1 || i >= 3 {
						labelArg(a)
					}
				}
			}
		}
		return nil
	})
	return out
}

// ruleWhere names rule i (0-based) of group gname as rulefmt does:
// group "g", rule 1, "Name".
func ruleWhere(gname string, i int, r *yaml.Node) string {
	name := scalarValue(r, "alert")
	if name == "" {
		name = scalarValue(r, "record")
	}
	return fmt.Sprintf("group %q, rule %d, %q", gname, i+1, name)
}

// scalarValue is the value of a scalar key of a mapping, or "".
func scalarValue(m *yaml.Node, key string) string {
	if v := mapValue(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func dedupErrs(errs []error) []error {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}
