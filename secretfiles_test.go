package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfig_SecretFiles: check-config reads password_file, and flags
// (as a warning, exit 0) a secret file and a config with inline secrets
// that every local user can read, without printing the secret.
func TestCheckConfig_SecretFiles(t *testing.T) {
	demo, err := os.ReadFile("configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string, perm os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pw := write("sim.password", "simpw-f\n", 0o644)
	cfg := write("files.yaml", strings.Replace(string(demo), "password: simpw", "password_file: "+pw, 1), 0o644)
	code, out, errs := runCmd(t, "", "check-config", "-config", cfg)
	if code != 0 || !strings.HasSuffix(out, ": ok\n") {
		t.Fatalf("password_file: got %d %q %s, want ok", code, out, errs)
	}
	if !strings.Contains(errs, "carriers[0].password_file: "+pw+" is readable by every local user (mode 0644)") {
		t.Fatalf("world-readable password file: got %q, want the warning", errs)
	}
	inline := write("inline.yaml", string(demo), 0o644)
	code, _, errs = runCmd(t, "", "check-config", "-config", inline)
	if code != 0 || !strings.Contains(errs, inline+": readable by every local user (mode 0644) and holds secrets inline (carriers[0].password") {
		t.Fatalf("world-readable config with an inline password: got %d %q, want the warning", code, errs)
	}
	if strings.Contains(errs, "simpw") {
		t.Fatal("check-config printed a password")
	}
}
