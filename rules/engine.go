package rules

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/strutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/backoff"
	"github.com/weftobs/weft/internal/kube"
)

// Engine is the rules engine: it loads rule files and PrometheusRule
// objects, evaluates them over a store with Prometheus's rule manager,
// attaches evidence to firing alerts and notifies Alertmanagers and
// webhooks. The weft_rules extension (extensions/weftrulesextension) is its front
// door: it finds the store, builds the engine with New, starts and stops
// it and declares its self-metrics.
type Engine struct {
	cfg    *Config
	logger *zap.Logger
	parser parser.Parser

	// id and lastGood (Settings) let an engine whose rule set is invalid
	// at its first load run the last set a previous engine with the same
	// ID applied; without lastGood it runs none.
	id       string
	lastGood *LastGood
	onReload func(result string)
	pin      PinFunc // nil: evidence is not pinned

	reloadMu sync.Mutex // one reload at a time
	loader   *snapshotLoader

	mu          sync.Mutex
	state       reloadState
	status      Status
	lastAttempt [32]byte // hash of the last set tried
	store       Store
	engine      *promql.Engine
	mgr         *promrules.Manager
	notifier    *notifier.Manager
	tsets       chan map[string][]*targetgroup.Group
	webhook     *webhookSender
	evidence    *evidenceFinder
	kube        *kubeWatcher
	kubeGood    map[string][]byte // last valid version of each Kubernetes object (guarded by reloadMu)
	// prevGroups are the groups of the previous engine with this ID
	// (collector reload), whose alert state the first set takes over;
	// only during Start's first load (guarded by reloadMu).
	prevGroups map[string]*promrules.Group
	// plan is the scope and split of the running set (guarded by mu).
	plan    *Plan
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	stopped bool
	// kubeBackoff, when set (tests), replaces the Kubernetes source's
	// backoff bounds.
	kubeBackoff backoff.Backoff
	// onSend, when set (tests), sees every notification after evidence.
	onSend func([]*notifier.Alert)
}

// Store is what the engine needs from weft_store: a TSDB to evaluate
// over and write recording rules and alert state to, and the evidence
// lookups.
type Store interface {
	TSDB
	evidenceSource
}

// TSDB is the store's Prometheus storage and its PromQL engine, the one
// engine of the process (weft_query's API runs on it too).
type TSDB interface {
	Queryable() storage.Queryable
	Appendable() storage.Appendable
	Engine() *promql.Engine
}

// Settings are the engine's collaborators, besides its Config and store.
type Settings struct {
	// Logger receives the engine's and the Prometheus libraries' logs
	// (nil: none).
	Logger *zap.Logger
	// ID names the engine in LastGood (the extension's component ID).
	ID string
	// LastGood, when set, keeps the last valid set and the groups of a
	// stopped engine for the next engine with the same ID.
	LastGood *LastGood
	// OnReload, when set, is called after every reload attempt with its
	// result: "success", "partial" (applied without invalid Kubernetes
	// objects) or "failure" (the previous set kept running).
	OnReload func(result string)
	// Pin, when set, pins each trace an alert cites as evidence until the
	// given time (weft_pins: kept past eviction and export sampling on
	// every node); see pinEvidence.
	Pin PinFunc
}

// PinFunc pins a trace until a time; a pin only grows.
type PinFunc func(traceID pcommon.TraceID, until time.Time)

// Status describes the loaded rule set and the last reload.
type Status struct {
	// State is the reload state (see reloadState): none, failed,
	// applied, partial, rejected or inherited.
	State             string
	Files             []string  // rule files of the running set
	Groups            int       // groups of the running set
	Rules             int       // rules of the running set, node and cluster (partials not counted)
	LastReload        time.Time // time of the last reload attempt
	LastReloadSuccess bool      // whether the last attempt was applied
	LastError         string    // error of the last failed attempt, with file and line
	// Inherited is true while the running set is the last valid set of a
	// previous engine (before a collector reload), because this engine's
	// own set was invalid.
	Inherited bool
	// Rejected lists the Kubernetes objects of the running set that are
	// invalid, each with its error: they run in their last valid version
	// or not at all, the other sources run (LastReloadSuccess is false).
	Rejected []string
	// KubernetesError is the last list/watch error of the Kubernetes
	// source ("" while it is healthy); the known objects stay meanwhile.
	KubernetesError string
	// KubernetesLists, KubernetesWatches and KubernetesGone count the
	// source's list and watch requests and its "410 Gone" relists.
	KubernetesLists, KubernetesWatches, KubernetesGone int64
	Reloads                                            int64 // applied reloads
	ReloadFailures                                     int64 // rejected reloads (the previous set kept running)
}

