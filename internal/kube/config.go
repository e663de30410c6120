package kube

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultServiceAccountDir is where Kubernetes mounts a pod's service
// account token and the cluster CA.
const DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// APIConfig says how to reach the Kubernetes API server. Every component
// takes these keys (pod_scrape's kubernetes_api, weft_rules' kubernetes,
// weft_query's auth.kubernetes). All empty is the in-cluster service
// account (KUBERNETES_SERVICE_HOST and _PORT, the account's token, re-read
// for every request so that a rotated token is used without a restart, and
// its CA).
type APIConfig struct {
	// APIServer is the API server URL (http or https). Without token_file
	// it connects without credentials (e.g. kubectl proxy); without
	// ca_file it verifies https with the system's roots.
	APIServer string `mapstructure:"api_server"`
	// KubeConfigFile is a kubeconfig file whose current context (server,
	// CA, token, token file, client certificate or basic auth; exec and
	// auth-provider plugins are not supported) is used instead of the
	// in-cluster service account.
	KubeConfigFile string `mapstructure:"kubeconfig_file"`
	// TokenFile holds a bearer token, read again for every request: for
	// api_server, or in cluster instead of the service account's token.
	TokenFile string `mapstructure:"token_file"`
	// CAFile is a PEM bundle that verifies the API server: for api_server
	// (instead of the system's roots), or in cluster instead of the service
	// account's ca.crt.
	CAFile string `mapstructure:"ca_file"`
}

// Validate checks the keys. prefix is the path of the block that holds
// them, with a trailing dot ("kubernetes_api."), so that every error names
// the full key. It is not the collector's Validator (whose Validate takes
// no argument): the enclosing config calls it, when the block is in use.
func (c *APIConfig) Validate(prefix string) error {
	var errs []error
	if c.APIServer != "" {
		if u, err := url.Parse(c.APIServer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%sapi_server: must be an http(s)://host[:port] URL or empty (in cluster), got %q", prefix, c.APIServer))
		}
		if c.KubeConfigFile != "" {
			errs = append(errs, fmt.Errorf("%sapi_server and %skubeconfig_file: set one, not both", prefix, prefix))
		}
	}
	if c.KubeConfigFile != "" {
		if c.TokenFile != "" {
			errs = append(errs, fmt.Errorf("%stoken_file: not used with %skubeconfig_file (the kubeconfig names its own credentials)", prefix, prefix))
		}
		if c.CAFile != "" {
			errs = append(errs, fmt.Errorf("%sca_file: not used with %skubeconfig_file (the kubeconfig names its own CA)", prefix, prefix))
		}
	}
	return errors.Join(errs...)
}

// conn is a resolved connection to the API server.
type conn struct {
	base   *url.URL
	client *http.Client
	// token returns the bearer token for the next request ("" for none).
	// A token file is read again for every request, so a rotated
	// service-account token is picked up without a restart.
	token func() (string, error)
	// user and password are a kubeconfig's basic auth, used when there
	// is no token.
	user, password string
}

// connect resolves cfg into a connection: an explicit URL, a kubeconfig or
// the in-cluster service account, in that order.
func connect(cfg APIConfig) (*conn, error) {
	switch {
	case cfg.APIServer != "":
		return explicit(cfg)
	case cfg.KubeConfigFile != "":
		return fromKubeConfig(cfg.KubeConfigFile)
	default:
		return inCluster(cfg)
	}
}

func noToken() (string, error) { return "", nil }

func newHTTPClient(tc *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: tr}
}

// explicit is the connection to api_server, with token_file and ca_file
// when set.
func explicit(cfg APIConfig) (*conn, error) {
	u, err := url.Parse(cfg.APIServer)
	if err != nil {
		return nil, fmt.Errorf("api_server %q: %w", cfg.APIServer, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("api_server %q: want http(s)://host[:port]", cfg.APIServer)
	}
	c := &conn{base: u, token: noToken}
	if cfg.TokenFile != "" {
		if c.token, err = tokenFile(cfg.TokenFile, "token_file"); err != nil {
			return nil, err
		}
	}
	pool, err := loadCA(cfg.CAFile, "")
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	c.client = newHTTPClient(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool})
	return c, nil
}

// inCluster builds the connection a pod has to its cluster's API server:
// the service account's token and CA, or token_file and ca_file.
func inCluster(cfg APIConfig) (*conn, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, and no api_server or kubeconfig_file is configured")
	}
	tokenPath, tokenWhat := cfg.TokenFile, "token_file"
	if tokenPath == "" {
		tokenPath, tokenWhat = filepath.Join(DefaultServiceAccountDir, "token"), "in-cluster service account token"
	}
	token, err := tokenFile(tokenPath, tokenWhat)
	if err != nil {
		return nil, err
	}
	caPath, caWhat := cfg.CAFile, "ca_file"
	if caPath == "" {
		caPath, caWhat = filepath.Join(DefaultServiceAccountDir, "ca.crt"), "in-cluster service account CA"
	}
	pool, err := loadCA(caPath, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caWhat, err)
	}
	return &conn{
		base:   &url.URL{Scheme: "https", Host: net.JoinHostPort(host, port)},
		client: newHTTPClient(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}),
		token:  token,
	}, nil
}

