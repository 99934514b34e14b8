package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// brokenStore is the real store whose record writes all fail, as on a
// full disk.
type brokenStore struct{ *store.DB }

func (brokenStore) UpdateOTP(context.Context, string, func(*otp.Record, bool) (otp.Change, error)) error {
	return errors.New("no space left on device")
}

// TestAPI_StoreUnavailable: the 503 row of the error table, on the wire,
// for send-otp and verify-otp, with no detail of the cause.
func TestAPI_StoreUnavailable(t *testing.T) {
	srv := httptest.NewServer(newHandlerWrapped(t, func(db *store.DB) otp.Store { return brokenStore{db} }))
	t.Cleanup(srv.Close)
	want := `{"error":{"name":"Error","message":"Service unavailable","status":503,"reason":"Error","type":"Service Unavailable","statusCode":503}}`
	for _, c := range []struct{ path, body string }{
		{"send-otp", `{"clientId":"` + clientID + `","phoneNumber":"+91-9876543210","channel":"smsotp","customTextId":"6"}`},
		{"verify-otp", `{"clientId":"` + clientID + `","phoneNumber":"+91-9876543210","otp":"123456"}`},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v3/otp-verification/"+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s: got %d %s, want 503 %s", c.path, resp.StatusCode, b, want)
		}
	}
}
