package smpp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// routerEnv has two simulators, "up1" and "up2", one carrier each, and a
// carrier "down" that never binds.
type routerEnv struct {
	sim1, sim2 *smsc.Server
	carriers   map[string]*smpp.Carrier
}

func newRouterEnv(tb testing.TB) *routerEnv {
	tb.Helper()
	e := &routerEnv{
		sim1: newSMSC(tb, smsc.Options{ReceiptDelay: -1}),
		sim2: newSMSC(tb, smsc.Options{ReceiptDelay: -1}),
	}
	e.carriers = map[string]*smpp.Carrier{
		"up1":  runCarrier(tb, carrierConfig("up1", e.sim1.Addr()), nil),
		"up2":  runCarrier(tb, carrierConfig("up2", e.sim2.Addr()), nil),
		"down": runCarrier(tb, carrierConfig("down", deadAddr(tb)), nil),
	}
	waitBound(tb, e.carriers["up1"], 1)
	waitBound(tb, e.carriers["up2"], 1)
	return e
}

func (e *routerEnv) router(tb testing.TB, routes ...smpp.Route) *smpp.Router {
	tb.Helper()
	r, err := smpp.NewRouter(routes, e.carriers, nil)
	if err != nil {
		tb.Fatalf("NewRouter: %v", err)
	}
	return r
}

