package podscrapereceiver

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/nodestatus"
	"github.com/weftobs/weft/internal/promappend"
)

// podScrapeReceiver runs the scrape jobs and the discoveries feeding them.
type podScrapeReceiver struct {
	set  receiver.Settings
	cfg  *Config
	next consumer.Metrics
	jobs []*job

	mu      sync.Mutex
	running map[*job]map[string]*target
	groups  map[*job]map[string]*targetgroup.Group
	clients map[*job]*http.Client
	stopped bool
	// firstScrapeNow scrapes new targets at once instead of at their
	// spread offset (tests).
	firstScrapeNow bool
	// dial replaces the scrape clients' dialer (tests map pod IPs to
	// loopback servers with it).
	dial dialFunc

	// apps are the appendables' Appendables (nil: none), found on the
	// host at Start; appNames their IDs.
	apps     []storage.Appendable
	appNames []string

	cancel     context.CancelFunc
	unregister func() // withdraws the targets from the status boards
	wg         sync.WaitGroup
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Metrics) (*podScrapeReceiver, error) {
	jobs, err := buildJobs(cfg)
	if err != nil {
		return nil, err
	}
	return &podScrapeReceiver{
		set:     set,
		cfg:     cfg,
		next:    next,
		jobs:    jobs,
		running: map[*job]map[string]*target{},
		groups:  map[*job]map[string]*targetgroup.Group{},
		clients: map[*job]*http.Client{},
	}, nil
}

// Start starts the static targets and the Kubernetes discoveries; it does
// not wait for any scrape.
func (r *podScrapeReceiver) Start(_ context.Context, host component.Host) error {
	if len(r.cfg.Appendables) > 0 {
		apps, err := promappend.AllFromHost(host, "appendables", r.cfg.Appendables)
		if err != nil {
			return err
		}
		names := make([]string, len(r.cfg.Appendables))
		for i, id := range r.cfg.Appendables {
			names[i] = id.String()
		}
		r.mu.Lock()
		r.apps, r.appNames = apps, names
		r.mu.Unlock()
	}
	subscribers := map[sdKey][]*job{}
	var order []sdKey
	for _, j := range r.jobs {
		for _, k := range j.sd {
			if _, ok := subscribers[k]; !ok {
				order = append(order, k)
			}
			subscribers[k] = append(subscribers[k], j)
		}
	}
	discoveries := make(map[sdKey]discoverer, len(order))
	for _, k := range order {
		d, err := r.newDiscovery(k)
		if err != nil {
			// Static targets and the other discoveries keep working; a
			// node agent outside a cluster (or without RBAC) says so loudly
			// rather than refusing to start.
			r.set.Logger.Error("Kubernetes pod discovery unavailable; its jobs scrape nothing",
				zap.String("api_server", k.api.APIServer), zap.String("kubeconfig_file", k.api.KubeConfigFile),
				zap.Strings("jobs", jobNames(subscribers[k])), zap.Error(err))
			continue
		}
		if r.cfg.NodeName == "" {
			// In a cluster, an empty node name (a DaemonSet without
			// NODE_NAME from the downward API) would make every agent
			// watch and scrape the pods of every node.
			return fmt.Errorf("node_name is empty, so pod discovery for jobs %s would watch the pods of every node of the cluster: "+
				"set node_name (the shipped profile reads ${env:NODE_NAME}, which the DaemonSet sets from spec.nodeName)",
				strings.Join(jobNames(subscribers[k]), ", "))
		}
		discoveries[k] = d
	}

	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	r.cancel = cancel
	r.unregister = nodestatus.PublishTargets(host, r.set.ID.String(), r.targetStatus)
	r.mu.Unlock()
	for _, j := range r.jobs {
		if len(j.static) > 0 {
			r.update(ctx, j, j.static)
		}
	}
	for _, k := range order {
		d, ok := discoveries[k]
		if !ok {
			continue
		}
		ch := make(chan []*targetgroup.Group)
		r.wg.Add(2)
		go func() {
			defer r.wg.Done()
			d.Run(ctx, ch)
		}()
		jobs := subscribers[k]
		go func() {
			defer r.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case tgs := <-ch:
					for _, j := range jobs {
						r.update(ctx, j, tgs)
					}
				}
			}
		}()
	}
	return nil
}

func jobNames(jobs []*job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.name
	}
	return out
}

