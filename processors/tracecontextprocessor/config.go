package tracecontextprocessor

import (
	"errors"
	"fmt"
)

// maxFieldNames bounds each list under `fields`: every name costs one
// substring search per log line.
const maxFieldNames = 16

// maxNameLen bounds a field or attribute name.
const maxNameLen = 128

// Config is the trace_context processor's configuration.
type Config struct {
	// Fields lists extra field names, beyond the built-in ones, that carry a
	// trace ID or a span ID in JSON objects, logfmt pairs or map bodies.
	// Names are matched exactly (case-sensitive). A configured trace field
	// takes precedence over every built-in source.
	Fields FieldsConfig `mapstructure:"fields"`

	// Body enables searching the log record body (a string or a map, e.g.
	// JSON already parsed by a receiver). Default true.
	Body bool `mapstructure:"body"`

	// Attributes names log record attributes (string or map values) that
	// are searched, in this order, when the body yields no trace ID, e.g.
	// `message` or `log`. Default none.
	Attributes []string `mapstructure:"attributes"`

	// Severity sets the SeverityNumber (and SeverityText) of records that
	// have none from the level written in them: a JSON, logfmt or map key
	// level, lvl, severity or log.level (README: severity). Searched where
	// trace context is (body, attributes). Default true.
	Severity bool `mapstructure:"severity"`
}

// FieldsConfig holds the extra field names, one list per ID.
type FieldsConfig struct {
	// TraceID: extra field names whose value is a trace ID (32 hex digits,
	// or 16 hex digits, which are left-padded with zeros).
	TraceID []string `mapstructure:"trace_id"`

	// SpanID: extra field names whose value is a span ID (16 hex digits).
	// A span ID is only used together with a trace ID.
	SpanID []string `mapstructure:"span_id"`
}

// Validate checks the configuration; errors name the YAML key.
func (cfg *Config) Validate() error {
	var errs []error
	errs = append(errs, validateNames("fields::trace_id", cfg.Fields.TraceID, true)...)
	errs = append(errs, validateNames("fields::span_id", cfg.Fields.SpanID, true)...)
	errs = append(errs, validateNames("attributes", cfg.Attributes, false)...)
	if !cfg.Body && len(cfg.Attributes) == 0 {
		errs = append(errs, errors.New("nothing to search: set `body: true` or list `attributes`"))
	}
	return errors.Join(errs...)
}

// validateNames checks one list of names. Field names (field == true) must be
// usable as a JSON or logfmt key: no spaces, quotes, backslashes, '=' or ':'.
func validateNames(key string, names []string, field bool) []error {
	var errs []error
	if field && len(names) > maxFieldNames {
		errs = append(errs, fmt.Errorf("%s: at most %d names, got %d", key, maxFieldNames, len(names)))
	}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		switch {
		case n == "":
			errs = append(errs, fmt.Errorf("%s[%d]: empty name", key, i))
			continue
		case len(n) > maxNameLen:
			errs = append(errs, fmt.Errorf("%s[%d]: name longer than %d bytes", key, i, maxNameLen))
		case seen[n]:
			errs = append(errs, fmt.Errorf("%s[%d]: duplicate name %q", key, i, n))
		}
		seen[n] = true
		if !field {
			continue
		}
		for j := 0; j < len(n); j++ {
			if c := n[j]; c <= ' ' || c == 0x7f || c == '"' || c == '\'' || c == '\\' || c == '=' || c == ':' {
				errs = append(errs, fmt.Errorf("%s[%d]: name %q contains %q; allowed are printable characters except space, quotes, backslash, '=' and ':'", key, i, n, c))
				break
			}
		}
	}
	return errs
}
