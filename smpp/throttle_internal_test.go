package smpp

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func (a *adaptive) current() rate.Limit {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur
}

func TestAdaptive_FollowsAcceptedRate(t *testing.T) {
	a := newAdaptive(1000, 1)
	t0 := time.Unix(1000, 0)
	// 200 accepted submits spread over one second: the SMSC takes 200/s.
	for i := 0; i < 200; i++ {
		a.accepted(t0.Add(time.Duration(i) * 5 * time.Millisecond))
	}
	t1 := t0.Add(time.Second)
	a.throttled(t1)
	if got := a.current(); got < 190 || got > 210 {
		t.Fatalf("after a throttle: got %v, want the accepted rate, about 200", got)
	}
	if a.lim.Limit() != a.current() {
		t.Fatalf("limiter at %v, want %v", a.lim.Limit(), a.current())
	}
	before := a.current()
	a.throttled(t1.Add(100 * time.Millisecond)) // the same burst of throttles
	if got := a.current(); got != before {
		t.Fatalf("second throttle within 250ms: got %v, want %v unchanged", got, before)
	}
	// No throttle for 3 s: +5 % a second, at least 1000/50.
	a.mu.Lock()
	a.recover(t1.Add(3 * time.Second))
	a.mu.Unlock()
	want := before
	for i := 0; i < 3; i++ {
		want = max(want*1.05, want+1000/50)
	}
	if got := a.current(); got < want*0.999 || got > want*1.001 {
		t.Fatalf("after 3 s: got %v, want %v", got, want)
	}
	a.mu.Lock()
	a.recover(t1.Add(10 * time.Minute))
	a.mu.Unlock()
	if got := a.current(); got != 1000 {
		t.Fatalf("after 10 min: got %v, want the configured 1000", got)
	}
}

func TestAdaptive_Floor(t *testing.T) {
	a := newAdaptive(160, 1)
	t0 := time.Unix(1000, 0)
	for i := 0; i < 10; i++ {
		a.throttled(t0.Add(time.Duration(i) * time.Second)) // nothing accepted at all
	}
	if got := a.current(); got != 10 {
		t.Fatalf("got %v, want the floor 160/16", got)
	}
	a.mu.Lock()
	a.recover(t0.Add(10 * time.Second)) // one second after the last throttle
	a.mu.Unlock()
	if got := a.current(); got != 10+160/50.0 {
		t.Fatalf("got %v, want the floor plus 160/50", got)
	}
}

func TestAdaptive_UnlimitedLearnsAndReturns(t *testing.T) {
	a := newAdaptive(0, 1)
	if a.current() != rate.Inf {
		t.Fatalf("got %v, want unlimited", a.current())
	}
	t0 := time.Unix(1000, 0)
	for i := 0; i < 50; i++ {
		a.accepted(t0.Add(time.Duration(i) * 20 * time.Millisecond))
	}
	a.throttled(t0.Add(time.Second))
	if got := a.current(); got < 45 || got > 55 {
		t.Fatalf("got %v, want about 50", got)
	}
	a.mu.Lock()
	a.recover(t0.Add(time.Hour))
	a.mu.Unlock()
	if got := a.current(); got != rate.Inf {
		t.Fatalf("after an hour: got %v, want unlimited again", got)
	}
}

// TestAdaptive_UnlimitedThrottledFromTheStart: an unlimited carrier whose
// SMSC throttles before taking any submit gets a finite rate at once (half
// of unlimited would stay unlimited), and halves it from there.
func TestAdaptive_UnlimitedThrottledFromTheStart(t *testing.T) {
	a := newAdaptive(0, 1)
	t0 := time.Unix(1000, 0)
	a.throttled(t0)
	if got := a.current(); got != unlimitedStep || a.lim.Limit() != got {
		t.Fatalf("got %v (limiter %v), want %v/s", got, a.lim.Limit(), rate.Limit(unlimitedStep))
	}
	a.throttled(t0.Add(decreaseEvery))
	if got := a.current(); got != unlimitedStep/2 {
		t.Fatalf("second throttle: got %v, want %v", got, rate.Limit(unlimitedStep/2))
	}
}

// TestAdaptive_Share: a fleet node holding half of a carrier's binds paces
// at half its tps; a rate lowered by throttling stays within the share,
// recovery stops at the share, and the whole comes back with all binds.
func TestAdaptive_Share(t *testing.T) {
	a := newAdaptive(100, 1)
	a.setShare(0.5)
	if got := a.current(); got != 50 || a.lim.Limit() != 50 {
		t.Fatalf("half the binds: got %v (limiter %v), want 50", got, a.lim.Limit())
	}
	a.setShare(0) // no binds: left as it was (the node forwards)
	if got := a.current(); got != 50 {
		t.Fatalf("share 0: got %v, want 50 unchanged", got)
	}
	t0 := time.Unix(2000, 0)
	a.throttled(t0) // nothing accepted: halved
	if got := a.current(); got != 25 {
		t.Fatalf("after a throttle: got %v, want 25", got)
	}
	a.mu.Lock()
	a.recover(t0.Add(time.Minute))
	a.mu.Unlock()
	if got := a.current(); got != 50 {
		t.Fatalf("recovered: got %v, want the share's 50", got)
	}
	a.setShare(1)
	if got := a.current(); got != 100 {
		t.Fatalf("all binds: got %v, want 100", got)
	}
	u := newAdaptive(0, 1) // unlimited stays unlimited
	u.setShare(0.5)
	if got := u.current(); got != rate.Inf {
		t.Fatalf("unlimited: got %v", got)
	}
}
