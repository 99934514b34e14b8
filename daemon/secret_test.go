package daemon_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/otpgate/otpgate/daemon"
)

func TestLoadSecret_Creates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "otp.secret")
	key, err := daemon.LoadSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 65 || b[64] != '\n' || !bytes.Equal(key, b[:64]) {
		t.Fatalf("file holds %q, key %q: want 64 hex digits and a newline, the key its digits", b, key)
	}
	if _, err := hex.DecodeString(string(key)); err != nil {
		t.Fatalf("key %q is not hex", key)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %v, want only otp.secret (no temporary file left)", entries)
	}
	again, err := daemon.LoadSecret(path)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second load: got %q (%v), want the same key", again, err)
	}
}

// TestLoadSecret_Concurrent: processes that start together on a missing
// file all end up with the one key that was kept.
func TestLoadSecret_Concurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otp.secret")
	const n = 8
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := daemon.LoadSecret(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if !bytes.Equal(k, keys[0]) {
			t.Fatalf("load %d got key %q, load 0 %q: want one key", i, k, keys[0])
		}
	}
}

// TestLoadSecret_KeepsExistingKey: a file written by an earlier version
// (64 hex digits, a newline) gives the same key bytes as before, so that
// the codes in flight verify across the upgrade.
func TestLoadSecret_KeepsExistingKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otp.secret")
	text := strings.Repeat("0123456789abcdef", 4)
	if err := os.WriteFile(path, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := daemon.LoadSecret(path)
	if err != nil || string(key) != text {
		t.Fatalf("got %q (%v), want %q", key, err, text)
	}
}

func TestLoadSecret_Corrupt(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"Empty", "", "is empty"},
		{"Blank", " \n\n", "is empty"},
		{"NotHex", strings.Repeat("z", 64) + "\n", "is not hex"},
		{"Short", strings.Repeat("a", 63), "holds 63 characters, want 64 hex digits"},
		{"Long", strings.Repeat("a", 66), "holds 66 characters, want 64 hex digits"},
		{"Truncated", strings.Repeat("a", 32), "holds 32 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "otp.secret")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := daemon.LoadSecret(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, path, tc.want)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Fatalf("file changed to %q: a bad secret must be left to the operator", b)
			}
			// check-config and daemon.New say the same.
			cfg := testConfig(t, cfgOpts{simAddr: "127.0.0.1:1"})
			cfg.SecretFile = path
			ps := cfg.Validate()
			if len(ps) != 1 || ps[0].Path != "secret_file" || !strings.Contains(ps[0].Msg, path) || !strings.Contains(ps[0].Msg, tc.want) {
				t.Fatalf("Validate: got %v, want one secret_file problem naming the file", ps)
			}
			if _, err := daemon.New(cfg, nil); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("New: got %v, want an error naming %s", err, path)
			}
		})
	}
}
