package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
)

// TestValidate_Store: check-config's rules for the store: section, and its
// defaults.
func TestValidate_Store(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "redis.pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		store string // the store: section
		want  string // a problem's path and text; "" for none
	}{
		{"Default", "", ""},
		{"Badger", "store: {backend: badger}", ""},
		{"BadgerIgnoresRedisKeys", "store: {backend: badger, redis: {on_shortfall: maybe}}", ""},
		{"Unknown", "store: {backend: etcd}", `store.backend: want badger or redis, got "etcd"`},
		{"Redis", `store: {backend: redis, redis: {addrs: ["10.0.0.1:7001", "10.0.0.2:7001"], on_shortfall: degrade, wait_timeout: 250ms}}`, ""},
		{"RedisNoAddrs", "store: {backend: redis}", "store.redis.addrs: needs the cluster's seed nodes"},
		{"RedisBadAddr", `store: {backend: redis, redis: {addrs: ["10.0.0.1"]}}`, `store.redis.addrs[0]: want host:port, got "10.0.0.1"`},
		{"RedisShortfall", `store: {backend: redis, redis: {addrs: ["h:1"], on_shortfall: ignore}}`, `store.redis.on_shortfall: want fail or degrade, got "ignore"`},
		{"RedisWait", `store: {backend: redis, redis: {addrs: ["h:1"], wait_timeout: 2m}}`, "store.redis.wait_timeout: must be positive and at most 1m0s"},
		{"RedisPrefix", `store: {backend: redis, redis: {addrs: ["h:1"], prefix: "a{b}:"}}`, "store.redis.prefix: must not hold { or }"},
		{"RedisPasswordFile", `store: {backend: redis, redis: {addrs: ["h:1"], password_file: "` + pwFile + `"}}`, ""},
		{"RedisPasswordBoth", `store: {backend: redis, redis: {addrs: ["h:1"], password: x, password_file: "` + pwFile + `"}}`, "store.redis.password_file: set together with password: keep one"},
		{"RedisPasswordFileMissing", `store: {backend: redis, redis: {addrs: ["h:1"], password_file: /nonexistent/pw}}`, "store.redis.password_file: open /nonexistent/pw"},
		{"RedisCAWithoutTLS", `store: {backend: redis, redis: {addrs: ["h:1"], tls_ca_file: "` + pwFile + `"}}`, "store.redis.tls_ca_file: needs tls: true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := configYAML(t, cfgOpts{simAddr: "127.0.0.1:1"}) + tt.store + "\n"
			wantProblem(t, y, tt.want)
		})
	}
	cfg, err := daemon.ParseConfig(strings.NewReader(`store: {backend: redis, redis: {addrs: ["h:1"], password_file: "` + pwFile + `"}}`))
	if err != nil || cfg.Store.Redis.Password != "s3cret" {
		t.Fatalf("password_file: got %v, want the file's password", err)
	}
	cfg, err = daemon.ParseConfig(strings.NewReader("listen: 127.0.0.1:9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Store; s.Backend != "badger" || s.Redis.OnShortfall != "fail" || s.Redis.WaitTimeout != daemon.Duration(time.Second) ||
		s.Redis.Prefix != "otpgate:" {
		t.Fatalf("defaults: got %+v", s)
	}
}

// wantProblem parses y, validates it and checks that the problems hold
// want ("" for none).
func wantProblem(t *testing.T, y, want string) {
	t.Helper()
	cfg, err := daemon.ParseConfig(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.Validate()
	if want == "" {
		if len(ps) > 0 {
			t.Fatalf("got %v, want no problem", ps)
		}
		return
	}
	if !strings.Contains(ps.Error(), want) {
		t.Fatalf("got %v, want %q", ps, want)
	}
}