// Stats are the engine's counters for self-metrics.
type Stats struct {
	// WebhookSent, WebhookFailed and WebhookDropped count webhook posts
	// by result (dropped: queue full).
	WebhookSent, WebhookFailed, WebhookDropped int64
	// EvidenceTimeouts counts notifications sent before their evidence
	// lookup finished.
	EvidenceTimeouts int64
	// Kubernetes is true when the PrometheusRule source is on; then
	// KubernetesRequests counts its requests.
	Kubernetes         bool
	KubernetesRequests kube.Stats
}

// New builds an engine over st from cfg (checked with cfg.Check): the
// rule manager on the store's PromQL engine, the notifier, the webhook sender, the
// evidence finder and, when enabled, the PrometheusRule source. Nothing
// runs until Start.
func New(cfg *Config, st Store, set Settings) (*Engine, error) {
	e := newEngine(cfg, set)
	if err := e.setup(st); err != nil {
		return nil, err
	}
	return e, nil
}

func newEngine(cfg *Config, set Settings) *Engine {
	p := parser.NewParser(parser.Options{})
	e := &Engine{cfg: cfg, logger: set.Logger, parser: p, id: set.ID, lastGood: set.LastGood, onReload: set.OnReload, pin: set.Pin}
	if e.logger == nil {
		e.logger = zap.NewNop()
	}
	e.loader = &snapshotLoader{parser: p}
	return e
}

// Start loads the rules and starts evaluation and notification in the
// background; Stop ends them. An invalid rule set at start is reported
// (status, log, OnReload) and leaves no rules running (or the inherited
// set, see Settings.LastGood); it is not an error. Start returns an error
// only when the engine was stopped.
func (e *Engine) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	if e.started || e.stopped {
		e.mu.Unlock()
		cancel()
		return errors.New("weft_rules: engine already started")
	}
	e.cancel = cancel
	e.started = true
	e.mu.Unlock()

	if e.kube != nil {
		// The first list (or its failure) before the first load, so the
		// first set has the objects; watching goes on in the background.
		e.kube.run(ctx, &e.wg)
		wctx, wcancel := context.WithTimeout(ctx, kubeFirstListWait)
		e.kube.waitFirst(wctx)
		wcancel()
	}
	if e.lastGood != nil {
		e.reloadMu.Lock()
		e.prevGroups = e.lastGood.takeGroups(e.id)
		e.reloadMu.Unlock()
	}
	for _, g := range emptyGlobs(e.cfg.RuleFiles) {
		e.logger.Warn("rule_files glob matches no file; it adds no rules until files appear", zap.String("glob", g))
	}
	if err := e.Reload(); err != nil && !e.Status().Inherited {
		e.logger.Error("Rule files not loaded; no rules run until a valid set is found", zap.Error(err))
	}
	e.reloadMu.Lock()
	e.prevGroups = nil // the groups run from here on: no state copies
	e.reloadMu.Unlock()
	if e.kube != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.kubeLoop(ctx)
		}()
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.mgr.Run()
	}()
	if e.notifier != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.notifier.Run(e.tsets)
		}()
	}
	if e.webhook != nil {
		e.webhook.start(ctx)
	}
	if e.cfg.ReloadInterval > 0 {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.reloadLoop(ctx)
		}()
	}
	return nil
}

