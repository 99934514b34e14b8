package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// writeFile writes text to dir/name with mode perm (chmod after the
// write: the umask must not decide the test's mode).
func writeFile(t *testing.T, dir, name, text string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// secretConfig is a valid configuration whose carrier and client take
// their secrets from the lines given.
func secretConfig(dir, carrierSecret, clientSecret string) string {
	return `
data_dir: ` + filepath.Join(dir, "data") + `
clients:
  - id: c
    api_keys: ["` + daemon.HashKey("key-c-0001") + `"]
    sender: OTPGATE
    countries: ["*"]
    callback_url: "http://127.0.0.1:1/cb"
    ` + clientSecret + `
carriers:
  - name: a
    address: "127.0.0.1:2775"
    system_id: a
    ` + carrierSecret + `
routes: [{countries: ["*"], carriers: [a]}]
`
}

func problemAt(ps daemon.Problems, path, msg string) bool {
	for _, p := range ps {
		if p.Path == path && strings.Contains(p.Msg, msg) {
			return true
		}
	}
	return false
}

// TestConfig_SecretFiles: password_file and callback_secret_file hold the
// secrets (less a trailing newline); each with its inline key, a missing
// or empty file, is a problem at its path; a file readable by every local
// user is a warning that says why.
func TestConfig_SecretFiles(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "carrier-a.password", "pw-file\n", 0o640)
	cs := writeFile(t, dir, "client-c.secret", "cb-secret-from-file\r\n", 0o600)
	cfg, err := daemon.ParseConfig(strings.NewReader(secretConfig(dir, "password_file: "+pw, "callback_secret_file: "+cs)))
	if err != nil {
		t.Fatal(err)
	}
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatalf("valid config: %v", ps)
	}
	if cfg.Carriers[0].Password != "pw-file" || cfg.Clients[0].CallbackSecret != "cb-secret-from-file" {
		t.Fatal("secrets not read from their files, or the trailing newline kept")
	}
	if ws := cfg.Warnings(); len(ws) != 0 {
		t.Fatalf("files of mode 0640 and 0600: got warnings %v", ws)
	}

	empty := writeFile(t, dir, "empty", "\n", 0o600)
	for _, c := range []struct {
		name, carrier, client, path, msg string
	}{
		{"BothPassword", "password: x\n    password_file: " + pw, "callback_secret_file: " + cs,
			"carriers[0].password_file", "set together with password"},
		{"BothCallbackSecret", "password_file: " + pw, "callback_secret: x\n    callback_secret_file: " + cs,
			"clients[0].callback_secret_file", "set together with callback_secret"},
		{"Missing", "password_file: " + filepath.Join(dir, "nope"), "callback_secret_file: " + cs,
			"carriers[0].password_file", "no such file"},
		{"Empty", "password_file: " + pw, "callback_secret_file: " + empty,
			"clients[0].callback_secret_file", "is empty"},
		{"Directory", "password_file: " + dir, "callback_secret_file: " + cs,
			"carriers[0].password_file", "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := daemon.ParseConfig(strings.NewReader(secretConfig(dir, c.carrier, c.client)))
			if err != nil {
				t.Fatal(err)
			}
			if ps := cfg.Validate(); !problemAt(ps, c.path, c.msg) {
				t.Fatalf("got %v, want %s: %s", ps, c.path, c.msg)
			}
		})
	}

	t.Run("ReadableByOthers", func(t *testing.T) {
		loose := writeFile(t, dir, "loose.password", "pw-loose", 0o644)
		cfg, err := daemon.ParseConfig(strings.NewReader(secretConfig(dir, "password_file: "+loose, "callback_secret_file: "+cs)))
		if err != nil {
			t.Fatal(err)
		}
		if ps := cfg.Validate(); len(ps) > 0 {
			t.Fatalf("a world-readable secret file is a warning, not a problem: %v", ps)
		}
		if ws := cfg.Warnings(); !problemAt(ws, "carriers[0].password_file", "readable by every local user (mode 0644)") {
			t.Fatalf("got warnings %v, want one at carriers[0].password_file", ws)
		}
	})
}

