package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
)

// TestStatusAndCarrierCommands: `otpgate status` and `otpgate carrier
// suspend|resume` against a running gateway's admin port (the demo config
// with its simulated carrier), with the admin token.
func TestStatusAndCarrierCommands(t *testing.T) {
	demo, err := os.ReadFile("configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	token := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.NewReplacer("listen: 127.0.0.1:8080", "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nadmin: {token_file: "+token+"}",
		"./data/demo", filepath.Join(dir, "data")).Replace(string(demo))
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon not ready")
	}
	admin := "http://" + d.AdminAddr().String()

	status := func() string {
		t.Helper()
		code, out, errs := runCmd(t, "", "status", "-admin", admin, "-token-file", token)
		if code != 0 {
			t.Fatalf("status: %d %s", code, errs)
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for out := status(); !strings.Contains(out, "sim      bound"); out = status() {
		if time.Now().After(deadline) {
			t.Fatalf("status never showed sim bound:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := status(); !strings.HasPrefix(out, "CARRIER  STATE") || !strings.Contains(out, "2/2") || !strings.Contains(out, "500") {
		t.Fatalf("status:\n%s", out)
	}

	code, out, errs := runCmd(t, "", "carrier", "suspend", "sim", "-admin", admin, "-token-file", token)
	if code != 0 || !strings.Contains(out, "sim      suspended  0/2") {
		t.Fatalf("carrier suspend: %d %q %s", code, out, errs)
	}
	if out := status(); !strings.Contains(out, "suspended") {
		t.Fatalf("status after suspend:\n%s", out)
	}
	code, out, errs = runCmd(t, "", "carrier", "-admin", admin, "-token-file", token, "resume", "sim")
	if code != 0 || strings.Contains(out, "suspended") {
		t.Fatalf("carrier resume: %d %q %s", code, out, errs)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "-admin", admin}, 1, "401 Unauthorized"},
		{[]string{"carrier", "suspend", "nope", "-admin", admin, "-token-file", token}, 1, "404 Not Found: no carrier of that name"},
		{[]string{"carrier", "pause", "sim", "-admin", admin}, 2, "usage: otpgate carrier"},
		{[]string{"carrier", "suspend", "-admin", admin}, 2, "usage: otpgate carrier"},
		{[]string{"status", "extra", "-admin", admin}, 2, "unexpected argument"},
		{[]string{"status", "-token-file", filepath.Join(dir, "missing")}, 2, "no such file"},
	} {
		code, _, errs := runCmd(t, "", c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: got %d %q, want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}