// setup builds the engine, rule manager, notifier, webhook sender and
// evidence finder over a store (New; tests call it after newEngine).
func (e *Engine) setup(st Store) error {
	slogger := slogFor(e.logger)
	reg := prometheus.NewRegistry() // the libraries' own metrics stay private
	// The store's engine (weft_store query:), shared with weft_query; each
	// evaluation runs under its group's context.
	engine := st.Engine()
	if engine == nil {
		return errors.New("store has no PromQL engine (not started)")
	}
	ev, err := newEvidenceFinder(st, e.parser, e.cfg.Evidence)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.store, e.engine, e.evidence = st, engine, ev
	if len(e.cfg.Alertmanagers) > 0 {
		pc, tgs, err := alertmanagerConfigs(e.cfg)
		if err != nil {
			return err
		}
		n := notifier.NewManager(&notifier.Options{QueueCapacity: 10000, DrainOnShutdown: true, Registerer: reg},
			model.UTF8Validation, slogger.With("component", "notifier"))
		if err := n.ApplyConfig(pc); err != nil {
			return fmt.Errorf("alertmanagers: %w", err)
		}
		e.notifier = n
		e.tsets = make(chan map[string][]*targetgroup.Group, 1)
		e.tsets <- tgs
	}
	if len(e.cfg.Webhooks) > 0 {
		e.webhook = newWebhookSender(e.cfg.Webhooks, e.logger)
	}
	if e.cfg.Kubernetes.Enabled {
		kw, err := newKubeWatcher(e.cfg.Kubernetes, e.kubeBackoff, e.logger)
		if err != nil {
			return err
		}
		e.kube = kw
		e.kubeGood = map[string][]byte{}
	}
	e.mgr = promrules.NewManager(&promrules.ManagerOptions{
		NameValidationScheme: model.UTF8Validation,
		QueryFunc:            promrules.EngineQueryFunc(engine, st.Queryable()),
		NotifyFunc:           e.notify,
		Context:              context.Background(),
		Appendable:           st.Appendable(),
		Queryable:            st.Queryable(),
		Logger:               slogger,
		Registerer:           reg,
		OutageTolerance:      e.cfg.OutageTolerance,
		ForGracePeriod:       e.cfg.ForGracePeriod,
		ResendDelay:          e.cfg.ResendDelay,
		GroupLoader:          e.loader,
		Parser:               e.parser,
	})
	return nil
}

// Stop stops evaluation and notification and waits for them; safe
// without Start and twice.
func (e *Engine) Stop() {
	e.mu.Lock()
	if !e.started || e.stopped {
		e.stopped = true
		e.mu.Unlock()
		return
	}
	e.stopped = true
	cancel, mgr, n := e.cancel, e.mgr, e.notifier
	e.mu.Unlock()

	cancel()
	e.reloadMu.Lock() // no reload in flight from here on
	mgr.Stop()
	if e.lastGood != nil {
		// For the next engine with this ID (collector reload).
		e.lastGood.putGroups(e.id, mgr.RuleGroups())
	}
	e.reloadMu.Unlock()
	if n != nil {
		n.Stop()
	}
	e.wg.Wait()
	if e.webhook != nil {
		e.webhook.wg.Wait()
	}
	e.evidence.wait()
}

// kubeLoop reloads when the watched PrometheusRule objects change.
func (e *Engine) kubeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kube.changed:
			if err := e.reload(false); err != nil {
				e.logger.Warn("Rule reload after a PrometheusRule change", zap.Error(err))
			}
		}
	}
}

func (e *Engine) reloadLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.reload(false); err != nil {
				e.logger.Warn("Rule reload rejected, previous rules keep running", zap.Error(err))
			}
		}
	}
}

// Reload reads the rule files again and swaps the new set in atomically.
// An invalid set is rejected: the previous rules keep running and the
// error, naming file and line, is returned and kept in Status.
func (e *Engine) Reload() error { return e.reload(true) }