// TestLoadConfig_ReadableConfigWithInlineSecrets: a configuration file
// readable by every local user is a warning when it holds secrets inline,
// naming them, and not when they are in files.
func TestLoadConfig_ReadableConfigWithInlineSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "carrier-a.password", "pw-file", 0o600)
	cs := writeFile(t, dir, "client-c.secret", "cb-secret", 0o600)
	for _, c := range []struct {
		name, carrier, client string
		perm                  os.FileMode
		want                  string // "" no warning
	}{
		{"InlineReadable", "password: pw-inl", "callback_secret: cb-inline", 0o644, "carriers[0].password, clients[0].callback_secret"},
		{"OneInlineReadable", "password_file: " + pw, "callback_secret: cb-inline", 0o604, "(clients[0].callback_secret)"},
		{"InlineGroupOnly", "password: pw-inl", "callback_secret: cb-inline", 0o640, ""},
		{"FilesReadable", "password_file: " + pw, "callback_secret_file: " + cs, 0o644, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, dir, c.name+".yaml", secretConfig(dir, c.carrier, c.client), c.perm)
			cfg, err := daemon.LoadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			ws := cfg.Warnings()
			if c.want == "" {
				if len(ws) > 0 {
					t.Fatalf("got warnings %v, want none", ws)
				}
				return
			}
			if !problemAt(ws, path, "readable by every local user") || !problemAt(ws, path, c.want) {
				t.Fatalf("got warnings %v, want one at %s naming %s", ws, path, c.want)
			}
			for _, w := range ws {
				if strings.Contains(w.Msg, "pw-inl") || strings.Contains(w.Msg, "cb-inline") {
					t.Fatalf("warning shows a secret: %s", w)
				}
			}
		})
	}
}

// TestGateway_ReloadRotatesPasswordFile: the carrier changes the account's
// password; the operator writes the new one to password_file and sends
// SIGHUP (ReloadFile): the carrier binds again with the new password,
// which the old one would not pass.
func TestGateway_ReloadRotatesPasswordFile(t *testing.T) {
	sim := startSim(t, smsc.Options{SystemID: "carrier-a", Password: "old-pw"})
	dir := t.TempDir()
	pwFile := writeFile(t, dir, "carrier-a.password", "old-pw\n", 0o600)
	y := configYAML(t, cfgOpts{dir: dir, simAddr: sim.Addr()})
	y = strings.Replace(y, "system_id: carrier-a, password: pw-a, binds: 2", "system_id: carrier-a, password_file: "+pwFile+", binds: 1", 1)
	path := writeFile(t, dir, "otpgate.yaml", y, 0o600)
	cfg, err := daemon.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	waitSimBound(t, sim, 1)
	forbidInLogs(t, "new-pw-2")
	forbidInLogs(t, "old-pw")

	sim.SetPassword("new-pw-2")
	writeFile(t, dir, "carrier-a.password", "new-pw-2\n", 0o600)
	before := sim.Stats()
	if err := g.d.ReloadFile(path); err != nil {
		t.Fatalf("reload: %v", err)
	}
	// The old session unbinds and a new one binds with the new password.
	for i := 0; sim.Stats().Binds == before.Binds || sim.Bound() != 1; i++ {
		if i > 1000 {
			t.Fatalf("no bind with the rotated password: %+v", sim.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := sim.Stats(); st.BindsRejected != before.BindsRejected {
		t.Fatalf("%d binds rejected: the old password was tried", st.BindsRejected-before.BindsRejected)
	}
	waitCarrierBound(t, g, "a")
	if code, body := send(t, g, "+91-9800000001"); code != 200 {
		t.Fatalf("send after rotation: %d %s", code, body)
	}
}
