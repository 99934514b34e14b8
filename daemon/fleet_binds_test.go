package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// fleetCerts writes a fleet CA and one node certificate it signed (for
// 127.0.0.1, both server and client use) and returns the internal_tls
// keys naming them.
func fleetCerts(t testing.TB) daemon.InternalTLSConfig {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "otpgate fleet CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "otpgate node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := daemon.InternalTLSConfig{CertFile: filepath.Join(dir, "node.pem"), KeyFile: filepath.Join(dir, "node.key"),
		CAFile: filepath.Join(dir, "ca.pem")}
	for path, b := range map[string]*pem.Block{
		c.CertFile: {Type: "CERTIFICATE", Bytes: der},
		c.KeyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
		c.CAFile:   {Type: "CERTIFICATE", Bytes: caDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestFleet_Binds: with binds: 1 and a carrier that refuses a second bind
// of the account, one bind exists fleet-wide, sends through every node
// succeed (the node without the bind forwards over mutual TLS), receipts
// resolve whichever node sent, and when the holder stops another node
// takes the bind over.
func TestFleet_Binds(t *testing.T) {
	// Ids from 10^9 on: a hex id of this counter is never another
	// message's decimal one. (Counters that small collide across forms,
	// and a receipt that beats its own message's SaveSend, which a
	// forward delays by a round trip, would be taken for the other
	// message's: see otp.IDForms.)
	so := smsc.Options{ReceiptTLV: true, MaxBinds: 1, FirstID: 1_000_000_000}
	f := startFleetSim(t, 3, so, func(cfg *daemon.Config) {
		cfg.Carriers[0].Binds = 1
		cfg.Clients[0].Rate = daemon.RateConfig{PerSecond: 1e6, Burst: 1e6}
		cfg.Guard.Mode = "monitor" // consecutive numbers: a pumping pattern
	})
	waitFor(t, 20*time.Second, "one bind of carrier a", func() bool { return f.sim.Bound() == 1 })

	holder := -1
	for i, g := range f.nodes {
		st := carriers(t, g)["a"]
		switch {
		case st.BindsUp == 1 && st.BindsLeased == 1:
			if holder >= 0 {
				t.Fatalf("nodes %d and %d both hold a's bind", holder, i)
			}
			holder = i
		case st.BindsUp == 0 && st.BindsLeased == 0:
		default:
			t.Fatalf("node %d: carrier a %+v", i, st)
		}
	}
	if holder < 0 {
		t.Fatal("no node holds a's bind")
	}
	// Every node sends; the others forward to the holder.
	waitFor(t, 20*time.Second, "every node forwarding or bound", func() bool {
		for _, g := range f.nodes {
			if st := carriers(t, g)["a"]; st.BindsUp == 0 && !st.Forwarding {
				return false
			}
		}
		return true
	})
	var wg sync.WaitGroup
	var reqIDs sync.Map
	for i, g := range f.nodes {
		for j := range 10 {
			wg.Go(func() {
				n := fmt.Sprintf("+91-98765%d%04d", i, j)
				code, body := send(t, g, n)
				if code != 200 {
					t.Errorf("send %s through node %d: %d %s", n, i, code, body)
					return
				}
				reqIDs.Store(requestID(t, body), g)
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	reqIDs.Range(func(k, v any) bool {
		waitState(t, v.(*gateway), k.(string), "DELIVERED")
		return true
	})
	other0 := f.nodes[(holder+1)%3]
	if _, text := call(t, "GET", other0.admin+"/metrics", "", ""); !strings.Contains(text, `otpgate_fleet_forwards_total{carrier="a",result="ok"} 10`) {
		t.Fatalf("a forwarding node's 10 sends not counted:\n%s", grepLines(text, "otpgate_fleet"))
	} else if !strings.Contains(text, `otpgate_route_carriers_bound{route="*"} 1`) {
		// No bind here, but the route can send: no OtpgateRouteDown.
		t.Fatalf("a forwarding node's route counted without its carrier:\n%s", grepLines(text, "otpgate_route"))
	}
	// A code sent through a forwarding node verifies through the holder.
	other := (holder + 1) % 3
	if code, body := send(t, f.nodes[other], "+91-9876599001"); code != 200 {
		t.Fatalf("send through node %d: %d %s", other, code, body)
	}
	if code, body := verify(t, f.nodes[holder], "+91-9876599001", codeFor(t, f.sim, "919876599001", 1)); code != 200 {
		t.Fatalf("verify through the holder: %d %s", code, body)
	}
	if st := f.sim.Stats(); st.PeakBound != 1 || st.BindsRejected != 0 {
		t.Fatalf("simulator: peak %d binds, %d refused; want 1 and none refused", st.PeakBound, st.BindsRejected)
	}

	// The holder stops: another node binds within the lease.
	stoppedAt := time.Now()
	f.nodes[holder].stop(t)
	rest := []*gateway{}
	for i, g := range f.nodes {
		if i != holder {
			rest = append(rest, g)
		}
	}
	waitFor(t, 30*time.Second, "a's bind taken over", func() bool {
		for _, g := range rest {
			if carriers(t, g)["a"].BindsUp == 1 {
				return true
			}
		}
		return false
	})
	t.Logf("bind taken over %s after the holder stopped", time.Since(stoppedAt).Round(10*time.Millisecond))
	// A node that forwards may still name the stopped holder (its view of
	// the leases is refreshed by polling, not pushed): its forward fails
	// over to the new holder, read again from the leases.
	for i, g := range rest {
		if code, body := send(t, g, fmt.Sprintf("+91-987659%02d02", i)); code != 200 {
			t.Fatalf("send through node %d after the takeover: %d %s", i, code, body)
		}
	}
	if st := f.sim.Stats(); st.PeakBound != 1 {
		t.Fatalf("simulator: peak %d binds, want 1", st.PeakBound)
	}
}

// startFleetSim is startFleet with simulator options of its own.
func startFleetSim(t *testing.T, n int, so smsc.Options, adjust func(*daemon.Config)) *fleet {
	t.Helper()
	return startFleetOn(t, n, startSim(t, so), cfgOpts{}, adjust)
}

// waitFor polls cond every 20ms until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFleet_Hygiene: a node whose secret or configuration differs from the
// fleet's refuses to start, and a reload to a configuration the fleet has
// not adopted is refused until `fleet adopt` makes it the fleet's.
func TestFleet_Hygiene(t *testing.T) {
	f := startFleet(t, 1, cfgOpts{}, nil)
	start := func(adjust func(*daemon.Config)) error {
		cfg := f.config(1)
		cfg.Fleet.NodeID = "late"
		cfg.DataDir = t.TempDir()
		adjust(cfg)
		d, err := daemon.New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return d.Run(ctx) // returns at once when refused
	}
	err := start(func(cfg *daemon.Config) {
		cfg.SecretFile = filepath.Join(t.TempDir(), "other.secret") // a new secret is made
	})
	if err == nil || !strings.Contains(err.Error(), "HMAC secret") || !strings.Contains(err.Error(), "node0") {
		t.Fatalf("a node with another secret: got %v, want refused naming the secret and node0", err)
	}
	err = start(func(cfg *daemon.Config) { cfg.OTP.MaxAttempts = 9 })
	if err == nil || !strings.Contains(err.Error(), "differs from the fleet's") || !strings.Contains(err.Error(), "fleet adopt") {
		t.Fatalf("a node with another config: got %v, want refused with the adopt hint", err)
	}

	next := f.config(0)
	next.OTP.MaxAttempts = 9
	if err := f.nodes[0].d.Reload(next); err == nil || !strings.Contains(err.Error(), "fleet adopt") {
		t.Fatalf("reload to a config the fleet has not adopted: got %v", err)
	}
	if _, err := daemon.AdoptFleetConfig(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if err := f.nodes[0].d.Reload(next); err != nil {
		t.Fatalf("reload after adopt: %v", err)
	}
}
