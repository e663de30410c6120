package kubepods

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

// Config says how to reach the API server and which pods to watch.
type Config struct {
	// APIServer is the API server URL. Empty with an empty KubeConfigFile
	// uses the in-cluster service account.
	APIServer string
	// KubeConfigFile is a kubeconfig file (its current context) to use
	// instead of the in-cluster service account.
	KubeConfigFile string
	// ServiceAccountDir holds the in-cluster token and ca.crt
	// (default DefaultServiceAccountDir).
	ServiceAccountDir string
	// Namespace restricts the watch to one namespace (empty: all).
	Namespace string
	// FieldSelector is sent as fieldSelector, e.g. spec.nodeName=node-a.
	FieldSelector string
	// LabelSelector is sent as labelSelector.
	LabelSelector string
	// UserAgent is sent with every request (default "weft").
	UserAgent string
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
func connect(cfg *Config) (*conn, error) {
	switch {
	case cfg.APIServer != "":
		u, err := url.Parse(cfg.APIServer)
		if err != nil {
			return nil, fmt.Errorf("api server URL %q: %w", cfg.APIServer, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("api server URL %q: want http(s)://host[:port]", cfg.APIServer)
		}
		return &conn{base: u, client: newClient(&tls.Config{MinVersion: tls.VersionTLS12}), token: noToken}, nil
	case cfg.KubeConfigFile != "":
		return fromKubeConfig(cfg.KubeConfigFile)
	default:
		return inCluster(cfg.ServiceAccountDir)
	}
}

func noToken() (string, error) { return "", nil }

func newClient(tc *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: tr}
}

// inCluster builds the connection a pod has to its cluster's API server.
func inCluster(dir string) (*conn, error) {
	if dir == "" {
		dir = DefaultServiceAccountDir
	}
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, and no API server URL or kubeconfig file is configured")
	}
	tokenFile := filepath.Join(dir, "token")
	if _, err := os.ReadFile(tokenFile); err != nil {
		return nil, fmt.Errorf("in-cluster service account token: %w", err)
	}
	pool, err := loadCA(filepath.Join(dir, "ca.crt"), "")
	if err != nil {
		return nil, err
	}
	base := &url.URL{Scheme: "https", Host: net.JoinHostPort(host, port)}
	return &conn{
		base:   base,
		client: newClient(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}),
		token:  fileToken(tokenFile),
	}, nil
}

func fileToken(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read token file %q: %w", path, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
}

// loadCA reads a PEM CA bundle from a file or from base64 data.
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
	c.client = newClient(tc)
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
