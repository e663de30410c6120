package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/otelcol"
	"go.uber.org/zap"

	"github.com/weftobs/weft/extensions/weftrulesextension"
	"github.com/weftobs/weft/rules"
)

// withRuleValidation replaces the collector's validate subcommand of root
// by validateRules, which keeps its flags, help and checks and then loads
// the rule files of every weft_rules extension.
func withRuleValidation(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() == "validate" {
			root.RemoveCommand(c)
			root.AddCommand(newValidateCommand(c))
			return
		}
	}
}

// newValidateCommand is `weft validate`: the collector's validation (its
// messages unchanged), then every rule file and PrometheusRule manifest
// that a weft_rules extension names, loaded as the running extension
// loads them. Any error exits 1; a rule glob that matches no file is a
// warning. collectorValidate is the collector's own validate command,
// whose flags (--config, --set, --feature-gates) and help are kept.
func newValidateCommand(collectorValidate *cobra.Command) *cobra.Command {
	var configs, sets []string
	cmd := &cobra.Command{
		Use:   collectorValidate.Use,
		Short: collectorValidate.Short,
		Long:  collectorValidate.Long,
		Args:  collectorValidate.Args,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// As otelcol's getConfigFlag: --config values, then --set
			// values; without either, the default (embedded) profile.
			uris := append(slices.Clone(configs), sets...)
			if len(uris) == 0 {
				uris = []string{defaultConfigURI}
			}
			return validate(cmd.Context(), cmd.ErrOrStderr(), uris)
		},
	}
	cmd.Flags().AddFlagSet(collectorValidate.Flags())
	// The collector keeps the flag values to itself; record them on the
	// way in (the collector's flag still parses and checks them).
	recordFlag(cmd, "config", func(v string) { configs = append(configs, v) })
	recordFlag(cmd, "set", func(v string) {
		// otelcol's --set: "a.b=v" becomes the URI "yaml:a::b: v".
		key, val, _ := strings.Cut(v, "=")
		sets = append(sets, "yaml:"+strings.TrimSpace(strings.ReplaceAll(key, ".", "::"))+": "+strings.TrimSpace(val))
	})
	return cmd
}

// recordFlag makes the flag name of cmd also hand every value it accepts
// to record.
func recordFlag(cmd *cobra.Command, name string, record func(string)) {
	f := cmd.Flags().Lookup(name)
	if f == nil {
		panic("otelcol validate has no --" + name + " flag")
	}
	f.Value = recordingValue{flagValue: f.Value, record: record}
}

// flagValue is pflag.Value.
type flagValue interface {
	String() string
	Set(string) error
	Type() string
}

type recordingValue struct {
	flagValue
	record func(string)
}

func (v recordingValue) Set(s string) error {
	if err := v.flagValue.Set(s); err != nil {
		return err
	}
	v.record(s)
	return nil
}

// validate runs the collector's validation of the configuration at uris,
// then loads the rule files of its weft_rules extensions. Warnings go to
// w; every error is in the returned error, one per line.
func validate(ctx context.Context, w io.Writer, uris []string) error {
	set := collectorSettings(uris...)
	col, err := otelcol.NewCollector(set)
	if err != nil {
		return err
	}
	if err := col.DryRun(ctx); err != nil {
		return err
	}
	return validateRuleFiles(ctx, w, set)
}

// validateRuleFiles resolves the configuration as the collector does and
// loads the rule sources of every weft_rules extension with
// rules.CheckRuleFiles.
func validateRuleFiles(ctx context.Context, w io.Writer, set otelcol.CollectorSettings) error {
	factories, err := set.Factories()
	if err != nil {
		return fmt.Errorf("failed to initialize factories: %w", err)
	}
	ps := set.ConfigProviderSettings
	ps.ResolverSettings.ProviderSettings = confmap.ProviderSettings{Logger: zap.NewNop()}
	ps.ResolverSettings.ConverterSettings = confmap.ConverterSettings{Logger: zap.NewNop()}
	provider, err := otelcol.NewConfigProvider(ps)
	if err != nil {
		return err
	}
	cfg, err := provider.Get(ctx, factories)
	if err != nil {
		return errors.Join(fmt.Errorf("failed to get config: %w", err), provider.Shutdown(ctx))
	}
	if err := provider.Shutdown(ctx); err != nil {
		return err
	}
	rulesType := weftrulesextension.NewFactory().Type()
	var ids []component.ID
	for id := range cfg.Extensions {
		if id.Type() == rulesType {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b component.ID) int { return strings.Compare(a.String(), b.String()) })
	var lines []string
	for _, id := range ids {
		rcfg, ok := cfg.Extensions[id].(*weftrulesextension.Config)
		if !ok {
			return fmt.Errorf("extensions::%s: configuration is a %T, not a weft_rules configuration", id, cfg.Extensions[id])
		}
		warnings, errs := rules.CheckRuleFiles(&rcfg.Config)
		for _, s := range warnings {
			fmt.Fprintf(w, "warning: extensions::%s: %s\n", id, s)
		}
		for _, err := range errs {
			lines = append(lines, fmt.Sprintf("extensions::%s: %v", id, err))
		}
	}
	if len(lines) > 0 {
		return fmt.Errorf("invalid rule files (the agent rejects the whole set):\n%s", strings.Join(lines, "\n"))
	}
	return nil
}
