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
