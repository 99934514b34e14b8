package otp_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/guard"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/ratelimit"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
	"github.com/otpgate/otpgate/store"
)

// clock is a settable time source shared by the service and the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a Service over a real badger store and a real SMPP carrier
// bound to the bundled simulator.
type harness struct {
	svc   *otp.Service
	db    *store.DB
	sim   *smsc.Server
	clock *clock
	deps  otp.Options // what svc was built with, for services over the same parts
}

const (
	client = "c1"
	apiKey = "key-1"
)

func newHarness(t *testing.T, p otp.Policy) *harness {
	t.Helper()
	return newHarnessWrapped(t, p, nil)
}

// newHarnessWrapped is newHarness with the service's Store wrapped by wrap
// (nil: the store itself), for decorators that make writes fail.
func newHarnessWrapped(t *testing.T, p otp.Policy, wrap func(*store.DB) otp.Store) *harness {
	t.Helper()
	return newHarnessGuarded(t, p, wrap, nil)
}

// newHarnessGuarded is newHarnessWrapped with a pumping guard (nil: none).
func newHarnessGuarded(t *testing.T, p otp.Policy, wrap func(*store.DB) otp.Store, g *guard.Guard) *harness {
	t.Helper()
	sim, err := smsc.Listen("127.0.0.1:0", smsc.Options{SystemID: "sim", Password: "pw", ReceiptDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	clk := &clock{t: time.Now()}
	db, err := store.Open(t.TempDir(), store.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	car := smpp.NewCarrier(smpp.CarrierOptions{Name: "sim", Address: sim.Addr(), SystemID: "sim", Password: "pw", Window: 16},
		otp.NewReceipts(db, nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { car.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; car.Bound() == 0; i++ {
		if i > 500 {
			t.Fatal("carrier never bound")
		}
		time.Sleep(10 * time.Millisecond)
	}
	router, err := smpp.NewRouter([]smpp.Route{{Countries: []string{"*"}, Carriers: []string{"sim"}}},
		map[string]*smpp.Carrier{"sim": car}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.SubmitTimeout == 0 {
		p.SubmitTimeout = 5 * time.Second
	}
	st, err := otp.NewSettings(p, []otp.Client{{ID: client, Sender: "ACME", Countries: []string{"*"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var os otp.Store = db
	if wrap != nil {
		os = wrap(db)
	}
	deps := otp.Options{Store: os, Receipts: db, Sender: router, Limiter: ratelimit.New(clk.Now),
		Secret: []byte(strings.Repeat("s", 32)), Now: clk.Now, Guard: g}
	svc, err := otp.NewService(st, deps)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{svc: svc, db: db, sim: sim, clock: clk, deps: deps}
}

var digits = regexp.MustCompile(`\d+`)

// send sends to number and returns the code the simulated handset got.
func (h *harness) send(t *testing.T, number string) string {
	t.Helper()
	before := len(h.sim.Messages())
	if _, err := h.svc.Send(context.Background(), otp.SendRequest{AuthClientID: client, ClientID: client,
		PhoneNumber: number, Channel: otp.Channel, CustomTextID: "6"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := h.sim.Messages()
	if len(msgs) != before+1 {
		t.Fatalf("got %d new SMS, want 1", len(msgs)-before)
	}
	return digits.FindString(msgs[len(msgs)-1].Text)
}

func (h *harness) verify(number, code string) error {
	_, err := h.svc.Verify(context.Background(), otp.VerifyRequest{AuthClientID: client, ClientID: client,
		PhoneNumber: number, OTP: code})
	return err
}

func wrongCode(c string) string {
	b := []byte(c)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
	return string(b)
}

func TestService_VerifyConcurrent(t *testing.T) {
	h := newHarness(t, otp.Policy{TTL: time.Minute, MaxAttempts: 5})
	t.Run("OneSuccess", func(t *testing.T) {
		code := h.send(t, "+91-9876543210")
		errs := make(chan error, 32)
		var wg sync.WaitGroup
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- h.verify("+91-9876543210", code) }()
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, otp.ErrNotFound):
			default:
				t.Fatalf("got %v, want nil or ErrNotFound", err)
			}
		}
		if ok != 1 {
			t.Fatalf("got %d successes, want exactly 1", ok)
		}
	})
	t.Run("AttemptsNeverExceeded", func(t *testing.T) {
		code := h.send(t, "+91-9876543211")
		errs := make(chan error, 40)
		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- h.verify("+91-9876543211", wrongCode(code)) }()
		}
		wg.Wait()
		close(errs)
		invalid, locked := 0, 0
		for err := range errs {
			switch {
			case errors.Is(err, otp.ErrInvalidOTP):
				invalid++
			case errors.Is(err, otp.ErrMaxAttempts):
				locked++
			default:
				t.Fatalf("got %v", err)
			}
		}
		if invalid != 5 || locked != 35 {
			t.Fatalf("got %d invalid and %d locked, want 5 and 35", invalid, locked)
		}
		rec, err := h.db.GetOTP(context.Background(), otp.RecordKey(client, "919876543211"))
		if err != nil || rec.Attempts != 5 {
			t.Fatalf("got attempts %d (%v), want 5", rec.Attempts, err)
		}
		if err := h.verify("+91-9876543211", code); !errors.Is(err, otp.ErrMaxAttempts) {
			t.Fatalf("right code while locked: got %v, want ErrMaxAttempts", err)
		}
	})
}

func TestService_Expiry(t *testing.T) {
	h := newHarness(t, otp.Policy{TTL: time.Minute, MaxAttempts: 3})
	code := h.send(t, "+91-9876543210")
	h.clock.Add(time.Minute)
	if err := h.verify("+91-9876543210", code); !errors.Is(err, otp.ErrNotFound) {
		t.Fatalf("after ttl: got %v, want ErrNotFound", err)
	}
}

func TestService_LockLiftsAfterTTL(t *testing.T) {
	h := newHarness(t, otp.Policy{TTL: time.Minute, MaxAttempts: 2})
	code := h.send(t, "+91-9876543210")
	for i := 0; i < 2; i++ {
		if err := h.verify("+91-9876543210", wrongCode(code)); !errors.Is(err, otp.ErrInvalidOTP) {
			t.Fatalf("guess %d: got %v", i, err)
		}
	}
	h.clock.Add(30 * time.Second)
	code = h.send(t, "+91-9876543210") // a resend does not lift the lock
	if err := h.verify("+91-9876543210", code); !errors.Is(err, otp.ErrMaxAttempts) {
		t.Fatalf("right code during lock: got %v, want ErrMaxAttempts", err)
	}
	h.clock.Add(31 * time.Second) // ttl since the last wrong guess; the new code still lives
	if err := h.verify("+91-9876543210", code); err != nil {
		t.Fatalf("after the lock: got %v, want nil", err)
	}
}

func TestService_HourlyCapSlides(t *testing.T) {
	h := newHarness(t, otp.Policy{TTL: time.Minute, MaxAttempts: 3, ResendInterval: 10 * time.Second, MaxPerNumberPerHour: 2})
	h.send(t, "+91-9876543210")
	_, err := h.svc.Send(context.Background(), otp.SendRequest{AuthClientID: client, ClientID: client,
		PhoneNumber: "+91-9876543210", Channel: otp.Channel, CustomTextID: "6"})
	if !errors.Is(err, otp.ErrTooManyRequests) {
		t.Fatalf("resend within interval: got %v, want ErrTooManyRequests", err)
	}
	h.clock.Add(10 * time.Second)
	h.send(t, "+91-9876543210")
	h.clock.Add(10 * time.Second)
	_, err = h.svc.Send(context.Background(), otp.SendRequest{AuthClientID: client, ClientID: client,
		PhoneNumber: "+91-9876543210", Channel: otp.Channel, CustomTextID: "6"})
	if !errors.Is(err, otp.ErrTooManyRequests) {
		t.Fatalf("third send in the hour: got %v, want ErrTooManyRequests", err)
	}
	h.clock.Add(time.Hour - 19*time.Second) // the first send leaves the window
	h.send(t, "+91-9876543210")
}

// TestService_CodeHash: the stored hash is HMAC-SHA256 keyed by the
// secret over the client, the number and the code, so a code verifies only
// with the secret it was hashed with, and a stored hash says nothing about
// the code of another number or another client.
func TestService_CodeHash(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, otp.Policy{TTL: time.Minute, MaxAttempts: 5})
	const number, e164 = "+91-9876543210", "919876543210"
	code := h.send(t, number)
	key := otp.RecordKey(client, e164)
	rec, err := h.db.GetOTP(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	// The layout is a stored format: changing it makes every live code fail
	// to verify across an upgrade.
	mac := hmac.New(sha256.New, h.deps.Secret)
	mac.Write([]byte(client + "/" + e164 + "\x00" + code))
	if !hmac.Equal(rec.CodeHash, mac.Sum(nil)) {
		t.Errorf("stored hash %x, want HMAC-SHA256(secret, client/number NUL code) %x", rec.CodeHash, mac.Sum(nil))
	}
	// service returns a Service over h's parts with the given secret and
	// clients.
	service := func(t *testing.T, secret string, clients ...string) *otp.Service {
		t.Helper()
		var cs []otp.Client
		for _, id := range clients {
			cs = append(cs, otp.Client{ID: id, Sender: "ACME", Countries: []string{"*"}})
		}
		st, err := otp.NewSettings(otp.Policy{TTL: time.Minute, MaxAttempts: 5, SubmitTimeout: time.Second}, cs, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := h.deps
		d.Secret = []byte(secret)
		svc, err := otp.NewService(st, d)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	verify := func(svc *otp.Service, clientID, number string) error {
		_, err := svc.Verify(ctx, otp.VerifyRequest{AuthClientID: clientID, ClientID: clientID, PhoneNumber: number, OTP: code})
		return err
	}
	// copyRecord stores rec under another client's or number's key.
	copyRecord := func(t *testing.T, to string) {
		t.Helper()
		err := h.db.UpdateOTP(ctx, to, func(r *otp.Record, _ bool) (otp.Change, error) {
			*r = rec
			r.Key = to
			return otp.Put, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("OtherSecret", func(t *testing.T) {
		svc := service(t, strings.Repeat("t", 32), client)
		if err := verify(svc, client, number); !errors.Is(err, otp.ErrInvalidOTP) {
			t.Fatalf("right code, other secret: got %v, want ErrInvalidOTP", err)
		}
	})
	t.Run("OtherNumber", func(t *testing.T) {
		copyRecord(t, otp.RecordKey(client, "919876543211"))
		if err := h.verify("+91-9876543211", code); !errors.Is(err, otp.ErrInvalidOTP) {
			t.Fatalf("another number's hash: got %v, want ErrInvalidOTP", err)
		}
	})
	t.Run("OtherClient", func(t *testing.T) {
		copyRecord(t, otp.RecordKey("c2", e164))
		svc := service(t, string(h.deps.Secret), client, "c2")
		if err := verify(svc, "c2", number); !errors.Is(err, otp.ErrInvalidOTP) {
			t.Fatalf("another client's hash: got %v, want ErrInvalidOTP", err)
		}
	})
	t.Run("OtherCode", func(t *testing.T) {
		if err := h.verify(number, wrongCode(code)); !errors.Is(err, otp.ErrInvalidOTP) {
			t.Fatalf("wrong code: got %v, want ErrInvalidOTP", err)
		}
	})
	// With its own secret, client and number the code verifies.
	if err := h.verify(number, code); err != nil {
		t.Fatalf("right code: got %v, want nil", err)
	}
}

// TestService_SuccessResetsAttempts: a successful verify clears the wrong
// guesses, so the next code gets max_attempts of its own.
func TestService_SuccessResetsAttempts(t *testing.T) {
	h := newHarness(t, otp.Policy{TTL: time.Minute, MaxAttempts: 2})
	code := h.send(t, "+91-9876543210")
	if err := h.verify("+91-9876543210", wrongCode(code)); !errors.Is(err, otp.ErrInvalidOTP) {
		t.Fatalf("wrong guess: got %v", err)
	}
	if err := h.verify("+91-9876543210", code); err != nil {
		t.Fatalf("right code: got %v", err)
	}
	code = h.send(t, "+91-9876543210")
	if err := h.verify("+91-9876543210", wrongCode(code)); !errors.Is(err, otp.ErrInvalidOTP) {
		t.Fatalf("wrong guess on the new code: got %v", err)
	}
	// Without the reset, this would be the third wrong guess in all: locked.
	if err := h.verify("+91-9876543210", code); err != nil {
		t.Fatalf("right new code after one wrong guess: got %v, want nil", err)
	}
}
