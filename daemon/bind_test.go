package daemon_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// testPKI is a CA, an SMSC certificate for smsc.test (no IP address) and a
// client certificate, written as PEM files in a temp dir.
type testPKI struct {
	caFile, certFile, keyFile string
	otherKeyFile              string // a key that matches no certificate
	server                    *tls.Config
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	serverDER, serverKey := issue(2, "smsc.test", x509.ExtKeyUsageServerAuth)
	clientDER, clientKey := issue(3, "otpgate", x509.ExtKeyUsageClientAuth)
	return &testPKI{
		caFile:       writePEM("ca.pem", "CERTIFICATE", caDER),
		certFile:     writePEM("client.pem", "CERTIFICATE", clientDER),
		keyFile:      writePEM("client.key", "PRIVATE KEY", keyDER(clientKey)),
		otherKeyFile: writePEM("other.key", "PRIVATE KEY", keyDER(newKey())),
		server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12},
	}
}

// withCarrierKeys returns the test configuration with extra keys on carrier
// a (carriers[0]).
func withCarrierKeys(t *testing.T, o cfgOpts, keys string) string {
	t.Helper()
	y := configYAML(t, o)
	out := strings.Replace(y, "binds: 2, window: 8}", "binds: 2, window: 8, "+keys+"}", 1)
	if out == y {
		t.Fatal("test config did not change")
	}
	return out
}

func TestConfig_CarrierLinkKeys(t *testing.T) {
	pki := newPKI(t)
	y := withCarrierKeys(t, cfgOpts{simAddr: "127.0.0.1:2775"}, "auth_retry_delay: 20m, reconnect_delay: 3s, "+
		"enquire_link_interval: 15s, inactivity_timeout: 45s, tls: true, tls_ca_file: "+pki.caFile+
		", tls_cert_file: "+pki.certFile+", tls_key_file: "+pki.keyFile+", tls_server_name: smsc.test")
	cfg, err := daemon.ParseConfig(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	cc, err := daemon.SMPPConfig(cfg.Carriers[0])
	if err != nil {
		t.Fatal(err)
	}
	if cc.AuthRetryDelay != 20*time.Minute || cc.ReconnectDelay != 3*time.Second || cc.EnquireLink != 15*time.Second ||
		cc.InactivityTimeout != 45*time.Second {
		t.Fatalf("durations: got auth %v reconnect %v enquire %v inactivity %v", cc.AuthRetryDelay, cc.ReconnectDelay,
			cc.EnquireLink, cc.InactivityTimeout)
	}
	if cc.TLS == nil {
		t.Fatal("tls: got no TLS config")
	}
	if cc.TLS.ServerName != "smsc.test" || len(cc.TLS.Certificates) != 1 || cc.TLS.RootCAs == nil {
		t.Fatalf("tls: got server name %q, %d certificates, CAs %v; want smsc.test, 1, set",
			cc.TLS.ServerName, len(cc.TLS.Certificates), cc.TLS.RootCAs != nil)
	}

	// Left out: zero durations (smpp's defaults) and no server name, so
	// that smpp checks the certificate against the address's host.
	cfg, err = daemon.ParseConfig(strings.NewReader(withCarrierKeys(t, cfgOpts{simAddr: "127.0.0.1:2775"}, "tls: true")))
	if err != nil {
		t.Fatal(err)
	}
	cc, err = daemon.SMPPConfig(cfg.Carriers[0])
	if err != nil {
		t.Fatal(err)
	}
	if cc.AuthRetryDelay != 0 || cc.ReconnectDelay != 0 || cc.EnquireLink != 0 || cc.InactivityTimeout != 0 ||
		cc.TLS.ServerName != "" || len(cc.TLS.Certificates) != 0 {
		t.Fatalf("defaults: got auth %v reconnect %v enquire %v inactivity %v, server name %q, %d certificates",
			cc.AuthRetryDelay, cc.ReconnectDelay, cc.EnquireLink, cc.InactivityTimeout, cc.TLS.ServerName, len(cc.TLS.Certificates))
	}
}

func TestConfig_CarrierLinkProblems(t *testing.T) {
	pki := newPKI(t)
	tests := []struct{ keys, want string }{
		{"auth_retry_delay: -1s", "carriers[0].auth_retry_delay: must not be negative"},
		{"reconnect_delay: -5s", "carriers[0].reconnect_delay: must not be negative"},
		{"enquire_link_interval: -1s", "carriers[0].enquire_link_interval: must not be negative"},
		{"inactivity_timeout: -1s", "carriers[0].inactivity_timeout: must not be negative"},
		{"inactivity_timeout: 20s", "carriers[0].inactivity_timeout: must be longer than enquire_link_interval (30s)"},
		{"enquire_link_interval: 60s, inactivity_timeout: 60s", "carriers[0].inactivity_timeout: must be longer than enquire_link_interval (1m0s)"},
		{"tls: true, tls_cert_file: " + pki.certFile, "carriers[0].tls_key_file: missing: tls_cert_file and tls_key_file go together"},
		{"tls: true, tls_key_file: " + pki.keyFile, "carriers[0].tls_cert_file: missing: tls_cert_file and tls_key_file go together"},
		{"tls_cert_file: " + pki.certFile + ", tls_key_file: " + pki.keyFile, "carriers[0].tls_cert_file: set but tls is false"},
		{"tls: true, tls_cert_file: /nonexistent.pem, tls_key_file: " + pki.keyFile, "carriers[0].tls_cert_file: open /nonexistent.pem: no such file"},
		{"tls: true, tls_cert_file: " + pki.certFile + ", tls_key_file: " + pki.otherKeyFile, "carriers[0].tls_cert_file: tls: private key does not match public key"},
		{"tls: true, tls_cert_file: " + pki.keyFile + ", tls_key_file: " + pki.keyFile, "carriers[0].tls_cert_file: tls:"},
		{"tls_server_name: smsc.test", "carriers[0].tls_server_name: set but tls is false"},
		{"password: 12345678901234567", "carriers[0].password: longer than 16 characters"},
	}
	for _, tt := range tests {
		y := withCarrierKeys(t, cfgOpts{simAddr: "127.0.0.1:2775"}, tt.keys)
		if strings.Contains(tt.keys, "password:") {
			y = strings.Replace(y, "password: pw-a, ", "", 1) // the test's own password wins
		}
		cfg, err := daemon.ParseConfig(strings.NewReader(y))
		if err != nil {
			t.Fatalf("%s: %v", tt.keys, err)
		}
		ps := cfg.Validate()
		if !strings.Contains(ps.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.keys, ps, tt.want)
		}
		if len(ps) != 1 {
			t.Errorf("%s: got %d problems, want 1: %v", tt.keys, len(ps), ps)
		}
	}
	// A bad duration is a parse error with its line.
	_, err := daemon.ParseConfig(strings.NewReader(withCarrierKeys(t, cfgOpts{simAddr: "127.0.0.1:2775"}, "reconnect_delay: soon")))
	if err == nil || !strings.Contains(err.Error(), `bad duration "soon"`) {
		t.Fatalf("reconnect_delay: soon: got %v", err)
	}
}

