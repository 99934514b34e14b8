package daemon_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/daemon"
)

func TestSecret_Redacted(t *testing.T) {
	cfg, err := daemon.ParseConfig(strings.NewReader(`
carriers: [{name: a, address: "127.0.0.1:1", system_id: a, password: hunter2}]
clients: [{id: c, callback_url: "http://x", callback_secret: s3cr3t-value}]
`))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "carrier", cfg.Carriers[0], "password", cfg.Carriers[0].Password,
		"secret", cfg.Clients[0].CallbackSecret)
	out := buf.String() + fmt.Sprintf("%v %+v %#v", cfg.Carriers[0], cfg.Clients[0], cfg)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		out += fmt.Sprintf(verb, *cfg) + fmt.Sprintf(verb, cfg.Carriers[0].Password)
	}
	for _, s := range []string{"hunter2", "s3cr3t-value"} {
		if strings.Contains(out, s) {
			t.Fatalf("secret %q printed: %s", s, out)
		}
	}
}

func TestParseConfig_Defaults(t *testing.T) {
	cfg, err := daemon.ParseConfig(strings.NewReader("otp: {ttl: 2m}\nlisten: 127.0.0.1:9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OTP.TTL != daemon.Duration(120e9) || cfg.OTP.MaxAttempts != 5 || cfg.OTP.ResendInterval != daemon.Duration(30e9) ||
		cfg.SecretFile != "./data/otp.secret" || cfg.Log.Format != "json" {
		t.Fatalf("defaults: got %+v", cfg)
	}
	cfg, err = daemon.ParseConfig(strings.NewReader("otp: {resend_interval: 0s}\n"))
	if err != nil || cfg.OTP.ResendInterval != 0 {
		t.Fatalf("explicit 0s: got %v (%v), want 0", cfg.OTP.ResendInterval, err)
	}
	if _, err := daemon.ParseConfig(strings.NewReader("listne: x\n")); err == nil {
		t.Fatal("unknown key: got nil error")
	}
}

// TestConfigProblems_HideSecrets: a secret written where the file's syntax
// or an address's form is wrong does not reach the problem's text, which
// check-config prints and a rejected reload logs.
func TestConfigProblems_HideSecrets(t *testing.T) {
	parse := []struct {
		name, yaml, secret, want string
	}{
		{"UnquotedStar", `carriers: [{name: a, address: "127.0.0.1:1", system_id: a, password: *Qx7pw9}]`, "Qx7pw9",
			"unknown anchor (quote a value that starts with *)"},
		{"WrongType", "carriers: [{name: a, binds: Hunter2Pw}]", "Hunter", "line 1: cannot unmarshal !!str a value into int"},
	}
	for _, tt := range parse {
		t.Run(tt.name, func(t *testing.T) {
			_, err := daemon.ParseConfig(strings.NewReader(tt.yaml))
			if err == nil || strings.Contains(err.Error(), tt.secret) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q and not %q", err, tt.want, tt.secret)
			}
		})
	}
	addrs := []struct {
		name   string
		edit   func(*daemon.Config)
		secret string
		want   string
	}{
		{"CarrierURL", func(c *daemon.Config) { c.Carriers[0].Address = "smpp://sysid:SmppPw99@smsc.example:2775" }, "SmppPw99",
			`carriers[0].address: want host:port, got "…@smsc.example:2775"`},
		{"RedisURL", func(c *daemon.Config) {
			c.Store.Backend = "redis"
			c.Store.Redis.Addrs = []string{"redis://:S3cretRedisPw@redis.internal:6379"}
		}, "S3cretRedisPw", `store.redis.addrs[0]: want host:port, got "…@redis.internal:6379"`},
	}
	for _, tt := range addrs {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := daemon.ParseConfig(strings.NewReader(configYAML(t, cfgOpts{simAddr: "127.0.0.1:1"})))
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(cfg)
			checkProblems(t, cfg.Validate().Error(), tt.want, tt.secret)
		})
	}
}

func checkProblems(t *testing.T, got, want, secret string) {
	t.Helper()
	if strings.Contains(got, secret) || !strings.Contains(got, want) {
		t.Fatalf("got %s\nwant %q and not %q", got, want, secret)
	}
}
