package evidencesamplingprocessor

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/weftobs/weft/extensions/weftpinsextension"
)

// PinsNone in the pins key turns pinning off even when a weft_pins
// extension is configured.
const PinsNone = weftpinsextension.None

// Config is the configuration of the evidence_sampling processor.
type Config struct {
	// Pins is the component ID of the weft_pins extension that error
	// spans and error log records pin their traces in, and whose pins
	// keep traces (default "": the first weft_pins extension configured,
	// by ID; none configured: no pinning, sampling alone decides). "none"
	// turns pinning off; an ID that is not configured fails Start.
	Pins string `mapstructure:"pins"`
	// SamplingPercentage is the share of traces kept by consistent
	// probability sampling on the trace ID, 0 … 100 (default 100: keep
	// everything; the processor then only pins). 0 keeps pinned traces
	// only.
	SamplingPercentage float64 `mapstructure:"sampling_percentage"`
	// DecisionWait is how long the data of a trace that is not sampled
	// waits for a pin before it is dropped (default 10s).
	DecisionWait time.Duration `mapstructure:"decision_wait"`
	// PinLogSeverity is the lowest severity of a log record (with a trace
	// ID) that pins its trace: TRACE, DEBUG, INFO, WARN, ERROR, FATAL or
	// NONE (no log record pins) (default ERROR).
	PinLogSeverity string `mapstructure:"pin_log_severity"`
	// MaxBufferedSpans bounds the spans waiting for a decision (default
	// 100000).
	MaxBufferedSpans int `mapstructure:"max_buffered_spans"`
	// MaxBufferedSpanBytes bounds the bytes of the spans waiting (encoded
	// OTLP plus bookkeeping; default 32 MiB).
	MaxBufferedSpanBytes int `mapstructure:"max_buffered_span_bytes"`
	// MaxBufferedLogRecords bounds the log records waiting (default
	// 100000).
	MaxBufferedLogRecords int `mapstructure:"max_buffered_log_records"`
	// MaxBufferedLogBytes bounds the bytes of the log records waiting
	// (default 32 MiB).
	MaxBufferedLogBytes int `mapstructure:"max_buffered_log_bytes"`
}

var _ component.Config = (*Config)(nil)

// severities maps pin_log_severity's names to the lowest OTel severity
// number of each range.
var severities = map[string]plog.SeverityNumber{
	"TRACE": plog.SeverityNumberTrace,
	"DEBUG": plog.SeverityNumberDebug,
	"INFO":  plog.SeverityNumberInfo,
	"WARN":  plog.SeverityNumberWarn,
	"ERROR": plog.SeverityNumberError,
	"FATAL": plog.SeverityNumberFatal,
	"NONE":  plog.SeverityNumberUnspecified,
}

// pinSeverity is pin_log_severity as a number; Unspecified means no log
// record pins.
func (c *Config) pinSeverity() (plog.SeverityNumber, bool) {
	s, ok := severities[strings.ToUpper(c.PinLogSeverity)]
	return s, ok
}

// Validate checks the configuration; errors name the key and the allowed
// values.
func (c *Config) Validate() error {
	var errs []error
	if err := weftpinsextension.CheckKey(c.Pins); err != nil {
		errs = append(errs, err)
	}
	if math.IsNaN(c.SamplingPercentage) || c.SamplingPercentage < 0 || c.SamplingPercentage > 100 {
		errs = append(errs, fmt.Errorf("sampling_percentage: between 0 and 100, got %v", c.SamplingPercentage))
	} else if c.SamplingPercentage > 0 && c.SamplingPercentage < 1e-10 {
		errs = append(errs, fmt.Errorf("sampling_percentage: 0 or at least 1e-10 (the 56-bit randomness), got %v", c.SamplingPercentage))
	}
	if c.DecisionWait < 10*time.Millisecond || c.DecisionWait > 10*time.Minute {
		errs = append(errs, fmt.Errorf("decision_wait: between 10ms and 10m, got %s", c.DecisionWait))
	}
	if _, ok := c.pinSeverity(); !ok {
		errs = append(errs, fmt.Errorf("pin_log_severity: one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, NONE, got %q", c.PinLogSeverity))
	}
	for key, v := range map[string]int{
		"max_buffered_spans":       c.MaxBufferedSpans,
		"max_buffered_span_bytes":  c.MaxBufferedSpanBytes,
		"max_buffered_log_records": c.MaxBufferedLogRecords,
		"max_buffered_log_bytes":   c.MaxBufferedLogBytes,
	} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %d", key, v))
		}
	}
	return errors.Join(errs...)
}