func TestRouter_Send(t *testing.T) {
	e := newRouterEnv(t)
	r := e.router(t,
		smpp.Route{Countries: []string{"IN"}, Carriers: []string{"down", "up2"}},
		smpp.Route{Prefixes: []string{"+4477"}, Carriers: []string{"up1", "up2"}},
		smpp.Route{Countries: []string{"DE"}, Carriers: []string{"down"}},
		smpp.Route{Countries: []string{"FR"}, Carriers: []string{"up1", "up2"}},
	)
	send := func(t *testing.T, country, to string, d time.Duration) (otp.Sent, context.Context, error) {
		sms := testSMS("code 1234")
		sms.Country, sms.To = country, to
		ctx := ctxTimeout(t, d)
		sent, err := r.Send(ctx, sms)
		return sent, ctx, err
	}

	t.Run("OK", func(t *testing.T) {
		sent, _, err := send(t, "GB", "447700900123", 5*time.Second)
		if err != nil || sent.Carrier != "up1" || len(sent.MessageIDs) != 1 {
			t.Fatalf("got %+v, %v; want up1 with one id", sent, err)
		}
	})
	t.Run("FirstCarrierDown", func(t *testing.T) {
		sent, _, err := send(t, "IN", "919876543210", 5*time.Second)
		if err != nil || sent.Carrier != "up2" {
			t.Fatalf("got %+v, %v; want up2", sent, err)
		}
	})
	t.Run("RouteDownAtOnce", func(t *testing.T) {
		_, ctx, err := send(t, "DE", "4915112345678", 10*time.Second)
		if !errors.Is(err, otp.ErrUpstreamDown) || ctx.Err() != nil {
			t.Fatalf("got %v (ctx %v), want ErrUpstreamDown before the deadline", err, ctx.Err())
		}
	})
	// No route matches: ErrUpstreamDown at once (there is no ErrNoRoute),
	// and no carrier was tried.
	t.Run("NoRoute", func(t *testing.T) {
		before1, before2 := e.sim1.Stats().Submits, e.sim2.Stats().Submits
		_, ctx, err := send(t, "US", "12025550123", 10*time.Second)
		if !errors.Is(err, otp.ErrUpstreamDown) || ctx.Err() != nil || !strings.Contains(err.Error(), "no route for US") {
			t.Fatalf("got %v (ctx %v), want ErrUpstreamDown for want of a route, before the deadline", err, ctx.Err())
		}
		if e.sim1.Stats().Submits != before1 || e.sim2.Stats().Submits != before2 {
			t.Fatal("a number that no route matches reached a carrier")
		}
	})
	t.Run("ThrottledCarrierFailsOver", func(t *testing.T) {
		e.sim1.SetSubmitStatus(smpp.StatusThrottled)
		defer e.sim1.SetSubmitStatus(0)
		sent, _, err := send(t, "FR", "33612345678", 5*time.Second)
		if err != nil || sent.Carrier != "up2" {
			t.Fatalf("got %+v, %v; want up2", sent, err)
		}
	})
	t.Run("TemporaryErrorFailsOver", func(t *testing.T) {
		e.sim1.SetSubmitStatus(smpp.StatusSysErr)
		defer e.sim1.SetSubmitStatus(0)
		sent, _, err := send(t, "FR", "33612345678", 5*time.Second)
		if err != nil || sent.Carrier != "up2" {
			t.Fatalf("got %+v, %v; want up2", sent, err)
		}
	})
	t.Run("ErrInvalidNumber", func(t *testing.T) {
		// Every carrier of the route refuses the number itself.
		e.sim1.SetSubmitStatus(smpp.StatusInvDstAdr)
		e.sim2.SetSubmitStatus(smpp.StatusInvDstAdr)
		defer e.sim1.SetSubmitStatus(0)
		defer e.sim2.SetSubmitStatus(0)
		before := e.sim2.Stats().Submits
		_, _, err := send(t, "FR", "33612345678", 5*time.Second)
		if !errors.Is(err, otp.ErrInvalidNumber) {
			t.Fatalf("got %v, want ErrInvalidNumber", err)
		}
		if got := e.sim2.Stats().Submits; got != before+1 {
			t.Fatalf("second carrier got %d submits, want 1: one carrier's refusal does not speak for the route", got-before)
		}
	})
	t.Run("UnansweredNotRetried", func(t *testing.T) {
		// Unanswered, but for less than stall_timeout (3s): not passed on.
		e.sim1.SetNoAck(true)
		defer e.sim1.SetNoAck(false)
		before := e.sim2.Stats().Submits
		_, _, err := send(t, "FR", "33612345678", 200*time.Millisecond)
		if !errors.Is(err, otp.ErrUpstreamDown) {
			t.Fatalf("got %v, want ErrUpstreamDown", err)
		}
		if got := e.sim2.Stats().Submits; got != before {
			t.Fatal("an unanswered submit was sent again to the next carrier (duplicate OTP)")
		}
	})
	t.Run("AllThrottled", func(t *testing.T) {
		e.sim1.SetSubmitStatus(smpp.StatusThrottled)
		e.sim2.SetSubmitStatus(smpp.StatusMsgQFul)
		defer e.sim1.SetSubmitStatus(0)
		defer e.sim2.SetSubmitStatus(0)
		_, _, err := send(t, "FR", "33612345678", 300*time.Millisecond)
		if !errors.Is(err, otp.ErrUpstreamDown) {
			t.Fatalf("got %v, want ErrUpstreamDown", err)
		}
	})
}

func TestNewRouter_Errors(t *testing.T) {
	carriers := map[string]*smpp.Carrier{"a": smpp.NewCarrier(smpp.CarrierOptions{Name: "a"}, nil, nil)}
	tests := []struct {
		name  string
		route smpp.Route
	}{
		{"UnknownCarrier", smpp.Route{Countries: []string{"IN"}, Carriers: []string{"b"}}},
		{"NoCarriers", smpp.Route{Countries: []string{"IN"}}},
		{"MatchesNothing", smpp.Route{Carriers: []string{"a"}}},
		{"BadPrefix", smpp.Route{Prefixes: []string{"+44x"}, Carriers: []string{"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := smpp.NewRouter([]smpp.Route{tt.route}, carriers, nil); err == nil {
				t.Fatal("got nil, want an error")
			}
		})
	}
	if _, err := smpp.NewRouter([]smpp.Route{{Countries: []string{"*"}, Carriers: []string{"a"}}}, carriers, nil); err != nil {
		t.Fatalf("valid route: %v", err)
	}
}

