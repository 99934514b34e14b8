package smpp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

func TestSession_InactivityTimeout(t *testing.T) {
	t0 := time.Now() // before the bind_resp, the last PDU the peer sends
	s, p := startPeer(t, sessionConfig{EnquireLink: 20 * time.Millisecond, InactivityTimeout: 150 * time.Millisecond})
	if id, _, _, _ := p.read(); id != pdu.EnquireLinkID {
		t.Fatalf("got command %#x, want our enquire_link", uint32(id))
	}
	waitDead(t, s) // the peer never answers anything
	if !errors.Is(s.Err(), errInactive) {
		t.Fatalf("got %v, want errInactive", s.Err())
	}
	if el := time.Since(t0); el < 150*time.Millisecond {
		t.Fatalf("dropped after %v, before the 150ms inactivity timeout", el)
	}
}

// TestSession_AnyPDUIsLife: a peer that never answers our enquire_link but
// keeps sending its own keeps the session; once it stops, the session dies.
func TestSession_AnyPDUIsLife(t *testing.T) {
	s, p := startPeer(t, sessionConfig{EnquireLink: 20 * time.Millisecond, InactivityTimeout: 300 * time.Millisecond})
	// Our enquire_link and enquire_link_resp go unanswered; the peer's own
	// enquire_link comes every 30ms for 900ms, three inactivity timeouts.
	go io.Copy(io.Discard, p.conn)
	for i := uint32(1); i <= 30; i++ {
		p.write(frame(uint32(pdu.EnquireLinkID), 0, i, nil))
		time.Sleep(30 * time.Millisecond)
	}
	if !s.alive() {
		t.Fatalf("session died while the peer was sending: %v", s.Err())
	}
	waitDead(t, s)
	if !errors.Is(s.Err(), errInactive) {
		t.Fatalf("got %v, want errInactive", s.Err())
	}
}

// waitDead waits for s to die; it fails the test after 10s.
func waitDead(t *testing.T, s *session) {
	t.Helper()
	select {
	case <-s.dead:
	case <-time.After(10 * time.Second):
		t.Fatal("the session is still alive after 10s")
	}
}

func TestBindFailureReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("smpp: bind: %w", &StatusError{Status: StatusInvPaswd}), "invalid_password"},
		{fmt.Errorf("smpp: bind: %w", &StatusError{Status: StatusInvSysID}), "invalid_system_id"},
		{fmt.Errorf("smpp: bind: %w", &StatusError{Status: StatusInvSysTyp}), "invalid_system_type"},
		{fmt.Errorf("smpp: bind: %w", &StatusError{Status: StatusBindFail}), "refused"},
		{fmt.Errorf("smpp: bind: %w", errUnexpectedReply), "refused"},
		{fmt.Errorf("smpp: bind: read: %w", os.ErrDeadlineExceeded), "timeout"},
		{fmt.Errorf("smpp: %w: %w", errHandshake, context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("smpp: %w: %w", errHandshake, errors.New("x509: certificate signed by unknown authority")), "tls"},
		{fmt.Errorf("smpp: bind: read: %w", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}), "tls"},
		{fmt.Errorf("smpp: dial: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), "network"},
		{fmt.Errorf("smpp: bind: read: %w", io.EOF), "network"},
	}
	for _, tt := range tests {
		if got := bindFailureReason(tt.err); got != tt.want {
			t.Errorf("%v: got %q, want %q", tt.err, got, tt.want)
		}
	}
}

// within fails unless lo <= d <= hi.
func within(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d > hi {
		t.Fatalf("%s: got %v, want %v..%v", what, d, lo, hi)
	}
}

func TestCarrier_ReconnectWaits(t *testing.T) {
	const ms = time.Millisecond
	c := NewCarrier(CarrierOptions{ReconnectDelay: 100 * ms, ReconnectDelayMax: time.Second, StableAfter: time.Minute}, nil, nil)
	b := c.newBackoff()
	// Binds lost young: the step doubles from ReconnectDelay to the cap.
	for i, hi := range []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second} {
		within(t, fmt.Sprintf("young loss %d", i+1), c.lossWait(&b, time.Second), hi/2, hi)
	}
	// A stable bind is redialled at once and starts the back-off over.
	if w := c.lossWait(&b, time.Minute); w != 0 {
		t.Fatalf("stable loss: got %v, want 0", w)
	}
	within(t, "young loss after a stable one", c.lossWait(&b, 0), 50*ms, 100*ms)
	b.reset()
	within(t, "failed dial", c.failureWait(&b, reasonNetwork), 50*ms, 100*ms)

	// Defaults: a failed dial steps from 1s, a refused bind from 10s.
	d := NewCarrier(CarrierOptions{}, nil, nil)
	b = d.newBackoff()
	within(t, "failed dial", d.failureWait(&b, reasonTimeout), 500*ms, time.Second)
	within(t, "failed dial", d.failureWait(&b, reasonNetwork), time.Second, 2*time.Second)
	within(t, "refused bind", d.failureWait(&b, reasonRefused), 5*time.Second, 10*time.Second)
	within(t, "young loss", d.lossWait(&b, 59*time.Second), 10*time.Second, 20*time.Second)
	if w := d.lossWait(&b, time.Minute); w != 0 {
		t.Fatalf("loss after 60s: got %v, want 0", w)
	}
	// After long flapping, a failed dial still waits 30s at most, and the
	// flapping's step is kept.
	for range 10 {
		d.lossWait(&b, 0)
	}
	within(t, "failed dial after flapping", d.failureWait(&b, reasonNetwork), 15*time.Second, 30*time.Second)
	within(t, "young loss after flapping", d.lossWait(&b, 0), 150*time.Second, 5*time.Minute)
}

func TestAuthGate(t *testing.T) {
	g := newAuthGate()
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	if probe, ok := g.enter(short()); probe || !ok {
		t.Fatalf("open gate: got probe %v ok %v, want false true", probe, ok)
	}
	g.done(false, &StatusError{Status: StatusInvPaswd}, time.Hour)
	if _, ok := g.enter(short()); ok {
		t.Fatal("after a refusal: a bind went through before the retry delay")
	}
	g.retryNow()
	if probe, ok := g.enter(short()); !probe || !ok {
		t.Fatalf("after retryNow: got probe %v ok %v, want true true", probe, ok)
	}
	if _, ok := g.enter(short()); ok {
		t.Fatal("a second bind went through while the probe was under way")
	}
	g.done(true, errors.New("connection refused"), time.Hour) // no verdict: the next probe may go
	if probe, ok := g.enter(short()); !probe || !ok {
		t.Fatalf("after a probe that failed to connect: got probe %v ok %v, want true true", probe, ok)
	}
	g.done(true, nil, time.Hour)
	if probe, ok := g.enter(short()); probe || !ok {
		t.Fatalf("after a successful bind: got probe %v ok %v, want false true", probe, ok)
	}
}
