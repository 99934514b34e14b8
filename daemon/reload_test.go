package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestGateway_Reload(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	dir := t.TempDir()
	o := cfgOpts{dir: dir, simAddr: sim.Addr(), deadAddr: deadAddr(t)}
	base := configYAML(t, o)
	path := filepath.Join(dir, "otpgate.yaml")
	writeConfig(t, path, base)
	cfg, err := daemon.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	waitSimBound(t, sim, 2) // /readyz needs one bind; the config has two
	bindsBefore := sim.Stats().Binds

	// Client B goes, client C comes.
	keyC := "key-c-0001"
	next := strings.Replace(base, "  - id: "+clientB+"\n    api_keys: [\""+daemon.HashKey(keyB)+"\"]",
		"  - id: client-c\n    api_keys: [\""+daemon.HashKey(keyC)+"\"]", 1)
	if next == base {
		t.Fatal("test config did not change")
	}
	writeConfig(t, path, next)
	if err := g.d.ReloadFile(path); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if code, body := call(t, "POST", g.url+sendPath, keyC, sendBody("client-c", "+91-9800000001", "6")); code != 200 {
		t.Fatalf("added client: got %d %s, want 200", code, body)
	}
	if code, body := call(t, "POST", g.url+sendPath, keyB, sendBody(clientB, "+91-9800000002", "6")); code != 401 || body != wrongKey {
		t.Fatalf("removed client: got %d %s, want 401", code, body)
	}
	if got := sim.Stats().Binds; got != bindsBefore {
		t.Fatalf("an unchanged carrier rebound: %d binds, want %d", got, bindsBefore)
	}

	t.Run("Invalid", func(t *testing.T) {
		writeConfig(t, path, next+"\nroutes: [{countries: [\"*\"], carriers: [nope]}]\n")
		if err := g.d.ReloadFile(path); err == nil {
			t.Fatal("invalid file: got nil error")
		}
		writeConfig(t, path, "listen: [")
		if err := g.d.ReloadFile(path); err == nil {
			t.Fatal("unparsable file: got nil error")
		}
		if code, body := call(t, "POST", g.url+sendPath, keyC, sendBody("client-c", "+91-9800000003", "6")); code != 200 {
			t.Fatalf("after rejected reloads: got %d %s, want the old config serving", code, body)
		}
	})
	t.Run("FixedFields", func(t *testing.T) {
		writeConfig(t, path, strings.Replace(next, "listen: 127.0.0.1:0", "listen: 127.0.0.1:1", 1))
		err := g.d.ReloadFile(path)
		if err == nil || !strings.Contains(err.Error(), "listen") {
			t.Fatalf("listen change: got %v, want a rejection naming listen", err)
		}
	})
	t.Run("CarrierChanged", func(t *testing.T) {
		changed := strings.Replace(next, "binds: 2, window: 8", "binds: 1, window: 8", 1)
		writeConfig(t, path, changed)
		if err := g.d.ReloadFile(path); err != nil {
			t.Fatalf("reload: %v", err)
		}
		waitSimBound(t, sim, 1)     // the new config's one bind; the old two are gone
		waitCarrierBound(t, g, "a") // and the gateway's side of it is bound too
		if code, body := call(t, "POST", g.url+sendPath, keyC, sendBody("client-c", "+91-9800000004", "6")); code != 200 {
			t.Fatalf("after carrier change: got %d %s", code, body)
		}
		// The old carrier's last report (down) does not hide the new bind.
		_, metrics := call(t, "GET", g.admin+"/metrics", "", "")
		if !strings.Contains(metrics, `otpgate_bind_up{bind="transceiver-0",carrier="a"} 1`) {
			t.Fatalf("bind_up of the replaced carrier: %s", grepLines(metrics, "otpgate_bind_up"))
		}
	})
	t.Run("CarrierRemoved", func(t *testing.T) {
		removed := strings.Replace(strings.Replace(next, "binds: 2, window: 8", "binds: 1, window: 8", 1),
			"  - countries: [GB]\n    carriers: [dead]\n", "", 1)
		removed = strings.Replace(removed, "  - {name: dead,", "  # - {name: dead,", 1)
		writeConfig(t, path, removed)
		if err := g.d.ReloadFile(path); err != nil {
			t.Fatalf("reload: %v", err)
		}
		_, metrics := call(t, "GET", g.admin+"/metrics", "", "")
		if strings.Contains(metrics, `carrier="dead"`) {
			t.Fatalf("series of a removed carrier remain: %s", grepLines(metrics, "otpgate_bind_up"))
		}
	})
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
