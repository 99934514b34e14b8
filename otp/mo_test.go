package otp_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

func moSettings(t *testing.T) *otp.Settings {
	t.Helper()
	s, err := otp.NewSettings(otp.Policy{TTL: time.Minute, MaxAttempts: 3, SubmitTimeout: time.Second}, []otp.Client{
		{ID: "alpha", Sender: "Acme", MOCallbackURL: "https://a.example/mo", CallbackSecret: "s"},
		{ID: "numeric", Sender: "+4477001", MOCallbackURL: "https://n.example/mo", CallbackSecret: "s"},
		{ID: "quiet", Sender: "QUIET"},
		{ID: "second", Sender: "ACME", MOCallbackURL: "https://second.example/mo", CallbackSecret: "s"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInbox_HandleMO(t *testing.T) {
	tests := []struct {
		name             string
		mo               otp.MO
		client, from     string // "" client: dropped
		wantLogged, hide string
	}{
		{"International", otp.MO{From: "919876543210", FromTON: 1, To: "ACME"}, "alpha", "+919876543210", "+91-98******10", "9876543210"},
		{"InternationalWithPlus", otp.MO{From: "+919876543210", FromTON: 1, To: "acme "}, "alpha", "+919876543210", "+91-98******10", "9876543210"},
		{"UnknownTONWithCountryCode", otp.MO{From: "00919876543210", FromTON: 0, To: "ACME"}, "alpha", "+919876543210", "+91-98******10", "9876543210"},
		{"National", otp.MO{From: "9876543210", FromTON: 2, To: "ACME"}, "alpha", "9876543210", "********10", "9876543210"},
		{"Alphanumeric", otp.MO{From: "BANK", FromTON: 5, To: "ACME"}, "alpha", "BANK", "**NK", ""},
		{"NumericSender", otp.MO{From: "447700900123", FromTON: 1, To: "004477001"}, "numeric", "+447700900123", "+44-77******23", "7700900123"},
		{"NoMOURL", otp.MO{From: "919876543210", FromTON: 1, To: "QUIET"}, "", "", "+91-98******10", "9876543210"},
		{"NoSuchSender", otp.MO{From: "919876543210", FromTON: 1, To: "OTHER"}, "", "", "+91-98******10", "9876543210"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(t.TempDir(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var logs bytes.Buffer
			in := otp.NewInbox(db, func() *otp.Settings { return moSettings(t) }, slog.New(slog.NewJSONHandler(&logs, nil)))
			var mu sync.Mutex
			counted := 0
			in.Received = func(carrier string) {
				mu.Lock()
				defer mu.Unlock()
				if carrier == "a" {
					counted++
				}
			}
			mo := tt.mo
			mo.Carrier, mo.Text, mo.ReceivedAt = "a", "my secret reply", time.Now().UTC().Truncate(time.Second)
			if err := in.HandleMO(ctx, mo); err != nil {
				t.Fatal(err)
			}
			cbs, err := db.DueCallbacks(ctx, time.Now().Add(time.Minute), 10)
			if err != nil {
				t.Fatal(err)
			}
			if tt.client == "" {
				if len(cbs) != 0 {
					t.Fatalf("queued %+v, want nothing", cbs)
				}
			} else {
				if len(cbs) != 1 {
					t.Fatalf("queued %+v, want one", cbs)
				}
				cb := cbs[0]
				if cb.Kind != otp.CallbackMO || cb.ClientID != tt.client || cb.From != tt.from || cb.To != mo.To ||
					cb.Text != mo.Text || cb.Carrier != "a" || !cb.DoneAt.Equal(mo.ReceivedAt) || cb.ID == "" {
					t.Fatalf("queued %+v, want %s from %s", cb, tt.client, tt.from)
				}
			}
			if counted != 1 {
				t.Fatalf("counted %d, want 1", counted)
			}
			out := logs.String()
			if !strings.Contains(out, `"from":"`+tt.wantLogged+`"`) {
				t.Fatalf("log %s lacks from %s", out, tt.wantLogged)
			}
			if (tt.hide != "" && strings.Contains(out, tt.hide)) || strings.Contains(out, "secret reply") {
				t.Fatalf("log holds the number or the text: %s", out)
			}
		})
	}
}

type failingQueue struct{}

func (failingQueue) QueueCallback(context.Context, otp.Callback) error {
	return errors.New("disk full")
}

// TestInbox_Errors: an MO that cannot be queued, or that comes before the
// settings exist, is an error (the SMSC is asked to resend) and is not
// counted.
func TestInbox_Errors(t *testing.T) {
	counted := 0
	in := otp.NewInbox(failingQueue{}, func() *otp.Settings { return moSettings(t) }, nil)
	in.Received = func(string) { counted++ }
	if err := in.HandleMO(context.Background(), otp.MO{From: "919876543210", FromTON: 1, To: "ACME"}); err == nil {
		t.Fatal("queue failure: got nil error")
	}
	in = otp.NewInbox(failingQueue{}, func() *otp.Settings { return nil }, nil)
	if err := in.HandleMO(context.Background(), otp.MO{To: "ACME"}); !errors.Is(err, otp.ErrNoSettings) {
		t.Fatalf("no settings: got %v, want ErrNoSettings", err)
	}
	if counted != 0 {
		t.Fatalf("counted %d, want 0", counted)
	}
}

func TestSettings_CallbackFor(t *testing.T) {
	s := moSettings(t)
	if u, sec, ok := s.CallbackFor("alpha", otp.CallbackMO); !ok || u != "https://a.example/mo" || sec != "s" {
		t.Fatalf("MO: got %q %q %v", u, sec, ok)
	}
	if _, _, ok := s.CallbackFor("alpha", otp.CallbackReceipt); ok {
		t.Fatal("receipt URL of a client without callback_url: got ok")
	}
	if _, _, ok := s.CallbackFor("quiet", otp.CallbackMO); ok {
		t.Fatal("MO URL of a client without mo_callback_url: got ok")
	}
}