// tokenFile checks that the token file at path can be read and returns
// the function that reads it for every request; what names it in the error.
func tokenFile(path, what string) (func() (string, error), error) {
	tok := fileToken(path)
	if _, err := tok(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return tok, nil
}

// fileToken reads the token at path, again for every request.
func fileToken(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read token file %q: %w", path, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
}

// loadCA reads a PEM CA bundle from a file or from base64 data; neither
// is nil (the system's roots).
func loadCA(file, data string) (*x509.CertPool, error) {
	var pem []byte
	var err error
	switch {
	case data != "":
		if pem, err = base64.StdEncoding.DecodeString(data); err != nil {
			return nil, fmt.Errorf("certificate-authority-data: %w", err)
		}
	case file != "":
		if pem, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
	default:
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA %q: no PEM certificate found", file)
	}
	return pool, nil
}

// kubeConfig is the part of a kubeconfig file used here.
type kubeConfig struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server                   string `yaml:"server"`
			CertificateAuthority     string `yaml:"certificate-authority"`
			CertificateAuthorityData string `yaml:"certificate-authority-data"`
			InsecureSkipTLSVerify    bool   `yaml:"insecure-skip-tls-verify"`
			TLSServerName            string `yaml:"tls-server-name"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			Token                 string    `yaml:"token"`
			TokenFile             string    `yaml:"tokenFile"`
			ClientCertificate     string    `yaml:"client-certificate"`
			ClientCertificateData string    `yaml:"client-certificate-data"`
			ClientKey             string    `yaml:"client-key"`
			ClientKeyData         string    `yaml:"client-key-data"`
			Username              string    `yaml:"username"`
			Password              string    `yaml:"password"`
			Exec                  yaml.Node `yaml:"exec"`
			AuthProvider          yaml.Node `yaml:"auth-provider"`
		} `yaml:"user"`
	} `yaml:"users"`
}

// fromKubeConfig builds the connection of a kubeconfig's current context:
// server, CA, client certificate, token (or token file) or basic auth.
// Exec and auth-provider plugins are not supported.
func fromKubeConfig(path string) (*conn, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	var kc kubeConfig
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return nil, fmt.Errorf("parse kubeconfig %q: %w", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	var clusterName, userName string
	found := false
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext {
			clusterName, userName, found = c.Context.Cluster, c.Context.User, true
		}
	}
	if !found {
		return nil, fmt.Errorf("kubeconfig %q: current-context %q not found", path, kc.CurrentContext)
	}
	c := &conn{token: noToken}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	found = false
	for _, cl := range kc.Clusters {
		if cl.Name != clusterName {
			continue
		}
		found = true
		if c.base, err = url.Parse(cl.Cluster.Server); err != nil || c.base.Host == "" {
			return nil, fmt.Errorf("kubeconfig %q: cluster %q: server %q is not a URL", path, clusterName, cl.Cluster.Server)
		}
		if tc.RootCAs, err = loadCA(rel(cl.Cluster.CertificateAuthority), cl.Cluster.CertificateAuthorityData); err != nil {
			return nil, fmt.Errorf("kubeconfig %q: %w", path, err)
		}
		tc.InsecureSkipVerify = cl.Cluster.InsecureSkipTLSVerify
		tc.ServerName = cl.Cluster.TLSServerName
	}
	if !found {
		return nil, fmt.Errorf("kubeconfig %q: cluster %q not found", path, clusterName)
	}
	for _, u := range kc.Users {
		if u.Name != userName {
			continue
		}
		usr := u.User
		if !usr.Exec.IsZero() || !usr.AuthProvider.IsZero() {
			return nil, fmt.Errorf("kubeconfig %q: user %q: exec and auth-provider plugins are not supported; use a token, token file or client certificate", path, userName)
		}
		switch {
		case usr.TokenFile != "":
			c.token = fileToken(rel(usr.TokenFile))
		case usr.Token != "":
			tok := usr.Token
			c.token = func() (string, error) { return tok, nil }
		}
		c.user, c.password = usr.Username, usr.Password
		cert, err := clientCert(rel(usr.ClientCertificate), usr.ClientCertificateData, rel(usr.ClientKey), usr.ClientKeyData)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %q: user %q: %w", path, userName, err)
		}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
	}
	c.client = newHTTPClient(tc)
	return c, nil
}

func clientCert(certFile, certData, keyFile, keyData string) (*tls.Certificate, error) {
	read := func(file, data, what string) ([]byte, error) {
		if data != "" {
			b, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				return nil, fmt.Errorf("%s-data: %w", what, err)
			}
			return b, nil
		}
		if file == "" {
			return nil, nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		return b, nil
	}
	certPEM, err := read(certFile, certData, "client-certificate")
	if err != nil {
		return nil, err
	}
	keyPEM, err := read(keyFile, keyData, "client-key")
	if err != nil {
		return nil, err
	}
	if certPEM == nil && keyPEM == nil {
		return nil, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return &cert, nil
}
