package daemon_test

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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// selfSigned returns a TLS config for 127.0.0.1 and the PEM of its certificate.
func selfSigned(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smsc.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestGateway_TLSCarrier sends through a carrier reached over SMPP/TLS,
// trusting the carrier's CA from tls_ca_file.
func TestGateway_TLSCarrier(t *testing.T) {
	serverTLS, caPEM := selfSigned(t)
	sim := startSim(t, smsc.Options{TLS: serverTLS})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	y := configYAML(t, cfgOpts{dir: dir, simAddr: sim.Addr()})
	y = strings.Replace(y, "binds: 2, window: 8}", "binds: 2, window: 8, tls: true, tls_ca_file: "+ca+"}", 1)
	cfg, err := daemon.ParseConfig(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	sendThrough(t, g, sim, "+91-9812345678", "over TLS")

	t.Run("UntrustedCertificate", func(t *testing.T) {
		y := configYAML(t, cfgOpts{simAddr: sim.Addr()})
		y = strings.Replace(y, "binds: 2, window: 8}", "binds: 2, window: 8, tls: true}", 1)
		cfg, err := daemon.ParseConfig(strings.NewReader(y))
		if err != nil {
			t.Fatal(err)
		}
		d, err := daemon.New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		g := runDaemon(t, d)
		// The handshake fails, so nothing binds: a send is refused at once.
		if code, _ := call(t, "POST", g.url+sendPath, keyA, sendBody(clientA, "+91-9812345679", "6")); code != 409 {
			t.Fatalf("got %d, want 409 with an untrusted carrier certificate", code)
		}
	})
}
