package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHashKey(t *testing.T) {
	code, out, _ := runCmd(t, "trial-key-0001\n", "hash-key")
	// sha256("trial-key-0001"), as configs/demo.yaml holds it.
	demo, err := os.ReadFile("configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.HasPrefix(out, "sha256:") || !strings.Contains(string(demo), strings.TrimSpace(out)) {
		t.Fatalf("got %d %q, want the demo key's hash", code, out)
	}
	if code, _, errs := runCmd(t, "", "hash-key"); code != 1 || !strings.Contains(errs, "empty key") {
		t.Fatalf("empty stdin: got %d %q", code, errs)
	}
}

func TestCheckConfig(t *testing.T) {
	for _, f := range []string{"configs/demo.yaml", "configs/otpgate.yaml"} {
		if code, out, errs := runCmd(t, "", "check-config", "-config", f); code != 0 {
			t.Fatalf("%s: got %d %s %s, want ok", f, code, out, errs)
		}
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "otp.secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("x", 40)), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := `
listen: nowhere
secret_file: ` + secret + `
submit_timeout: soon
clients:
  - id: a
    api_keys: ["sha256:00"]
    sender: ACME
    countries: ["*", "ZZ"]
    custom_texts: {"6": "Code ######", "41": "no hash", "42": "#########", "43": "## and ##"}
  - id: a
    api_keys: []
    sender: ACME
    countries: [IN]
    callback_url: "ftp://x"
    callback_secret: s
carriers:
  - {name: x, address: "127.0.0.1:2775", system_id: x, password: toolongpassword, mode: fast}
  - {name: x, address: "nope", system_id: y}
routes:
  - countries: [IN]
    carriers: [x, ghost]
  - prefixes: ["44"]
    carriers: []
blocked_numbers: ["123"]
auth_failures_per_minute: -1
trusted_proxies: ["10.0.0.0/33"]
`
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	// A bad duration stops the parse: it is reported alone, with its line.
	code, _, errs := runCmd(t, "", "check-config", "-config", path)
	if code != 1 || !strings.Contains(errs, "line 4") || !strings.Contains(errs, `bad duration "soon"`) {
		t.Fatalf("bad duration: got %d %s", code, errs)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(bad, "submit_timeout: soon", "submit_timeout: 0s", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCmd(t, "", "check-config", "-config", path)
	if code != 1 {
		t.Fatalf("got exit %d, want 1", code)
	}
	for _, want := range []string{
		"listen: want host:port",
		"secret_file: " + secret + " is readable by others",
		"submit_timeout: must be positive",
		"clients[0].api_keys[0]: want sha256: and 64 hex digits",
		`clients[0].countries[1]: unknown country "ZZ"`,
		`clients[0].custom_texts.6: id "6" clashes with the default templates`,
		"clients[0].custom_texts.41: template has no '#'",
		"clients[0].custom_texts.42: template has 9 '#', at most 8",
		"clients[0].custom_texts.43: template has more than one run of '#'",
		`clients[1].id: duplicate of clients[0].id "a"`,
		"clients[1].api_keys: no key",
		"clients[1].callback_url: want an absolute http:// or https:// URL",
		"carriers[0].password: longer than 8 characters",
		`carriers[0].mode: want transceiver or transmitter+receiver, got "fast"`,
		`carriers[1].name: duplicate of carriers[0].name "x"`,
		`carriers[1].address: want host:port, got "nope"`,
		`routes[0].carriers[1]: unknown carrier "ghost"`,
		`routes[1].prefixes[0]: want "+" and digits, got "44"`,
		"routes[1].carriers: empty",
		`blocked_numbers[0]: not a valid number "123"`,
		"auth_failures_per_minute: must not be negative",
		`trusted_proxies[0]: want a CIDR like 10.0.0.0/8 or an address, got "10.0.0.0/33"`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "toolongpassword") {
		t.Fatal("check-config printed a password")
	}
	if code, _, errs := runCmd(t, "", "check-config", "-config", filepath.Join(dir, "missing.yaml")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Fatalf("missing file: got %d %s", code, errs)
	}
	if code, _, errs := runCmd(t, "", "check-config", "-config", path, "-bogus"); code != 2 || errs == "" {
		t.Fatalf("bad flag: got %d %q", code, errs)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCmd(t, "", "version"); code != 0 || !strings.HasPrefix(out, "otpgate ") {
		t.Fatalf("version: got %d %q", code, out)
	}
	if code, _, errs := runCmd(t, ""); code != 2 || !strings.Contains(errs, "usage:") {
		t.Fatalf("no command: got %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, "", "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Fatalf("unknown command: got %d %q", code, errs)
	}
}

// TestCheckConfig_Warnings: a password of 9 to 16 characters is a warning
// (printed, exit 0); longer is a problem. The demo's simulated carrier is
// a warning too: its SMS texts, codes included, go to the log.
func TestCheckConfig_Warnings(t *testing.T) {
	demo, err := os.ReadFile("configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(pw string) string {
		y := strings.Replace(string(demo), "password: simpw", "password: "+pw, 1)
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const long = "sixteen-chars-pw"
	code, out, errs := runCmd(t, "", "check-config", "-config", write(long))
	if code != 0 || !strings.HasSuffix(out, ": ok\n") {
		t.Fatalf("16 characters: got %d %q %s, want ok", code, out, errs)
	}
	if !strings.Contains(errs, "2 warning(s)") || !strings.Contains(errs, "carriers[0].password: longer than 8 characters") ||
		!strings.Contains(errs, "carriers[0].simulate: the bundled simulator takes this carrier's SMS") {
		t.Fatalf("16 characters: got %q, want the warning", errs)
	}
	code, _, errs = runCmd(t, "", "check-config", "-config", write(long+"x"))
	if code != 1 || !strings.Contains(errs, "carriers[0].password: longer than 16 characters") {
		t.Fatalf("17 characters: got %d %s, want the problem", code, errs)
	}
	if strings.Contains(errs, long) {
		t.Fatal("check-config printed a password")
	}
}

// TestBench_Flags: `otpgate bench` refuses bad flags (2) and fails (1) when
// no gateway gets ready.
func TestBench_Flags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "-nope"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("unknown flag: got exit %d, want 2", code)
	}
	if code := run([]string{"bench", "extra"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("extra argument: got exit %d, want 2", code)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cpu, heap := filepath.Join(dir, "cpu.pb.gz"), filepath.Join(dir, "heap.pb.gz")
	args := []string{"bench", "-url", "http://" + addr, "-wait", "300ms", "-cpuprofile", cpu, "-memprofile", heap}
	if code := run(args, nil, &stdout, &stderr); code != 1 {
		t.Errorf("no gateway: got exit %d, want 1", code)
	}
	// A failed run still leaves its profiles: gzipped protocol buffers.
	for _, p := range []string{cpu, heap} {
		if b, err := os.ReadFile(p); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("profile %s: %d bytes, %v; want a gzipped profile", filepath.Base(p), len(b), err)
		}
	}
	stderr.Reset()
	if code := run([]string{"bench", "-url", "http://" + addr, "-wait", "1ms", "-memprofile", filepath.Join(dir, "no", "such", "dir")}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("unwritable -memprofile: got exit %d, want 1", code)
	}
	// Refused before the run: no word of the gateway it would have waited for.
	if errs := stderr.String(); !strings.Contains(errs, "no such file") || strings.Contains(errs, addr) {
		t.Errorf("unwritable -memprofile: stderr %q, want the file's error alone", errs)
	}
}

// TestRunAndFleetAdopt_BadConfig: run and fleet adopt load -config the same
// way: a bad flag exits 2, a file that does not load exits 1 naming it.
func TestRunAndFleetAdopt_BadConfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for _, cmd := range [][]string{{"run"}, {"fleet", "adopt"}} {
		if code, _, errs := runCmd(t, "", append(cmd, "-bogus")...); code != 2 || !strings.Contains(errs, "-bogus") {
			t.Errorf("%v -bogus: got %d %q", cmd, code, errs)
		}
		if code, _, errs := runCmd(t, "", append(cmd, "-config", missing)...); code != 1 || !strings.Contains(errs, missing) {
			t.Errorf("%v -config %s: got %d %q", cmd, missing, code, errs)
		}
	}
	if code, _, errs := runCmd(t, "", "fleet"); code != 2 || !strings.Contains(errs, "usage: otpgate fleet adopt") {
		t.Errorf("fleet: got %d %q", code, errs)
	}
}
