package weftrulesextension

import (
	"go.opentelemetry.io/collector/component"

	"github.com/weftobs/weft/rules"
)

// Config is the configuration of the weft_rules extension.
type Config struct {
	// Store is the ID of the weft_store extension whose TSDB the rules read
	// and write (default weft_store).
	Store component.ID `mapstructure:"store"`
	// Config is the rules engine's configuration (rule_files,
	// evaluation_interval, alertmanagers, kubernetes, evidence, ...): its
	// keys sit at the top level of the extension's configuration.
	rules.Config `mapstructure:",squash"`
}

// Validate checks the configuration and names the offending keys.
func (c *Config) Validate() error { return c.Config.Check() }
