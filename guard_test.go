package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
)

// TestGuardCommand: `otpgate guard blocks` and `guard release` against a
// running gateway's admin port, with its token.
func TestGuardCommand(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tok, []byte("guard-test-token-0001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
admin: {token_file: %s}
data_dir: %s
log: {level: warn}
clients:
  - id: acme
    api_keys: ["%s"]
    sender: ACME
    countries: ["*"]
    rate: {per_second: 1000, burst: 1000}
carriers:
  - {name: sim, system_id: sim, password: pw, simulate: true}
routes:
  - {countries: ["*"], carriers: [sim]}
guard: {block_prefixes: ["+1-555"]}
`, tok, filepath.Join(dir, "data"), daemon.HashKey("acme-key-0001"))
	cfg, err := daemon.ParseConfig(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	api, admin := "http://"+d.Addr().String(), "http://"+d.AdminAddr().String()
	for i := 0; ; i++ {
		if resp, err := http.Get(api + "/readyz"); err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if i > 500 {
			t.Fatal("never ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 30 {
		body := fmt.Sprintf(`{"clientId":"acme","phoneNumber":"+91-987650%04d","channel":"smsotp","customTextId":"6"}`, i)
		req, _ := http.NewRequest("POST", api+"/api/v3/otp-verification/send-otp", strings.NewReader(body))
		req.Header.Set("Authorization", "acme-key-0001")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	if code, _, errs := runCmd(t, "", "guard", "blocks", "-admin", admin); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("without the token: got %d %s", code, errs)
	}
	code, out, errs := runCmd(t, "", "guard", "blocks", "-admin", admin, "-token-file", tok)
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), "velocity +91-987650xxxx acme block") ||
		!strings.Contains(out, "guard.block_prefixes entry +1-555") || !strings.Contains(out, "consecutive-looking") {
		t.Fatalf("blocks: got %d %s %s", code, out, errs)
	}
	// Flags after RANGE, as the usage shows them.
	code, out, errs = runCmd(t, "", "guard", "release", "+91-98765", "-admin", admin, "-token-file", tok)
	if code != 0 || !strings.Contains(out, "released velocity block of +91-987650xxxx for client acme") {
		t.Fatalf("release: got %d %s %s", code, out, errs)
	}
	code, out, errs = runCmd(t, "", "guard", "release", "-token-file", tok, "-admin", admin, "+1-5551234567")
	if code != 1 || !strings.Contains(out, "+1-555 is in guard.block_prefixes") {
		t.Fatalf("release of a configured prefix: got %d %s %s", code, out, errs)
	}
	if code, _, _ := runCmd(t, "", "guard", "release", "-admin", admin, "-token-file", tok, "x91"); code != 1 {
		t.Fatalf("bad range: got %d", code)
	}
	if code, _, _ := runCmd(t, "", "guard", "release"); code != 2 {
		t.Fatalf("no range: got %d", code)
	}
	if code, _, _ := runCmd(t, "", "guard", "nope"); code != 2 {
		t.Fatalf("unknown subcommand: got %d", code)
	}
}
