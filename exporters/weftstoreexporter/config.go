package weftstoreexporter

import (
	"fmt"

	"go.opentelemetry.io/collector/component"
)

// Config is the configuration of the weft_store exporter.
type Config struct {
	// Store is the component ID of the weft_store extension to write into
	// (default "weft_store").
	Store component.ID `mapstructure:"store"`
}

// Validate checks that store names a weft_store extension.
func (c *Config) Validate() error {
	if c.Store.Type() != storeType {
		return fmt.Errorf("store: must name a %s extension (e.g. %q or \"%s/<name>\"), got %q", storeType, storeType.String(), storeType.String(), c.Store.String())
	}
	return nil
}
