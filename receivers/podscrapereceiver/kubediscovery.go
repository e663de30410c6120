package podscrapereceiver

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/kube"
)

// discoverer produces target groups until ctx is done, as Prometheus's
// discovery.Discoverer does: a group with a known Source replaces the
// previous one, an empty group removes it.
type discoverer interface {
	Run(ctx context.Context, ch chan<- []*targetgroup.Group)
}

// podDiscovery is Prometheus's Kubernetes pod role (without
// attach_metadata: no node, namespace, deployment or job labels) over
// internal/kube's reflector: the same target groups and
// __meta_kubernetes_* labels, without client-go.
type podDiscovery struct {
	client     *kube.Client
	reflectors []*kube.Reflector[kube.Pod]
	// ctx and ch are Run's; the reflectors' handler sends to ch until ctx
	// is done. Set before the reflectors start.
	ctx context.Context
	ch  chan<- []*targetgroup.Group
}

// newPodDiscovery builds one pod reflector per namespace (one for all when
// namespaces is empty), as Prometheus runs one informer per namespace, all
// over one client of api.
func newPodDiscovery(api kube.APIConfig, namespaces []string, labelSelector, fieldSelector string, logger *zap.Logger) (*podDiscovery, error) {
	c, err := kube.NewClient(api, "weft-pod-scrape")
	if err != nil {
		return nil, err
	}
	d := &podDiscovery{client: c}
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		d.reflectors = append(d.reflectors, kube.NewReflector(c, kube.ListWatch[kube.Pod]{
			Path:          kube.CollectionPath("", "v1", ns, "pods"),
			LabelSelector: labelSelector,
			FieldSelector: fieldSelector,
			Meta:          (*kube.Pod).Meta,
		}, logger, d.handle))
	}
	return d, nil
}

// Run watches until ctx is done and sends the groups to ch; call it once.
func (d *podDiscovery) Run(ctx context.Context, ch chan<- []*targetgroup.Group) {
	d.ctx, d.ch = ctx, ch
	var wg sync.WaitGroup
	for _, r := range d.reflectors {
		wg.Go(func() { r.Run(ctx) })
	}
	wg.Wait()
	d.client.Close()
}

// handle turns a batch of pod events into target groups, in one send.
func (d *podDiscovery) handle(events []kube.Event[kube.Pod]) {
	if len(events) == 0 {
		return
	}
	tgs := make([]*targetgroup.Group, 0, len(events))
	for _, e := range events {
		if e.Type == kube.Deleted {
			tgs = append(tgs, &targetgroup.Group{Source: podSource(e.Object)})
			continue
		}
		tgs = append(tgs, podGroup(e.Object))
	}
	select {
	case d.ch <- tgs:
	case <-d.ctx.Done():
	}
}

const (
	metaPrefix = model.MetaLabelPrefix + "kubernetes_"
	present    = model.LabelValue("true")
)

func podSource(p *kube.Pod) string {
	return "pod/" + p.Metadata.Namespace + "/" + p.Metadata.Name
}

// podGroup builds the target group Prometheus's pod role builds for p: one
// target per container port, one per container without ports (address the
// pod IP), init containers after the others; no targets without a pod IP.
func podGroup(p *kube.Pod) *targetgroup.Group {
	tg := &targetgroup.Group{Source: podSource(p)}
	ip := p.Status.PodIP
	if ip == "" {
		return tg
	}
	ls := model.LabelSet{
		metaPrefix + "namespace":     model.LabelValue(p.Metadata.Namespace),
		metaPrefix + "pod_name":      model.LabelValue(p.Metadata.Name),
		metaPrefix + "pod_ip":        model.LabelValue(ip),
		metaPrefix + "pod_ready":     podReady(p),
		metaPrefix + "pod_phase":     model.LabelValue(p.Status.Phase),
		metaPrefix + "pod_node_name": model.LabelValue(p.Spec.NodeName),
		metaPrefix + "pod_host_ip":   model.LabelValue(p.Status.HostIP),
		metaPrefix + "pod_uid":       model.LabelValue(p.Metadata.UID),
	}
	for k, v := range p.Metadata.Labels {
		n := sanitizeLabelName(k)
		ls[model.LabelName(metaPrefix+"pod_label_"+n)] = model.LabelValue(v)
		ls[model.LabelName(metaPrefix+"pod_labelpresent_"+n)] = present
	}
	for k, v := range p.Metadata.Annotations {
		n := sanitizeLabelName(k)
		ls[model.LabelName(metaPrefix+"pod_annotation_"+n)] = model.LabelValue(v)
		ls[model.LabelName(metaPrefix+"pod_annotationpresent_"+n)] = present
	}
	if c := p.Metadata.Controller(); c != nil {
		if c.Kind != "" {
			ls[metaPrefix+"pod_controller_kind"] = model.LabelValue(c.Kind)
		}
		if c.Name != "" {
			ls[metaPrefix+"pod_controller_name"] = model.LabelValue(c.Name)
		}
	}
	tg.Labels = ls
	add := func(cs []kube.Container, statuses []kube.ContainerStatus, init string) {
		for i := range cs {
			c := &cs[i]
			id := containerID(statuses, c.Name)
			if len(c.Ports) == 0 {
				tg.Targets = append(tg.Targets, model.LabelSet{
					model.AddressLabel:                 model.LabelValue(ip),
					metaPrefix + "pod_container_name":  model.LabelValue(c.Name),
					metaPrefix + "pod_container_id":    model.LabelValue(id),
					metaPrefix + "pod_container_image": model.LabelValue(c.Image),
					metaPrefix + "pod_container_init":  model.LabelValue(init),
				})
				continue
			}
			for _, port := range c.Ports {
				num := strconv.FormatUint(uint64(port.ContainerPort), 10)
				tg.Targets = append(tg.Targets, model.LabelSet{
					model.AddressLabel:                         model.LabelValue(net.JoinHostPort(ip, num)),
					metaPrefix + "pod_container_name":          model.LabelValue(c.Name),
					metaPrefix + "pod_container_id":            model.LabelValue(id),
					metaPrefix + "pod_container_image":         model.LabelValue(c.Image),
					metaPrefix + "pod_container_port_number":   model.LabelValue(num),
					metaPrefix + "pod_container_port_name":     model.LabelValue(port.Name),
					metaPrefix + "pod_container_port_protocol": model.LabelValue(port.Protocol),
					metaPrefix + "pod_container_init":          model.LabelValue(init),
				})
			}
		}
	}
	add(p.Spec.Containers, p.Status.ContainerStatuses, "false")
	add(p.Spec.InitContainers, p.Status.InitContainerStatuses, "true")
	return tg
}

func containerID(statuses []kube.ContainerStatus, name string) string {
	for i := range statuses {
		if statuses[i].Name == name {
			return statuses[i].ContainerID
		}
	}
	return ""
}

// podReady is the Ready condition's status in lower case, "unknown" when
// the pod has none.
func podReady(p *kube.Pod) model.LabelValue {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return model.LabelValue(strings.ToLower(c.Status))
		}
	}
	return "unknown"
}

// sanitizeLabelName replaces every character that is not [a-zA-Z0-9_]
// with an underscore, one per character (as Prometheus's
// strutil.SanitizeLabelName does with its regexp).
func sanitizeLabelName(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !labelByte(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if labelByte(c) {
			b.WriteByte(c)
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		b.WriteByte('_')
		i += size
	}
	return b.String()
}

func labelByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
