package daemon_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/smpp/smsc"
)

// TestAdmin_Port: metrics and pprof are on the admin port only, pprof only
// with admin.pprof, and /readyz tells its reason there and nowhere else.
func TestAdmin_Port(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	for _, pprofOn := range []bool{false, true} {
		cfg := testConfig(t, cfgOpts{simAddr: sim.Addr()})
		cfg.Admin.PProf = pprofOn
		g := startGateway(t, cfg)
		if code, text := call(t, "GET", g.admin+"/metrics", "", ""); code != 200 || !strings.Contains(text, "otpgate_bind_up") {
			t.Fatalf("admin /metrics: %d", code)
		}
		if code, _ := call(t, "GET", g.url+"/metrics", "", ""); code != 404 {
			t.Fatalf("API port /metrics: got %d, want 404", code)
		}
		want := 404
		if pprofOn {
			want = 200
		}
		if code, _ := call(t, "GET", g.admin+"/debug/pprof/", "", ""); code != want {
			t.Fatalf("pprof with admin.pprof %v: got %d, want %d", pprofOn, code, want)
		}
		if code, _ := call(t, "GET", g.url+"/debug/pprof/", "", ""); code != 404 {
			t.Fatalf("API port pprof: got %d, want 404", code)
		}
		g.stop(t)
	}
	// Not ready: the admin port says why, the API port does not.
	u := startUnready(t, testConfig(t, cfgOpts{simAddr: deadAddr(t)}))
	if code, body := call(t, "GET", u.admin+"/readyz", "", ""); code != 503 || !strings.Contains(body, `"reason":"no carrier bound"`) {
		t.Fatalf("admin /readyz: got %d %s", code, body)
	}
	if code, body := call(t, "GET", u.url+"/readyz", "", ""); code != 503 || strings.Contains(body, "reason") {
		t.Fatalf("API /readyz: got %d %s, want 503 without a reason", code, body)
	}
	if code, body := call(t, "HEAD", u.url+"/readyz", "", ""); code != 503 || body != "" {
		t.Fatalf("API HEAD /readyz: got %d %q, want 503 and no body", code, body)
	}
}

// TestAdmin_Token: with admin.token_file every admin request needs the
// bearer token.
func TestAdmin_Token(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	tok := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tok, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, cfgOpts{simAddr: sim.Addr()})
	cfg.Admin.TokenFile = tok
	g := startGateway(t, cfg)
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong-token-000000", 401}, {"Bearer 0123456789abcdef0123", 200}} {
		req, _ := http.NewRequest("GET", g.admin+"/metrics", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("Authorization %q: got %d, want %d", c.auth, resp.StatusCode, c.want)
		}
	}
}

// TestAdmin_Config: check-config keeps the admin port on loopback unless
// told, asks for a token then, and points debug_listen users to admin.
func TestAdmin_Config(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "admin.token")
	os.WriteFile(tok, []byte("0123456789abcdef0123"), 0o600)
	loose := filepath.Join(t.TempDir(), "loose.token")
	os.WriteFile(loose, []byte("0123456789abcdef0123"), 0o644)
	for _, c := range []struct {
		name, listen, token, debug string
		remote                     bool
		wantPath                   string
	}{
		{"Loopback", "127.0.0.1:9464", "", "", false, ""},
		{"IPv6Loopback", "[::1]:9464", "", "", false, ""},
		{"Off", "", "", "", false, ""},
		{"RemoteRefused", "0.0.0.0:9464", "", "", false, "admin_listen"},
		{"RemoteNeedsToken", "0.0.0.0:9464", "", "", true, "admin.token_file"},
		{"RemoteWithToken", "0.0.0.0:9464", tok, "", true, ""},
		{"TokenReadableByOthers", "127.0.0.1:9464", loose, "", false, "admin.token_file"},
		{"DebugListenGone", "127.0.0.1:9464", "", "127.0.0.1:6060", false, "debug_listen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t, cfgOpts{simAddr: "127.0.0.1:1"})
			cfg.AdminListen, cfg.Admin.AllowRemote, cfg.Admin.TokenFile, cfg.DebugListen = c.listen, c.remote, c.token, c.debug
			ps := cfg.Validate()
			switch {
			case c.wantPath == "" && len(ps) > 0:
				t.Fatalf("got %v, want no problem", ps)
			case c.wantPath != "" && (len(ps) != 1 || ps[0].Path != c.wantPath):
				t.Fatalf("got %v, want one problem at %s", ps, c.wantPath)
			}
		})
	}
}
