package fluentforwardexporter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
)

// selfSigned returns a server certificate for 127.0.0.1 and its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fluentd-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return cert, certPEM
}

func TestTLS(t *testing.T) {
	cert, caPEM := selfSigned(t)
	srv := newFwdServerTLS(t, "127.0.0.1:0", modeAck, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})

	t.Run("trusted", func(t *testing.T) {
		cfg := testConfig(srv.addr())
		cfg.TLS.Insecure = false
		cfg.TLS.CAPem = configopaque.String(caPEM)
		exp := startExporter(t, cfg, nil)
		defer shutdownWithin(t, exp, 5*time.Second)
		require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(0, 20)))
		require.Eventually(t, func() bool { return ackedSeqs(srv) == 20 }, 5*time.Second, 5*time.Millisecond)
	})

	t.Run("untrusted certificate is refused", func(t *testing.T) {
		cfg := testConfig(srv.addr())
		cfg.TLS.Insecure = false // system roots only: the self-signed cert fails
		cfg.QueueConfig = noQueue()
		cfg.BackOffConfig.Enabled = false
		exp := startExporter(t, cfg, nil)
		defer shutdownWithin(t, exp, 5*time.Second)
		err := exp.ConsumeLogs(t.Context(), seqLogs(100, 1))
		require.ErrorContains(t, err, "certificate")
	})
}
