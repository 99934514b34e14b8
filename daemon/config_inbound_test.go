package daemon_test

import (
	"strings"
	"testing"
)

// TestValidate_Inbound: check-config's rules for mo_callback_url and
// receipt_timezone.
func TestValidate_Inbound(t *testing.T) {
	tests := []struct {
		name string
		edit func(y string) string
		want string // a problem's path and text; "" for none
	}{
		{"MOWithSecret", func(y string) string {
			return strings.Replace(y, "sender: OTPGATE", "sender: OTPGATE\n    mo_callback_url: https://a.example/mo\n    callback_secret: s3cret-0001", 1)
		}, ""},
		{"MOWithoutSecret", func(y string) string {
			return strings.Replace(y, "sender: OTPGATE", "sender: OTPGATE\n    mo_callback_url: https://a.example/mo", 1)
		}, "clients[0].mo_callback_url: needs callback_secret"},
		{"MONotAURL", func(y string) string {
			return strings.Replace(y, "sender: OTPGATE", "sender: OTPGATE\n    mo_callback_url: /mo\n    callback_secret: s3cret-0001", 1)
		}, "clients[0].mo_callback_url: want an absolute"},
		{"MOSameSender", func(y string) string {
			y = strings.Replace(y, "sender: OTPGATE", "sender: \"+12345\"\n    mo_callback_url: https://a.example/mo\n    callback_secret: s3cret-0001", 1)
			return strings.Replace(y, `sender: "12345"`, "sender: \"12345\"\n    mo_callback_url: https://b.example/mo\n    callback_secret: s3cret-0002", 1)
		}, `clients[1].mo_callback_url: clients[0] has the same sender`},
		{"Timezone", func(y string) string {
			return strings.Replace(y, "password: pw-a,", "password: pw-a, receipt_timezone: Asia/Kolkata,", 1)
		}, ""},
		{"TimezoneUnknown", func(y string) string {
			return strings.Replace(y, "password: pw-a,", "password: pw-a, receipt_timezone: Mars/Olympus,", 1)
		}, `carriers[0].receipt_timezone: unknown time zone "Mars/Olympus"`},
		{"TimezoneLocal", func(y string) string {
			return strings.Replace(y, "password: pw-a,", "password: pw-a, receipt_timezone: Local,", 1)
		}, "carriers[0].receipt_timezone: name the carrier's zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.edit(configYAML(t, cfgOpts{simAddr: "127.0.0.1:1"}))
			wantProblem(t, y, tt.want)
		})
	}
}
