package weftrulesextension

import (
	"context"
	"errors"
	"sync"
	"time"

	promrules "github.com/prometheus/prometheus/rules"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/metric"

	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/internal/rulesapi"
	"github.com/weftobs/weft/rules"
)

// Extension is the weft_rules extension: it runs a rules engine over the
// weft_store named by its config. weft_query finds it among the host's
// extensions as a rulesapi.Source (and rulesapi.HealthSource).
type Extension struct {
	cfg      *Config
	set      extension.Settings
	lastGood *rules.LastGood

	mu          sync.Mutex
	engine      *rules.Engine
	telReg      metric.Registration
	reloadCount metric.Int64Counter
	stopped     bool
}

var (
	_ extensioncapabilities.Dependent = (*Extension)(nil)
	_ rulesapi.Source                 = (*Extension)(nil)
	_ rulesapi.HealthSource           = (*Extension)(nil)
)

func newExtension(set extension.Settings, cfg *Config, lastGood *rules.LastGood) *Extension {
	return &Extension{cfg: cfg, set: set, lastGood: lastGood}
}

// Dependencies makes the collector start the store first, and a weft_pins
// extension named in pins (any weft_pins works before its Start too).
func (e *Extension) Dependencies() []component.ID {
	deps := []component.ID{e.cfg.Store}
	if id, ok := weftpinsextension.KeyID(e.cfg.Pins); ok {
		deps = append(deps, id)
	}
	return deps
}

// Start finds the store and the weft_pins extension (pins), builds the engine, declares the self-metrics and
// starts the engine. An invalid rule set at start is reported (status,
// log, self-metric) and leaves no rules running; it does not stop the
// agent.
func (e *Extension) Start(_ context.Context, host component.Host) error {
	st, err := weftstoreextension.FromHost(host, e.cfg.Store)
	if err != nil {
		return err
	}
	pins, err := weftpinsextension.Find(host, e.cfg.Pins)
	if err != nil {
		return err
	}
	if err := e.registerTelemetry(); err != nil {
		return err
	}
	set := rules.Settings{
		Logger:   e.set.Logger,
		ID:       e.set.ID.String(),
		LastGood: e.lastGood,
		OnReload: e.countReload,
	}
	if pins != nil {
		set.Pin = func(id pcommon.TraceID, until time.Time) { pins.Pin(id, until, weftpinsextension.ReasonAlert) }
	}
	eng, err := rules.New(&e.cfg.Config, st, set)
	if err != nil {
		return errors.Join(err, e.unregister())
	}
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return errors.New("weft_rules: started after shutdown")
	}
	e.engine = eng
	e.mu.Unlock()
	return eng.Start()
}

// Shutdown stops the engine and waits for it; safe without Start and
// twice.
func (e *Extension) Shutdown(context.Context) error {
	e.mu.Lock()
	eng := e.engine
	e.stopped = true
	e.mu.Unlock()
	if eng != nil {
		eng.Stop()
	}
	return e.unregister()
}

func (e *Extension) unregister() error {
	e.mu.Lock()
	reg := e.telReg
	e.telReg = nil
	e.mu.Unlock()
	if reg != nil {
		return reg.Unregister()
	}
	return nil
}

// running is the engine once started (nil before).
func (e *Extension) running() *rules.Engine {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.engine
}

// Reload reads the rule sources again and swaps the new set in; an
// invalid set is rejected and the previous rules keep running.
func (e *Extension) Reload() error {
	eng := e.running()
	if eng == nil {
		return errors.New("weft_rules: not running")
	}
	return eng.Reload()
}

// Status returns the engine's rule set and last reload (zero before Start).
func (e *Extension) Status() rules.Status {
	if eng := e.running(); eng != nil {
		return eng.Status()
	}
	return rules.Status{}
}

// RuleGroups returns the running rule groups with their last evaluation.
func (e *Extension) RuleGroups() []rulesapi.Group {
	if eng := e.running(); eng != nil {
		return eng.RuleGroups()
	}
	return nil
}

// Alerts returns the pending and firing alerts with their evidence.
func (e *Extension) Alerts() []rulesapi.Alert {
	if eng := e.running(); eng != nil {
		return eng.Alerts()
	}
	return nil
}

// RulesHealth reports the rule sources' state for the status page.
func (e *Extension) RulesHealth() rulesapi.Health {
	if eng := e.running(); eng != nil {
		return eng.RulesHealth()
	}
	return rulesapi.Health{}
}

// Groups returns the running rule groups (nil before Start).
func (e *Extension) Groups() []*promrules.Group {
	if eng := e.running(); eng != nil {
		return eng.Groups()
	}
	return nil
}