// newDiscovery builds the Kubernetes pod discovery for k, limited to this
// node's pods by a spec.nodeName field selector.
func (r *podScrapeReceiver) newDiscovery(k sdKey) (discoverer, error) {
	field := k.field
	if r.cfg.NodeName != "" {
		if field != "" {
			field += ","
		}
		field += "spec.nodeName=" + r.cfg.NodeName
	}
	var namespaces []string
	if k.namespaces != "" {
		namespaces = strings.Split(k.namespaces, ",")
	}
	d, err := newPodDiscovery(k.api, namespaces, k.label, field, r.set.Logger.With(zap.String("discovery", "kubernetes")))
	if err != nil {
		return nil, err
	}
	return d, nil
}

// update merges changed target groups into the job's view and starts and
// stops targets to match.
func (r *podScrapeReceiver) update(ctx context.Context, j *job, tgs []*targetgroup.Group) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || ctx.Err() != nil {
		return
	}
	g := r.groups[j]
	if g == nil {
		g = map[string]*targetgroup.Group{}
		r.groups[j] = g
	}
	for _, tg := range tgs {
		if tg == nil {
			continue
		}
		if len(tg.Targets) == 0 {
			delete(g, tg.Source)
		} else {
			g[tg.Source] = tg
		}
	}
	all := make([]*targetgroup.Group, 0, len(g))
	for _, tg := range g {
		all = append(all, tg)
	}
	specs := j.targets(all, r.cfg.NodeName)
	run := r.running[j]
	if run == nil {
		run = map[string]*target{}
		r.running[j] = run
	}
	want := make(map[string]bool, len(specs))
	for _, s := range specs {
		key := s.key()
		want[key] = true
		if run[key] != nil {
			continue
		}
		t, err := r.startTarget(ctx, j, s)
		if err != nil {
			r.set.Logger.Error("Cannot start target", zap.String("job", j.name), zap.String("url", s.url), zap.Error(err))
			continue
		}
		run[key] = t
	}
	for key, t := range run {
		if !want[key] {
			t.removed.Store(true)
			t.cancel()
			delete(run, key)
		}
	}
}

func (r *podScrapeReceiver) startTarget(ctx context.Context, j *job, s *targetSpec) (*target, error) {
	client := r.clients[j]
	if client == nil {
		c, err := newHTTPClient(j.tls, r.dial)
		if err != nil {
			return nil, err
		}
		client = c
		r.clients[j] = c
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &target{
		job:      j,
		url:      s.url,
		resource: s.resource,
		app:      newAppender(s.labels, j.honorLabels, j.limits, j.metricRelabel),
		client:   client,
		next:     r.next,
		logger:   r.set.Logger,
		started:  time.Now(),
		failures: map[string]float64{},
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	if len(r.apps) > 0 {
		t.out = newNativeOut(r.appNames, r.apps)
		t.app.out = t.out
		t.nativeOnly = !r.cfg.PData
		t.app.pdata = r.cfg.PData
	}
	// Spread targets over the interval, stably per URL, as Prometheus does.
	h := fnv.New64a()
	_, _ = h.Write([]byte(s.key()))
	offset := time.Duration(h.Sum64() % uint64(j.interval))
	if r.firstScrapeNow {
		offset = 0
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t.run(tctx, offset)
	}()
	return t, nil
}

// Shutdown stops every target and discovery and waits for them; it is safe
// without Start and twice.
func (r *podScrapeReceiver) Shutdown(context.Context) error {
	r.mu.Lock()
	r.stopped = true
	cancel := r.cancel
	if r.unregister != nil {
		r.unregister()
		r.unregister = nil
	}
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	r.wait()
	r.mu.Lock()
	for _, c := range r.clients {
		c.CloseIdleConnections()
	}
	r.mu.Unlock()
	return nil
}

func (r *podScrapeReceiver) wait() { r.wg.Wait() }

// targetStatus lists the running targets by job and URL, for the status
// page.
func (r *podScrapeReceiver) targetStatus() []nodestatus.Target {
	r.mu.Lock()
	var out []nodestatus.Target
	for _, run := range r.running {
		for _, t := range run {
			out = append(out, t.status())
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b nodestatus.Target) int {
		return cmp.Or(strings.Compare(a.Job, b.Job), strings.Compare(a.URL, b.URL))
	})
	return out
}
