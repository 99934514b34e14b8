package smpp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// testCA issues certificates for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(tb testing.TB) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for name (a DNS name, or an IP address)
// with usage.
func (ca *testCA) issue(tb testing.TB, name string, usage x509.ExtKeyUsage) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestCarrier_TLSClientCertificate: an SMSC that requires a client
// certificate binds the carrier that presents one and refuses the one
// that does not; the SMSC's certificate is checked against ServerName,
// else the address's host.
func TestCarrier_TLSClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1, TLS: &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "smsc.test", x509.ExtKeyUsageServerAuth)},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool, MinVersion: tls.VersionTLS12}})
	client := ca.issue(t, "otpgate", x509.ExtKeyUsageClientAuth)

	t.Run("ServerNameFromAddress", func(t *testing.T) {
		// The SMSC's certificate names 127.0.0.1, the host of its address:
		// no ServerName needed.
		sim := newSMSC(t, smsc.Options{ReceiptDelay: -1, TLS: &tls.Config{
			Certificates: []tls.Certificate{ca.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth)},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool, MinVersion: tls.VersionTLS12}})
		cfg := carrierConfig("a", sim.Addr())
		cfg.TLS = &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{client}}
		waitBound(t, runCarrier(t, cfg, nil), 1)
	})
	t.Run("WithCertificate", func(t *testing.T) {
		cfg := carrierConfig("a", sim.Addr())
		cfg.TLS = &tls.Config{RootCAs: ca.pool, ServerName: "smsc.test", Certificates: []tls.Certificate{client}}
		c := runCarrier(t, cfg, nil)
		waitBound(t, c, 1)
		if _, err := c.Submit(ctxTimeout(t, 5*time.Second), testSMS("code 1234")); err != nil {
			t.Fatalf("Submit over TLS: %v", err)
		}
	})
	for _, tt := range []struct {
		name string
		tls  *tls.Config
	}{
		{"WithoutCertificate", &tls.Config{RootCAs: ca.pool, ServerName: "smsc.test"}},
		// The address is 127.0.0.1; the SMSC's certificate names smsc.test.
		{"ServerNameDefaultsToHost", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{client}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			binds := sim.Stats().Binds
			obs := &recorder{}
			cfg := carrierConfig("b", sim.Addr())
			cfg.TLS, cfg.Observer = tt.tls, obs
			c := runCarrier(t, cfg, nil)
			eventually(t, "2 failed binds", func() bool { r, _ := obs.bindFailures(); return len(r) >= 2 })
			if r, _ := obs.bindFailures(); r[0] != "tls" {
				t.Fatalf("reason: got %q, want tls", r[0])
			}
			if c.Bound() != 0 || sim.Stats().Binds != binds {
				t.Fatal("bound without a valid TLS handshake")
			}
		})
	}
}
