package rules

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// In-cluster service account files.
const (
	serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	serviceAccountCA    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// kubeSourcePrefix marks rule sources read from the Kubernetes API.
const kubeSourcePrefix = "kubernetes:"

// kubeLister lists PrometheusRule objects from the Kubernetes API.
type kubeLister struct {
	base       string // API server URL
	namespaces []string
	selector   string
	tokenFile  string
	client     *http.Client
}

func newKubeLister(c KubernetesConfig) (*kubeLister, error) {
	l := &kubeLister{base: strings.TrimSuffix(c.APIServer, "/"), namespaces: c.Namespaces, selector: c.LabelSelector, tokenFile: c.TokenFile}
	caFile := c.CAFile
	if l.base == "" { // in cluster
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("kubernetes.api_server: not set and not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)")
		}
		l.base = "https://" + net.JoinHostPort(host, port)
		if l.tokenFile == "" {
			l.tokenFile = serviceAccountToken
		}
		if caFile == "" {
			caFile = serviceAccountCA
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("kubernetes.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kubernetes.ca_file: no certificate in %s", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	l.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return l, nil
}

// list returns each PrometheusRule object as a rule source: its name
// ("kubernetes:<namespace>/<name>") and the object as JSON (which the
// manifest loader reads as YAML). Sorted by name.
func (l *kubeLister) list(ctx context.Context) ([]string, [][]byte, error) {
	paths := []string{"/apis/monitoring.coreos.com/v1/prometheusrules"}
	if len(l.namespaces) > 0 {
		paths = paths[:0]
		for _, ns := range l.namespaces {
			paths = append(paths, "/apis/monitoring.coreos.com/v1/namespaces/"+url.PathEscape(ns)+"/prometheusrules")
		}
	}
	type item struct {
		name string
		obj  []byte
	}
	var items []item
	for _, p := range paths {
		objs, err := l.get(ctx, p)
		if err != nil {
			return nil, nil, err
		}
		for _, raw := range objs {
			var meta struct {
				Metadata struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, fmt.Errorf("kubernetes: decode PrometheusRule: %w", err)
			}
			items = append(items, item{kubeSourcePrefix + meta.Metadata.Namespace + "/" + meta.Metadata.Name, raw})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })
	names := make([]string, len(items))
	objs := make([][]byte, len(items))
	for i, it := range items {
		names[i], objs[i] = it.name, it.obj
	}
	return names, objs, nil
}

func (l *kubeLister) get(ctx context.Context, path string) ([]json.RawMessage, error) {
	u := l.base + path
	if l.selector != "" {
		u += "?labelSelector=" + url.QueryEscape(l.selector)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if l.tokenFile != "" {
		tok, err := os.ReadFile(l.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("kubernetes.token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list PrometheusRules: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kubernetes: list PrometheusRules %s: HTTP %d", path, resp.StatusCode)
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("kubernetes: decode PrometheusRuleList: %w", err)
	}
	return list.Items, nil
}
