package smpp

import (
	"testing"
	"time"
)

func TestValidityPeriod(t *testing.T) {
	now := time.Date(2026, 3, 9, 23, 58, 30, 750_000_000, time.FixedZone("IST", 5*3600+1800))
	tests := []struct {
		name    string
		opt     *submitOptions
		expires time.Time
		want    string
	}{
		{"TTLRelative", &submitOptions{validity: ValidityTTL}, now.Add(5 * time.Minute), "000000000500000R"},
		{"RoundsUp", &submitOptions{validity: ValidityTTL}, now.Add(4*time.Minute + time.Millisecond), "000000000401000R"},
		{"NeverZero", &submitOptions{validity: ValidityTTL}, now.Add(time.Millisecond), "000000000001000R"},
		{"AlreadyExpired", &submitOptions{validity: ValidityTTL}, now.Add(-time.Minute), "000000000001000R"},
		{"NoExpiry", &submitOptions{validity: ValidityTTL}, time.Time{}, ""},
		{"Days", &submitOptions{validity: ValidityFixed, period: 50*time.Hour + 61*time.Second}, time.Time{}, "000002020101000R"},
		{"Capped", &submitOptions{validity: ValidityFixed, period: 365 * 24 * time.Hour}, time.Time{}, "000099235959000R"},
		{"Fixed", &submitOptions{validity: ValidityFixed, period: 10 * time.Minute}, now.Add(time.Minute), "000000001000000R"},
		{"None", &submitOptions{validity: ValidityNone}, now.Add(time.Minute), ""},
		// now is 18:28:30.75 UTC; +5m crosses no day. Tenths truncated.
		{"Absolute", &submitOptions{validity: ValidityTTL, absolute: true}, now.Add(5*time.Minute + 90*time.Millisecond),
			"260309183330800+"},
		{"AbsoluteNextDay", &submitOptions{validity: ValidityFixed, period: 6 * time.Hour, absolute: true}, time.Time{},
			"260310002830700+"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.opt.validityPeriod(tt.expires, now); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("Learnt", func(t *testing.T) {
		o := &submitOptions{validity: ValidityTTL}
		o.noValidity.Store(true)
		if got := o.validityPeriod(now.Add(time.Minute), now); got != "" {
			t.Fatalf("got %q after the carrier refused validity, want none", got)
		}
	})
}
