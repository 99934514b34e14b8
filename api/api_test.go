package api_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/api"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/ratelimit"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
	"github.com/otpgate/otpgate/store"
)

const (
	clientID = "64c1115454eb66846d026abf"
	apiKey   = "fuzz-key"
)

// newHandler returns the API over a real store and a carrier bound to the
// bundled simulator.
func newHandler(tb testing.TB) http.Handler {
	tb.Helper()
	return newAPI(tb, apiOptions{})
}

// newHandlerWrapped is newHandler with the service's Store wrapped by wrap
// (nil: the store itself).
func newHandlerWrapped(tb testing.TB, wrap func(*store.DB) otp.Store) http.Handler {
	tb.Helper()
	return newAPI(tb, apiOptions{wrap: wrap})
}

// apiOptions vary newAPI.
type apiOptions struct {
	wrap   func(*store.DB) otp.Store // wraps the service's Store; nil: the store itself
	logger *slog.Logger              // the API's request log; nil discards
	resend time.Duration             // resend_interval
	access *api.Access               // trusted proxies and auth failure limit; nil: none
}

// Numbers newAPI treats specially: blockedNumber is on the block list;
// downNumber (GB) is routed to a carrier that never binds.
const (
	blockedNumber = "+1-9990000000"
	downNumber    = "+44-7400123456"
)

// newAPI returns the API of client clientID (key apiKey, max_attempts 3)
// over a real store, a carrier bound to the bundled simulator for every
// country but GB, and for GB a carrier whose SMSC is not there.
func newAPI(tb testing.TB, o apiOptions) http.Handler {
	tb.Helper()
	sim, err := smsc.Listen("127.0.0.1:0", smsc.Options{SystemID: "sim", Password: "pw", ReceiptDelay: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sim.Close() })
	db, err := store.Open(tb.TempDir(), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	receipts := otp.NewReceipts(db, nil)
	carriers := map[string]*smpp.Carrier{
		"sim":  smpp.NewCarrier(smpp.CarrierOptions{Name: "sim", Address: sim.Addr(), SystemID: "sim", Password: "pw"}, receipts, nil),
		"down": smpp.NewCarrier(smpp.CarrierOptions{Name: "down", Address: deadAddr(tb), SystemID: "sim", Password: "pw"}, receipts, nil),
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range carriers {
		wg.Go(func() { c.Run(ctx) })
	}
	tb.Cleanup(func() { cancel(); wg.Wait() })
	for i := 0; carriers["sim"].Bound() == 0; i++ {
		if i > 500 {
			tb.Fatal("carrier never bound")
		}
		time.Sleep(10 * time.Millisecond)
	}
	router, err := smpp.NewRouter([]smpp.Route{
		{Countries: []string{"GB"}, Carriers: []string{"down"}},
		{Countries: []string{"*"}, Carriers: []string{"sim"}},
	}, carriers, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl, _ := otp.ParseTemplate("Code ####")
	st, err := otp.NewSettings(otp.Policy{TTL: time.Minute, MaxAttempts: 3, SubmitTimeout: 2 * time.Second, ResendInterval: o.resend},
		[]otp.Client{{ID: clientID, KeyHashes: [][32]byte{sha(apiKey)}, Sender: "ACME", Countries: []string{"*"},
			Texts: map[string]otp.Template{"41": tmpl}}}, []string{"19990000000"})
	if err != nil {
		tb.Fatal(err)
	}
	var os otp.Store = db
	if o.wrap != nil {
		os = o.wrap(db)
	}
	svc, err := otp.NewService(st, otp.Options{Store: os, Receipts: db, Sender: router, Limiter: ratelimit.New(nil),
		Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		tb.Fatal(err)
	}
	opts := api.Options{Logger: o.logger}
	if o.access != nil {
		opts.Access, opts.AuthFailures = func() *api.Access { return o.access }, ratelimit.New(nil)
	}
	return api.New(svc, opts)
}

// deadAddr returns an address where nothing listens.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestDecodeBody(t *testing.T) {
	type body struct {
		A *string `json:"a"`
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"a":"x"}`, true},
		{` {"a":"x"} `, true},
		{`{"a":"x","extra":[1,2]}`, true},
		{`{"a":1}`, false},
		{`{"a":"x"}{}`, false},
		{`{"a":"x"} x`, false},
		{`{"a":"x"}]`, false},
		{`{"a":"x"} 1`, false},
		{"{\"a\":\"x\"}\n\t", true},
		{`[]`, false},
		{`"a"`, false},
		{``, false},
		{`{"a":"x"`, false},
	} {
		var b body
		err := api.DecodeBody([]byte(tc.in), &b)
		if (err == nil) != tc.ok {
			t.Fatalf("%q: got %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, otp.ErrUnprocessable) {
			t.Fatalf("%q: got %v, want ErrUnprocessable", tc.in, err)
		}
	}
}

// FuzzHandler sends arbitrary methods, paths, keys and bodies through the
// real handler: every answer is a documented status with a JSON body,
// never a 500, never a panic.
func FuzzHandler(f *testing.F) {
	h := newHandler(f)
	f.Add("POST", "/api/v3/otp-verification/send-otp", apiKey, `{"clientId":"`+clientID+`","phoneNumber":"+91-9876543210","channel":"smsotp","customTextId":"41"}`)
	f.Add("POST", "/api/v3/otp-verification/verify-otp", "Bearer "+apiKey, `{"clientId":"`+clientID+`","phoneNumber":"+91-9876543210","otp":"1234"}`)
	f.Add("GET", "/api/v3/otp-verification/status/abc", apiKey, ``)
	f.Add("POST", "/api/v3/otp-verification/send-otp", apiKey, `{"clientId":1}`)
	f.Add("POST", "/api/v3/otp-verification/verify-otp", apiKey, `{"otp":null}`)
	f.Add("PUT", "/x", "", `\x00`)
	allowed := map[int]bool{200: true, 400: true, 401: true, 404: true, 405: true, 409: true, 413: true, 422: true, 429: true}
	f.Fuzz(func(t *testing.T, method, path, key, body string) {
		if !validMethod(method) || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#?%") ||
			strings.ContainsAny(key, "\r\n\x00") {
			return // not something a client library can put on the wire
		}
		req, err := http.NewRequest(method, path, strings.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.Header.Set("Authorization", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("%s %s: got status %d body %s", method, path, rec.Code, rec.Body)
		}
		if !strings.HasPrefix(rec.Body.String(), "{") {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, rec.Body)
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS":
		return true
	}
	return false
}
