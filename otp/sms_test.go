package otp_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

func TestMergeTLVs(t *testing.T) {
	a := otp.TLV{Tag: 0x1400, Value: []byte("client")}
	b := otp.TLV{Tag: 0x1401, Value: []byte("client-template")}
	a2 := otp.TLV{Tag: 0x1400, Value: []byte("text")}
	c := otp.TLV{Tag: 0x1500, Value: []byte("text-only")}
	tests := []struct {
		name       string
		base, over []otp.TLV
		want       []otp.TLV
	}{
		{"Empty", nil, nil, nil},
		{"BaseOnly", []otp.TLV{a, b}, nil, []otp.TLV{a, b}},
		{"OverOnly", nil, []otp.TLV{c}, []otp.TLV{c}},
		{"OverWinsInPlace", []otp.TLV{a, b}, []otp.TLV{c, a2}, []otp.TLV{a2, b, c}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := append([]otp.TLV(nil), tt.base...)
			if got := otp.MergeTLVs(tt.base, tt.over); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(base, tt.base) {
				t.Fatalf("base changed to %v", tt.base)
			}
		})
	}
}

func TestNewSettings_TextTLVs(t *testing.T) {
	p := otp.Policy{TTL: time.Minute, MaxAttempts: 3, SubmitTimeout: time.Second}
	tpl, _ := otp.ParseTemplate("Login ####")
	ok := otp.Client{ID: "c", Texts: map[string]otp.Template{"41": tpl},
		TextTLVs: map[string][]otp.TLV{"41": {{Tag: 1}}, "6": {{Tag: 1}}}}
	if _, err := otp.NewSettings(p, []otp.Client{ok}, nil); err != nil {
		t.Fatalf("custom and default text: got %v, want nil", err)
	}
	bad := otp.Client{ID: "c", TextTLVs: map[string][]otp.TLV{"42": {{Tag: 1}}}}
	if _, err := otp.NewSettings(p, []otp.Client{bad}, nil); err == nil {
		t.Fatal("TLVs of an unknown text: got nil error")
	}
}

// TestService_SMSFields follows a send to the simulator: the client's and
// the text's TLVs arrive merged, and the validity_period is the code's
// remaining lifetime.
func TestService_SMSFields(t *testing.T) {
	ttl := 3 * time.Minute
	h := newHarness(t, otp.Policy{TTL: ttl, MaxAttempts: 3})
	tpl, err := otp.ParseTemplate("Login code ####")
	if err != nil {
		t.Fatal(err)
	}
	st, err := otp.NewSettings(h.svc.Settings().Policy, []otp.Client{{ID: client, Sender: "ACME", Countries: []string{"*"},
		Texts: map[string]otp.Template{"41": tpl},
		TLVs:  []otp.TLV{{Tag: 0x1400, Value: []byte("PE")}, {Tag: 0x1401, Value: []byte("client-template")}},
		TextTLVs: map[string][]otp.TLV{
			"41": {{Tag: 0x1401, Value: []byte("T41")}},
			"6":  {{Tag: 0x1401, Value: []byte("T6")}, {Tag: 0x1402, Value: []byte{0}}},
		}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.svc.Swap(st)
	tests := []struct {
		text string
		want map[uint16][]byte
	}{
		{"41", map[uint16][]byte{0x1400: []byte("PE"), 0x1401: []byte("T41")}},
		{"6", map[uint16][]byte{0x1400: []byte("PE"), 0x1401: []byte("T6"), 0x1402: {0}}},
		{"7", map[uint16][]byte{0x1400: []byte("PE"), 0x1401: []byte("client-template")}},
	}
	for i, tt := range tests {
		t.Run("Text"+tt.text, func(t *testing.T) {
			number := fmt.Sprintf("+91-98765432%02d", i)
			if _, err := h.svc.Send(context.Background(), otp.SendRequest{AuthClientID: client, ClientID: client,
				PhoneNumber: number, Channel: otp.Channel, CustomTextID: tt.text}); err != nil {
				t.Fatalf("send: %v", err)
			}
			msgs := h.sim.Messages()
			m := msgs[len(msgs)-1]
			if !reflect.DeepEqual(m.TLVs, tt.want) {
				t.Fatalf("TLVs: got %x, want %x", m.TLVs, tt.want)
			}
			// The harness clock stands still, so the expiry is ttl after
			// it; the carrier counts from the real clock, which has moved on.
			vp := m.ValidityPeriod
			var mm, ss int
			if _, err := fmt.Sscanf(vp, "00000000%02d%02d000R", &mm, &ss); err != nil {
				t.Fatalf("validity_period %q: %v", vp, err)
			}
			if d := time.Duration(mm*60+ss) * time.Second; d > ttl || d < ttl-time.Minute {
				t.Fatalf("validity_period %q: got %s, want about %s", vp, d, ttl)
			}
		})
	}
}