// TestConfig_PasswordWarning: a password of 9 to 16 characters passes with
// a warning, which the daemon logs without the password.
func TestConfig_PasswordWarning(t *testing.T) {
	const pw = "twelve-chars"
	y := strings.Replace(configYAML(t, cfgOpts{simAddr: "127.0.0.1:2775"}), "password: pw-a", "password: "+pw, 1)
	cfg, err := daemon.ParseConfig(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatalf("Validate: got %v, want no problem", ps)
	}
	ws := cfg.Warnings()
	if len(ws) != 1 || ws[0].Path != "carriers[0].password" || !strings.Contains(ws[0].Msg, "longer than 8 characters") {
		t.Fatalf("Warnings: got %v", ws)
	}
	var buf bytes.Buffer
	if _, err := daemon.New(cfg, slog.New(slog.NewJSONHandler(&buf, nil))); err != nil {
		t.Fatal(err)
	}
	logs := buf.String()
	if !strings.Contains(logs, `"level":"WARN","msg":"config warning","path":"carriers[0].password"`) {
		t.Fatalf("no warning logged: %s", logs)
	}
	if strings.Contains(logs, pw) {
		t.Fatalf("the password is in the log: %s", logs)
	}
}

// TestGateway_TLSClientCertificate sends through a carrier that requires a
// client certificate, over TLS checked against tls_server_name.
func TestGateway_TLSClientCertificate(t *testing.T) {
	pki := newPKI(t)
	sim := startSim(t, smsc.Options{TLS: pki.server})
	cfg, err := daemon.ParseConfig(strings.NewReader(withCarrierKeys(t, cfgOpts{simAddr: sim.Addr()},
		"tls: true, tls_ca_file: "+pki.caFile+", tls_cert_file: "+pki.certFile+", tls_key_file: "+pki.keyFile+
			", tls_server_name: smsc.test")))
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	sendThrough(t, g, sim, "+91-9812345670", "over TLS with a client certificate")
}

// TestGateway_ReloadRetriesRefusedBind: a carrier whose credentials were
// refused waits auth_retry_delay (1h here), but a reload, even one that
// leaves the carrier unchanged, makes it try again at once.
func TestGateway_ReloadRetriesRefusedBind(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	sim.SetBindStatus(0x0E) // ESME_RINVPASWD
	dir := t.TempDir()
	path := filepath.Join(dir, "otpgate.yaml")
	writeConfig(t, path, withCarrierKeys(t, cfgOpts{dir: dir, simAddr: sim.Addr()}, "auth_retry_delay: 1h"))
	cfg, err := daemon.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	g := runDaemon(t, d)
	for i := 0; sim.Stats().BindsRejected == 0; i++ {
		if i > 1000 {
			t.Fatal("no bind attempt")
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := `otpgate_bind_failures_total{carrier="a",reason="invalid_password"}`
	for i := 0; ; i++ {
		_, text := call(t, "GET", g.admin+"/metrics", "", "")
		if strings.Contains(text, want) {
			break
		}
		if i > 400 {
			t.Fatalf("metrics lack %s:\n%s", want, grepLines(text, "otpgate_bind_failures_total"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // nothing may happen here: auth_retry_delay is 1h
	if got := sim.Stats().BindsRejected; got > 2 {
		t.Fatalf("bind attempts: got %d, want at most one per bind (2)", got)
	}
	if got := sim.Stats().Binds; got != 0 {
		t.Fatalf("binds: got %d, want 0", got)
	}

	sim.SetBindStatus(0) // the carrier fixed the account; the operator reloads
	if err := g.d.ReloadFile(path); err != nil {
		t.Fatalf("reload: %v", err)
	}
	waitReady(t, g.url)
	if code, body := send(t, g, "+91-9812345671"); code != 200 {
		t.Fatalf("send after the reload: got %d %s", code, body)
	}
}
