package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"go.uber.org/zap"
)

// alertmanagerConfigs turns the alertmanagers list into the notifier's
// configuration and its static targets (one set per entry, keyed as the
// notifier keys them).
func alertmanagerConfigs(cfg *Config) (*promconfig.Config, map[string][]*targetgroup.Group, error) {
	pc := &promconfig.Config{}
	pc.GlobalConfig.ExternalLabels = labels.FromMap(cfg.ExternalLabels)
	pc.GlobalConfig.MetricNameValidationScheme = model.UTF8Validation
	tgs := map[string][]*targetgroup.Group{}
	for i, am := range cfg.Alertmanagers {
		u, err := url.Parse(am.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("alertmanagers[%d].url: %w", i, err)
		}
		ac := promconfig.DefaultAlertmanagerConfig
		ac.Scheme = u.Scheme
		ac.PathPrefix = strings.TrimSuffix(u.Path, "/")
		if am.Timeout > 0 {
			ac.Timeout = model.Duration(am.Timeout)
		}
		hc := commoncfg.DefaultHTTPClientConfig
		if am.BasicAuth != nil {
			hc.BasicAuth = &commoncfg.BasicAuth{
				Username: am.BasicAuth.Username, Password: commoncfg.Secret(am.BasicAuth.Password), PasswordFile: am.BasicAuth.PasswordFile,
			}
		}
		if am.BearerToken != "" || am.BearerTokenFile != "" {
			hc.Authorization = &commoncfg.Authorization{
				Type: "Bearer", Credentials: commoncfg.Secret(am.BearerToken), CredentialsFile: am.BearerTokenFile,
			}
		}
		hc.TLSConfig = commoncfg.TLSConfig{
			CAFile: am.TLS.CAFile, CertFile: am.TLS.CertFile, KeyFile: am.TLS.KeyFile,
			ServerName: am.TLS.ServerName, InsecureSkipVerify: am.TLS.InsecureSkipVerify,
		}
		if err := hc.Validate(); err != nil {
			return nil, nil, fmt.Errorf("alertmanagers[%d]: %w", i, err)
		}
		ac.HTTPClientConfig = hc
		pc.AlertingConfig.AlertmanagerConfigs = append(pc.AlertingConfig.AlertmanagerConfigs, &ac)
		tgs[fmt.Sprintf("config-%d", i)] = []*targetgroup.Group{{
			Source:  fmt.Sprintf("weft_rules/alertmanagers[%d]", i),
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
		}}
	}
	return pc, tgs, nil
}

// webhookMessage is the Alertmanager webhook payload (version 4).
type webhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []webhookAlert    `json:"alerts"`
}

type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// webhookReceiver is the receiver name in webhook payloads.
const webhookReceiver = "weft_rules"

// buildWebhookMessage groups one notification's alerts (those of one rule)
// as Alertmanager would group by alertname. now decides firing/resolved.
func buildWebhookMessage(alerts []*notifier.Alert, externalLabels labels.Labels, externalURL string, now time.Time) webhookMessage {
	msg := webhookMessage{
		Version: "4", Status: "resolved", Receiver: webhookReceiver, ExternalURL: externalURL,
		GroupLabels: map[string]string{}, CommonLabels: map[string]string{}, CommonAnnotations: map[string]string{},
	}
	for i, a := range alerts {
		lb := labels.NewBuilder(a.Labels)
		externalLabels.Range(func(l labels.Label) {
			if a.Labels.Get(l.Name) == "" {
				lb.Set(l.Name, l.Value)
			}
		})
		ls := lb.Labels()
		wa := webhookAlert{
			Status: "firing", Labels: ls.Map(), Annotations: a.Annotations.Map(),
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL,
			Fingerprint: fmt.Sprintf("%016x", uint64(model.LabelSet(toLabelSet(ls)).Fingerprint())),
		}
		if a.ResolvedAt(now) {
			wa.Status = "resolved"
		} else {
			msg.Status = "firing"
		}
		if i == 0 {
			maps2(msg.CommonLabels, wa.Labels)
			maps2(msg.CommonAnnotations, wa.Annotations)
		} else {
			intersect(msg.CommonLabels, wa.Labels)
			intersect(msg.CommonAnnotations, wa.Annotations)
		}
		msg.Alerts = append(msg.Alerts, wa)
	}
	if n, ok := msg.CommonLabels[labels.AlertName]; ok {
		msg.GroupLabels[labels.AlertName] = n
	}
	msg.GroupKey = fmt.Sprintf("{}:{alertname=%q}", msg.GroupLabels[labels.AlertName])
	return msg
}

func toLabelSet(ls labels.Labels) model.LabelSet {
	out := make(model.LabelSet, ls.Len())
	ls.Range(func(l labels.Label) { out[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
	return out
}

func maps2(dst, src map[string]string) {
	for k, v := range src {
		dst[k] = v
	}
}

func intersect(dst, other map[string]string) {
	for k, v := range dst {
		if other[k] != v {
			delete(dst, k)
		}
	}
}

// webhookSender posts webhook messages to every configured URL from one
// goroutine, so a slow receiver never blocks rule evaluation. Messages that
// do not fit the queue are dropped and counted.
type webhookSender struct {
	urls    []string
	client  *http.Client
	logger  *zap.Logger
	queue   chan []byte
	wg      sync.WaitGroup
	dropped atomic.Int64
	failed  atomic.Int64
	sent    atomic.Int64
}

const webhookQueueLen = 256

func newWebhookSender(urls []string, logger *zap.Logger) *webhookSender {
	return &webhookSender{
		urls: urls, logger: logger, queue: make(chan []byte, webhookQueueLen),
		client: &http.Client{Timeout: 10 * time.Second},
	}
}

func (w *webhookSender) enqueue(msg webhookMessage) {
	b, err := json.Marshal(msg)
	if err != nil {
		w.logger.Error("Encode webhook message", zap.Error(err))
		return
	}
	select {
	case w.queue <- b:
	default:
		w.dropped.Add(1)
		w.logger.Warn("Webhook queue full, notification dropped", zap.Int("queue", webhookQueueLen))
	}
}

func (w *webhookSender) start(ctx context.Context) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-w.queue:
				for _, u := range w.urls {
					w.post(ctx, u, b)
				}
			}
		}
	}()
}

func (w *webhookSender) post(ctx context.Context, u string, body []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		w.failed.Add(1)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		w.failed.Add(1)
		w.logger.Warn("Webhook post failed", zap.String("url", u), zap.Error(err))
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		w.failed.Add(1)
		w.logger.Warn("Webhook post rejected", zap.String("url", u), zap.Int("status", resp.StatusCode))
		return
	}
	w.sent.Add(1)
}