// TestRouter_RecoversFromSMSCThrottling: an SMSC that takes 10 submits a
// second, from a carrier unlimited on our side, and five sends at once:
// every send succeeds, each message reaches the SMSC exactly once, the
// SMSC did throttle (or the test tested nothing), and the throttled
// submits were retried with back-off, not in a loop.
func TestRouter_RecoversFromSMSCThrottling(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetThrottle(10, 1)
	obs := &recorder{}
	cfg := carrierConfig("a", sim.Addr()) // unlimited on our side
	cfg.Observer = obs
	c := runCarrier(t, cfg, nil)
	waitBound(t, c, 1)
	r := routeAllTo(t, c)
	const n = 5
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			sms := testSMS(fmt.Sprintf("code %04d", i))
			sms.RequestID = fmt.Sprint("req-", i)
			_, err := r.Send(ctxTimeout(t, 10*time.Second), sms)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a Send outlived its 10s deadline")
		}
	}
	st := sim.Stats()
	if st.Accepted != n {
		t.Fatalf("accepted: got %d, want %d", st.Accepted, n)
	}
	seen := map[string]int{}
	for _, m := range sim.Messages() {
		seen[m.Text]++
	}
	for i := 0; i < n; i++ {
		if text := fmt.Sprintf("code %04d", i); seen[text] != 1 {
			t.Fatalf("%q accepted %d times, want once", text, seen[text])
		}
	}
	if st.Throttled == 0 {
		t.Fatal("the simulator never throttled: the test did not test throttling")
	}
	if got := obs.submits("throttled"); got != int(st.Throttled) {
		t.Fatalf("submits the carrier counted as throttled: got %d, want the SMSC's %d", got, st.Throttled)
	}
	// The router backs off 50ms doubling to 1s (a wait is at least half a
	// step): within its 10s deadline a send makes fewer than 25 passes, so
	// more throttles than that per send is a retry loop without back-off.
	if limit := uint64(25 * n); st.Throttled > limit {
		t.Fatalf("throttled %d times for %d sends, want at most %d: retries do not back off", st.Throttled, n, limit)
	}
}

// TestRouter_ThrottledFromTheStart: an SMSC that throttles every submit
// from the first (an account already at its cap), to a carrier unlimited
// on our side. Half of unlimited is unlimited, so the carrier's pace did
// not fall; now its first throttle sets 20/s, halved from there. Counted,
// not timed: the senders' 2 s deadlines bound the run.
func TestRouter_ThrottledFromTheStart(t *testing.T) {
	sim := newSMSC(t, smsc.Options{ReceiptDelay: -1})
	sim.SetSubmitStatus(0x58) // ESME_RTHROTTLED, always
	c := runCarrier(t, carrierConfig("a", sim.Addr()), nil)
	waitBound(t, c, 1)
	r := routeAllTo(t, c)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sms := testSMS(fmt.Sprintf("code %04d", i))
			sms.RequestID = fmt.Sprint("req-", i)
			if _, err := r.Send(ctxTimeout(t, 2*time.Second), sms); err == nil {
				t.Errorf("send %d: got nil, want an error: the SMSC took nothing", i)
			}
		})
	}
	wg.Wait()
	// The 20 first submits go at once (the bucket is unlimited until the
	// first throttle), then 20/s halved every 250 ms to its 1/s floor: 21
	// to 33 submits in 2 s. Without the finite rate the senders' back-off
	// alone bounds them: 131 to 136. 60 keeps the two apart.
	st := sim.Stats()
	t.Logf("%d submits, %d senders, 2 s", st.Submits, n)
	if st.Submits == 0 || st.Submits > 60 {
		t.Fatalf("the SMSC got %d submits from %d senders in 2 s, want 1 to 60: no back-off", st.Submits, n)
	}
}

// routeAllTo is a router sending every number through c, bound as "a".
func routeAllTo(t *testing.T, c *smpp.Carrier) *smpp.Router {
	t.Helper()
	r, err := smpp.NewRouter([]smpp.Route{{Countries: []string{"*"}, Carriers: []string{"a"}}},
		map[string]*smpp.Carrier{"a": c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{"+4477": "4477", " +1 ": "1", "4477": "", "+": "", "+44a": "", "": ""} {
		got, err := smpp.ParsePrefix(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("ParsePrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
