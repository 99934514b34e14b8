package smpp

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestAdaptive_HalvesAndRecovers(t *testing.T) {
	a := newAdaptive(160, 1)
	t0 := time.Unix(1000, 0)
	recoverAt := func(t time.Time) func() {
		return func() {
			a.mu.Lock()
			a.recover(t)
			a.mu.Unlock()
		}
	}
	steps := []struct {
		name  string
		do    func()
		limit rate.Limit
	}{
		{"Throttle1", func() { a.throttled(t0) }, 80},
		{"Throttle2", func() { a.throttled(t0) }, 40},
		{"Throttle3", func() { a.throttled(t0) }, 20},
		{"Floor", func() { a.throttled(t0); a.throttled(t0) }, 10}, // 160/16
		{"HalfSecondNoChange", recoverAt(t0.Add(500 * time.Millisecond)), 10},
		{"OneSecond", recoverAt(t0.Add(time.Second)), 30}, // +160/8
		{"ThreeSeconds", recoverAt(t0.Add(3 * time.Second)), 70},
		{"Capped", recoverAt(t0.Add(time.Minute)), 160},
	}
	for _, s := range steps {
		s.do()
		a.mu.Lock()
		got := a.cur
		a.mu.Unlock()
		if got != s.limit || a.lim.Limit() != s.limit {
			t.Fatalf("%s: got %v (limiter %v), want %v", s.name, got, a.lim.Limit(), s.limit)
		}
	}
}

func TestAdaptive_Pause(t *testing.T) {
	a := newAdaptive(0, 1) // unlimited: only the pause applies
	now := time.Now()
	for i, want := range []time.Duration{50, 100, 200, 400, 800, 1600, 2000, 2000} {
		a.throttled(now)
		if a.pause != want*time.Millisecond {
			t.Fatalf("throttle %d: got pause %s, want %s", i+1, a.pause, want*time.Millisecond)
		}
	}
	// A deadline inside the pause fails at once with ErrThrottled.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.wait(ctx); !errors.Is(err, ErrThrottled) || ctx.Err() != nil {
		t.Fatalf("wait: got %v, want ErrThrottled at once", err)
	}
	a.accepted()
	if a.pause != 0 {
		t.Fatalf("pause after an accepted submit: got %s, want 0", a.pause)
	}
}