func (e *Engine) reload(force bool) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	e.mu.Lock()
	mgr, stopped := e.mgr, e.stopped
	e.mu.Unlock()
	if mgr == nil || stopped {
		return errors.New("weft_rules: not running")
	}
	files, contents, sum, readErr := readSources(e.cfg.RuleFiles)
	var kubeNames []string
	var kubeObjs [][]byte
	var kubeDown error
	if e.kube != nil {
		names, objs, err := e.kube.snapshot()
		e.mu.Lock()
		applied := e.state.applied()
		e.mu.Unlock()
		switch {
		case err != nil && applied:
			// The objects have never been listed (this can only be before
			// this instance's first set): keep the running set.
			e.record(files, err, nil)
			return err
		case err != nil && e.inherit(mgr):
			// At the first load, the previous instance's set.
			e.recordInherited(err)
			return err
		case err != nil:
			// Nothing runs yet: the files run without the objects until
			// they are listed (the watcher's first list reloads).
			kubeDown = err
		}
		h := sha256.New()
		h.Write(sum[:])
		fmt.Fprintf(h, "listed=%t\x00", err == nil)
		for i, n := range names {
			fmt.Fprintf(h, "%s\x00%d\x00", n, len(objs[i]))
			h.Write(objs[i])
		}
		copy(sum[:], h.Sum(nil))
		kubeNames, kubeObjs = names, objs
	}
	e.mu.Lock()
	unchanged := e.state.applied() && sum == e.lastAttempt
	e.lastAttempt = sum
	e.mu.Unlock()
	if unchanged && !force {
		return nil
	}
	set, err := e.parseSet(files, contents)
	if err == nil {
		err = readErr
	}
	var rejected []error
	if err == nil && e.kube != nil {
		var kf []string
		var kc [][]byte
		kf, kc, rejected = e.parseKube(set, kubeNames, kubeObjs)
		files = append(files, kf...)
		contents = append(contents, kc...)
	}
	if kubeDown != nil {
		rejected = append(rejected, kubeDown)
	}
	if err == nil {
		err = e.apply(mgr, files, set)
	}
	if err == nil && e.lastGood != nil {
		e.lastGood.put(e.id, files, contents)
	}
	if err != nil && e.inherit(mgr) {
		e.recordInherited(err)
		return err
	}
	e.record(files, err, rejected)
	return errors.Join(append([]error{err}, rejected...)...)
}

// parseKube adds the Kubernetes objects to set, one by one: an invalid
// object is reported (its name and the error) and does not hold the others
// back; its last valid version, if it had one, keeps running. It returns
// the sources that went into the set and the rejections.
func (e *Engine) parseKube(set map[string]*rulefmt.RuleGroups, names []string, objs [][]byte) ([]string, [][]byte, []error) {
	var files []string
	var contents [][]byte
	var rejected []error
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		seen[n] = true
		rgs, errs := loadRuleFileNames(n, objs[i], e.parser, e.cfg.nameScheme(), slogFor(e.logger))
		if len(errs) == 0 {
			set[n] = rgs
			e.kubeGood[n] = objs[i]
			files, contents = append(files, n), append(contents, objs[i])
			continue
		}
		good, ok := e.kubeGood[n]
		if ok {
			rgs, gerrs := loadRuleFileNames(n, good, e.parser, e.cfg.nameScheme(), slogFor(e.logger))
			ok = len(gerrs) == 0
			if ok {
				set[n] = rgs
				files, contents = append(files, n), append(contents, good)
			}
		}
		keep := "not loaded"
		if ok {
			keep = "its last valid version keeps running"
		}
		rejected = append(rejected, fmt.Errorf("%s rejected (%s): %w", n, keep, errors.Join(errs...)))
	}
	for n := range e.kubeGood {
		if !seen[n] {
			delete(e.kubeGood, n) // deleted objects do not come back
		}
	}
	return files, contents, rejected
}

// apply hands a validated set to the rule manager. reloadMu is held.
func (e *Engine) apply(mgr *promrules.Manager, files []string, set map[string]*rulefmt.RuleGroups) error {
	// Node rules run as they are, cluster rules only as their partials
	// (split.go); the plan tells the rules API each rule's scope.
	plan, err := PlanRules(files, set, e.cfg.Scope.options(), e.parser)
	if err != nil {
		return err
	}
	e.loader.set(plan.NodeGroups(e.cfg.Scope.ClusterRules == clusterRulesNode))
	ext := labels.FromMap(e.cfg.ExternalLabels)
	prev := e.prevGroups
	if len(prev) > 0 {
		// The first set after a collector reload: an empty update first
		// marks the manager restored, so the groups do not restore their
		// alerts from ALERTS_FOR_STATE (and for_grace_period) as after a
		// restart; they take the previous groups' state below instead.
		if err := mgr.Update(e.cfg.EvaluationInterval, nil, ext, e.cfg.ExternalURL, nil); err != nil {
			return err
		}
	}
	if err := mgr.Update(e.cfg.EvaluationInterval, files, ext, e.cfg.ExternalURL, nil); err != nil {
		return err
	}
	if len(prev) > 0 {
		// Before the manager runs (Start), so no group evaluates yet.
		for _, g := range mgr.RuleGroups() {
			if old, ok := prev[promrules.GroupKey(g.File(), g.Name())]; ok {
				g.CopyState(old)
			}
		}
		e.prevGroups = nil
	}
	e.mu.Lock()
	e.plan = plan
	e.mu.Unlock()
	return nil
}

