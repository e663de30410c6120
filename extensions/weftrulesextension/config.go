package weftrulesextension

import (
	"errors"

	"go.opentelemetry.io/collector/component"

	"github.com/weftobs/weft/rules"

	"github.com/weftobs/weft/extensions/weftpinsextension"
)

// PinsNone in the pins key turns pinning off even when a weft_pins
// extension is configured.
const PinsNone = weftpinsextension.None

// Config is the configuration of the weft_rules extension.
type Config struct {
	// Store is the ID of the weft_store extension whose TSDB the rules read
	// and write (default weft_store).
	Store component.ID `mapstructure:"store"`
	// Pins is the ID of the weft_pins extension in which the traces an
	// alert cites are pinned, until the alert's end + 30m (default "": the
	// first weft_pins extension configured, by ID; none configured: no
	// pinning). "none" turns pinning off; an ID that is not configured
	// fails Start.
	Pins string `mapstructure:"pins"`
	// Config is the rules engine's configuration (rule_files,
	// evaluation_interval, alertmanagers, kubernetes, evidence, ...): its
	// keys sit at the top level of the extension's configuration.
	rules.Config `mapstructure:",squash"`
}

// Validate checks the configuration and names the offending keys.
func (c *Config) Validate() error {
	var errs []error
	if err := weftpinsextension.CheckKey(c.Pins); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, c.Config.Check())...)
}
