package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftobs/weft/rules"
)

// newRulesCommand is `weft rules`, the rule file tools.
func newRulesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Rule file tools (split)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newRulesSplitCommand())
	return cmd
}

// newRulesSplitCommand is `weft rules split`: it reads rule files and
// PrometheusRule manifests, decides every rule's scope as weft_rules does,
// writes the cluster rule file for Thanos Ruler (or any ruler that reads
// Thanos Query) and prints one line per rule to stderr.
func newRulesSplitCommand() *cobra.Command {
	var partition, objects []string
	var output string
	cmd := &cobra.Command{
		Use:   "split [--partition-label L]... [--object-metric RE]... [-o FILE] FILE|DIR|GLOB...",
		Short: "Write the cluster rule file for Thanos Ruler from weft's rule files",
		Long: `split decides each rule's scope as the weft_rules extension does (node: evaluated
on every node; cluster: by a ruler over Thanos Query) and writes the cluster
rules as one rule file for Thanos Ruler: the groups with cluster rules, same
names, intervals, labels and rules, partial_response_strategy: abort. An
aggregation that distributes over nodes is finished from the weft:partial:*
series every node records; anything else is evaluated whole.

Give the same --partition-label and --object-metric values as the agents'
weft_rules scope.partition_labels and scope.object_metrics: the partial names
depend on them. One line per rule (scope, reason, what is pushed down) goes
to stderr.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := rules.ScopeOptions{PartitionLabels: partition}
			if cmd.Flags().Changed("object-metric") {
				opts.ObjectMetrics = objects
			}
			return rulesSplit(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, opts, output)
		},
	}
	cmd.Flags().StringArrayVar(&partition, "partition-label", nil,
		"a label whose values each belong to one node, besides node, pod and instance (repeatable; weft_rules scope.partition_labels)")
	cmd.Flags().StringArrayVar(&objects, "object-metric", nil,
		`metric names (anchored regular expression) whose pod/node/instance labels describe objects on any node (repeatable; default "kube_.*"; weft_rules scope.object_metrics)`)
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the cluster rule file here (default: stdout)")
	return cmd
}

// rulesSplit plans the rule files and writes the cluster file to output
// (stdout when empty) and the summary to stderr.
func rulesSplit(stdout, stderr io.Writer, patterns []string, opts rules.ScopeOptions, output string) error {
	plan, err := rules.SplitFiles(patterns, opts)
	if err != nil {
		return err
	}
	body, err := plan.ClusterFile()
	if err != nil {
		return err
	}
	var head strings.Builder
	head.WriteString("# Cluster rules for Thanos Ruler, written by `weft rules split`.\n")
	head.WriteString("# Partition labels: " + strings.Join(plan.PartitionLabels, ", ") + ".\n")
	head.WriteString("# Object metrics: " + strings.Join(plan.ObjectMetrics, ", ") + ".\n")
	head.WriteString("# weft:partial:* series are recorded by every weft agent (weft_rules) from the same rule files.\n")
	out := append([]byte(head.String()), body...)
	if output == "" {
		if _, err := stdout.Write(out); err != nil {
			return err
		}
	} else if err := os.WriteFile(output, out, 0o644); err != nil { //nolint:gosec // a rule file for a ruler to read
		return fmt.Errorf("write %s: %w", output, err)
	}
	for _, l := range plan.Summary() {
		fmt.Fprintln(stderr, l)
	}
	return nil
}