// inherit applies the last good set of a previous instance with the same
// ID, when this instance has applied no set of its own yet. It reports
// whether it did.
func (e *Engine) inherit(mgr *promrules.Manager) bool {
	e.mu.Lock()
	applied := e.state.applied()
	e.mu.Unlock()
	if applied || e.lastGood == nil {
		return false
	}
	prev, ok := e.lastGood.get(e.id)
	if !ok {
		return false
	}
	set, err := e.parseSet(prev.files, prev.contents)
	if err == nil {
		err = e.apply(mgr, prev.files, set)
	}
	if err != nil {
		// Cannot happen for a set that was applied before with the same
		// parser; keep the error visible all the same.
		e.logger.Error("Previous rule set could not be restored", zap.Error(err))
		return false
	}
	e.mu.Lock()
	e.status.Files = prev.files
	e.state = transition(e.state, eventInherited)
	e.mu.Unlock()
	return true
}

// parseSet validates every file; all errors are reported together.
func (e *Engine) parseSet(files []string, contents [][]byte) (map[string]*rulefmt.RuleGroups, error) {
	set := make(map[string]*rulefmt.RuleGroups, len(files))
	var errs []error
	for i, f := range files {
		rgs, ferrs := loadRuleFileNames(f, contents[i], e.parser, e.cfg.nameScheme(), slogFor(e.logger))
		errs = append(errs, ferrs...)
		set[f] = rgs
	}
	return set, errors.Join(errs...)
}

// recordInherited records a failed reload after which the inherited set
// runs: a failure (status, self-metric), with the running set's size.
func (e *Engine) recordInherited(err error) {
	// inherit moved the state to inherited: the unchanged invalid set is
	// not retried every poll.
	e.logger.Error("Rule set invalid; running the last valid set of the previous configuration", zap.Error(err))
	e.record(nil, err, nil)
	e.mu.Lock()
	e.status.Groups, e.status.Rules = e.plan.size()
	e.mu.Unlock()
}

// record updates the status and self-metrics after a reload: err rejected
// the whole set; rejected are Kubernetes objects left out of (or running
// in their last valid version in) an applied set.
func (e *Engine) record(files []string, err error, rejected []error) {
	e.mu.Lock()
	e.status.LastReload = time.Now()
	result := "success"
	if err != nil {
		e.state = transition(e.state, eventRejected)
		e.status.LastError = err.Error()
		e.status.ReloadFailures++
		result = "failure"
	} else {
		ev := eventApplied
		e.status.LastError = ""
		e.status.Rejected = e.status.Rejected[:0]
		for _, r := range rejected {
			e.status.Rejected = append(e.status.Rejected, r.Error())
		}
		if len(rejected) > 0 {
			e.status.LastError = errors.Join(rejected...).Error()
			result = "partial"
			ev = eventPartial
		}
		e.state = transition(e.state, ev)
		e.status.Reloads++
		e.status.Files = files
		e.status.Groups, e.status.Rules = e.plan.size()
	}
	e.mu.Unlock()
	if e.onReload != nil {
		e.onReload(result)
	}
}

// Status returns the state of the rule set and of the last reload.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.status
	s.State = e.state.String()
	s.LastReloadSuccess = e.state == stateApplied
	s.Inherited = e.state == stateInherited
	s.Files = append([]string(nil), s.Files...)
	s.Rejected = append([]string(nil), s.Rejected...)
	if e.kube != nil {
		var st kube.Stats
		s.KubernetesError, st = e.kube.health()
		s.KubernetesLists, s.KubernetesWatches, s.KubernetesGone = st.Lists, st.Watches, st.Gone
	}
	return s
}

// Groups returns the running rule groups (for the rules/alerts API).
func (e *Engine) Groups() []*promrules.Group {
	e.mu.Lock()
	mgr := e.mgr
	e.mu.Unlock()
	if mgr == nil {
		return nil
	}
	return mgr.RuleGroups()
}

// readSources expands rule_files and reads every file; the hash covers
// names and contents, so any change (including a ConfigMap swap) shows.
func readSources(patterns []string) ([]string, [][]byte, [32]byte, error) {
	files, err := expandSources(patterns)
	errs := []error{err}
	h := sha256.New()
	contents := make([][]byte, len(files))
	for i, f := range files {
		b, rerr := os.ReadFile(f)
		if rerr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, rerr))
		}
		contents[i] = b
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return files, contents, sum, errors.Join(errs...)
}

