package daemon_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// twoCarrierYAML is configYAML with a second carrier, b at simB, after a
// on the route of every country but GB; a has two binds, b one.
func twoCarrierYAML(t testing.TB, dir, simA, simB string) string {
	t.Helper()
	y := configYAML(t, cfgOpts{dir: dir, simAddr: simA})
	y = strings.Replace(y, "  - {name: dead,", "  - {name: b, address: \""+simB+"\", system_id: carrier-b, password: pw-b}\n  - {name: dead,", 1)
	y = strings.Replace(y, "  - countries: [\"*\"]\n    carriers: [a]", "  - countries: [\"*\"]\n    carriers: [a, b]", 1)
	return y
}

// carriers returns GET /carriers by name.
func carriers(t testing.TB, g *gateway) map[string]daemon.CarrierStatus {
	t.Helper()
	code, body := call(t, "GET", g.admin+"/carriers", "", "")
	if code != 200 {
		t.Fatalf("GET /carriers: %d %s", code, body)
	}
	var reply daemon.CarriersReply
	if err := json.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatalf("GET /carriers: %v in %s", err, body)
	}
	out := map[string]daemon.CarrierStatus{}
	for _, c := range reply.Carriers {
		out[c.Name] = c
	}
	return out
}

// waitUntil polls cond every 10ms for 10s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAdmin_CarrierControl: GET /carriers lists the carriers; suspending
// one through the admin port unbinds it (the SMSC sees the unbinds) and
// its traffic goes to the route's next carrier; a reload keeps it
// suspended; resume binds it again; suspended: true in the config starts
// it suspended, and a reload that changes the key applies it.
func TestAdmin_CarrierControl(t *testing.T) {
	simA := startSim(t, smsc.Options{SystemID: "carrier-a", Password: "pw-a"})
	simB := startSim(t, smsc.Options{SystemID: "carrier-b", Password: "pw-b"})
	dir := t.TempDir()
	y := twoCarrierYAML(t, dir, simA.Addr(), simB.Addr())
	path := filepath.Join(dir, "otpgate.yaml")
	writeConfig(t, path, y)
	cfg, err := daemon.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	waitCarrierBound(t, g, "a")
	waitCarrierBound(t, g, "b")
	waitUntil(t, "both binds of a", func() bool { return carriers(t, g)["a"].BindsUp == 2 })

	cs := carriers(t, g)
	if a := cs["a"]; a.BindsConfigured != 2 || a.Suspended || a.Degraded || a.Mode != "transceiver" {
		t.Fatalf("carrier a: %+v", a)
	}
	if d := cs["dead"]; d.BindsUp != 0 || d.BindsConfigured != 1 {
		t.Fatalf("carrier dead: %+v", d)
	}
	waitUntil(t, "dead's bind failure", func() bool { return carriers(t, g)["dead"].LastBindFailure == "network" })

	if code, body := send(t, g, "+91-9800000001"); code != 200 {
		t.Fatalf("send: %d %s", code, body)
	}
	codeFor(t, simA, "919800000001", 1)

	code, body := call(t, "POST", g.admin+"/carriers/a/suspend", "", "")
	if code != 200 || !strings.Contains(body, `"suspended": true`) || !strings.Contains(body, `"binds_up": 0`) {
		t.Fatalf("suspend: %d %s", code, body)
	}
	waitUntil(t, "the SMSC to see a's two unbinds", func() bool { return simA.Stats().Unbinds == 2 && simA.Bound() == 0 })
	if code, body := send(t, g, "+91-9800000002"); code != 200 {
		t.Fatalf("send while a is suspended: %d %s", code, body)
	}
	codeFor(t, simB, "919800000002", 1)
	if code, body := call(t, "POST", g.admin+"/carriers/nope/suspend", "", ""); code != 404 || !strings.Contains(body, "no carrier") {
		t.Fatalf("unknown carrier: %d %s", code, body)
	}
	if code, _ := call(t, "GET", g.admin+"/carriers/a/suspend", "", ""); code != 405 {
		t.Fatalf("GET on suspend: got %d, want 405", code)
	}

	// A reload keeps a suspended, even one that changes a (a new carrier
	// replaces it).
	writeConfig(t, path, strings.Replace(y, "password: pw-a, binds: 2, window: 8", "password: pw-a, binds: 2, window: 5", 1))
	if err := g.d.ReloadFile(path); err != nil {
		t.Fatalf("reload: %v", err)
	}
	binds := simA.Stats().Binds
	time.Sleep(200 * time.Millisecond) // a would redial at once were it not held
	if a := carriers(t, g)["a"]; !a.Suspended || a.BindsUp != 0 || simA.Bound() != 0 || simA.Stats().Binds != binds {
		t.Fatalf("after reload: %+v, SMSC has %d bound; want a still suspended", a, simA.Bound())
	}

	code, body = call(t, "POST", g.admin+"/carriers/a/resume", "", "")
	if code != 200 || !strings.Contains(body, `"suspended": false`) {
		t.Fatalf("resume: %d %s", code, body)
	}
	waitUntil(t, "a bound again", func() bool { return carriers(t, g)["a"].BindsUp == 2 })
	if code, body := send(t, g, "+91-9800000003"); code != 200 {
		t.Fatalf("send after resume: %d %s", code, body)
	}
	codeFor(t, simA, "919800000003", 1)

	// suspended: true in the file suspends a on reload ...
	suspendedA := strings.Replace(y, "password: pw-a, binds: 2", "password: pw-a, binds: 2, suspended: true", 1)
	writeConfig(t, path, suspendedA)
	if err := g.d.ReloadFile(path); err != nil {
		t.Fatalf("reload: %v", err)
	}
	waitUntil(t, "a unbound by the config", func() bool { return simA.Bound() == 0 })
	if a := carriers(t, g)["a"]; !a.Suspended || !a.SuspendedInConfig {
		t.Fatalf("suspended in config: %+v", a)
	}
	g.stop(t)

	// ... and on a restart with that file a starts suspended, until
	// resumed.
	cfg, err = daemon.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	binds = simA.Stats().Binds
	g = startGateway(t, cfg)
	time.Sleep(100 * time.Millisecond)
	if a := carriers(t, g)["a"]; !a.Suspended || simA.Stats().Binds != binds {
		t.Fatalf("restart with suspended: true: %+v, %d new binds", a, simA.Stats().Binds-binds)
	}
	if code, body := call(t, "POST", g.admin+"/carriers/a/resume", "", ""); code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
	waitUntil(t, "a bound after resume", func() bool { return carriers(t, g)["a"].BindsUp == 2 })
}