// notify is the rule manager's NotifyFunc: it attaches evidence (within
// the evidence budget) and hands the alerts to the Alertmanagers and
// webhooks.
func (e *Engine) notify(ctx context.Context, expr string, alerts ...*promrules.Alert) {
	if len(alerts) == 0 {
		return
	}
	refs := make([]alertRef, len(alerts))
	for i, a := range alerts {
		refs[i] = alertRef{labels: a.Labels, activeAt: a.ActiveAt, at: a.LastSentAt, resolved: !a.ResolvedAt.IsZero()}
	}
	evs := e.evidence.find(ctx, expr, refs)
	e.pinEvidence(alerts, evs)
	out := make([]*notifier.Alert, 0, len(alerts))
	for i, a := range alerts {
		ann := a.Annotations
		if evs[i] != nil {
			b := labels.NewBuilder(ann)
			evs[i].annotate(b)
			ann = b.Labels()
		}
		na := &notifier.Alert{
			StartsAt: a.FiredAt, Labels: a.Labels, Annotations: ann,
			GeneratorURL: e.cfg.ExternalURL + strutil.TableLinkForExpression(expr),
		}
		if !a.ResolvedAt.IsZero() {
			na.EndsAt = a.ResolvedAt
		} else {
			na.EndsAt = a.ValidUntil
		}
		out = append(out, na)
	}
	if e.onSend != nil {
		e.onSend(out)
	}
	if e.notifier != nil {
		e.notifier.Send(out...)
	}
	if e.webhook != nil {
		e.webhook.enqueue(buildWebhookMessage(out, labels.FromMap(e.cfg.ExternalLabels), e.cfg.ExternalURL, alerts[0].LastSentAt))
	}
}

// pinGrace is how long an alert's evidence stays pinned after the alert
// ends.
const pinGrace = 30 * time.Minute

// pinEvidence pins the traces each alert cites: a resolved alert's until
// its end + pinGrace; an active alert's until the notification's
// evaluation time + pinGrace + the evaluation interval, moved on at every
// (re-)send, so the pin outlives the alert by pinGrace whenever it ends.
// Pins only grow: the resends of a resolved alert change nothing.
func (e *Engine) pinEvidence(alerts []*promrules.Alert, evs []*evidence) {
	if e.pin == nil {
		return
	}
	for i, a := range alerts {
		if evs[i] == nil {
			continue
		}
		var until time.Time
		if !a.ResolvedAt.IsZero() {
			until = a.ResolvedAt.Add(pinGrace)
		} else {
			at := a.LastSentAt
			if at.IsZero() {
				at = time.Now()
			}
			until = at.Add(pinGrace + e.cfg.EvaluationInterval)
		}
		for _, id := range evs[i].traceIDs {
			e.pin(id, until)
		}
	}
}

// Stats returns the engine's counters (for self-metrics).
func (e *Engine) Stats() Stats {
	var st Stats
	if w := e.webhook; w != nil {
		st.WebhookSent, st.WebhookFailed, st.WebhookDropped = w.sent.Load(), w.failed.Load(), w.dropped.Load()
	}
	e.evidence.mu.Lock()
	st.EvidenceTimeouts = e.evidence.timeouts
	e.evidence.mu.Unlock()
	if e.kube != nil {
		st.Kubernetes = true
		_, st.KubernetesRequests = e.kube.health()
	}
	return st
}

// snapshotLoader hands the rule manager the groups validated by the
// reload, so the files are read once per reload and what runs is exactly
// what was validated.
type snapshotLoader struct {
	parser parser.Parser
	mu     sync.Mutex
	groups map[string]*rulefmt.RuleGroups
}

func (l *snapshotLoader) set(g map[string]*rulefmt.RuleGroups) {
	l.mu.Lock()
	l.groups = g
	l.mu.Unlock()
}

func (l *snapshotLoader) Load(identifier string, _ bool, _ model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g, ok := l.groups[identifier]
	if !ok || g == nil {
		return nil, []error{fmt.Errorf("%s: not in the validated rule set", identifier)}
	}
	return g, nil
}

func (l *snapshotLoader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }
