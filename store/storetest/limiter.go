package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/otp"
)

// RunLimiter runs the contract of otp.Limiter against the limiters that
// open returns, one per case.
func RunLimiter(t *testing.T, open LimiterOpener) {
	t.Helper()
	for _, c := range limiterCases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			l := open(t, Options{Now: clk.now})
			if l == nil {
				t.Fatal("open returned a nil limiter")
			}
			c.run(t, l, clk)
		})
	}
}

// call is one Allow and its expected answer, after the clock moved by
// after.
type call struct {
	after time.Duration
	key   string
	rate  float64
	burst int
	want  bool
}

var limiterCases = []struct {
	name string
	run  func(t *testing.T, l otp.Limiter, clk *clock)
}{
	{"BurstThenRefusal", calls(
		call{0, "a", 1, 3, true}, call{0, "a", 1, 3, true}, call{0, "a", 1, 3, true},
		call{0, "a", 1, 3, false}, call{900 * time.Millisecond, "a", 1, 3, false},
	)},
	{"RefillAtRate", calls(
		call{0, "a", 2, 1, true}, call{0, "a", 2, 1, false},
		call{400 * time.Millisecond, "a", 2, 1, false},
		call{100 * time.Millisecond, "a", 2, 1, true}, call{0, "a", 2, 1, false},
		call{500 * time.Millisecond, "a", 2, 1, true},
	)},
	{"RefillCapsAtBurst", calls(
		call{0, "a", 1, 2, true}, call{0, "a", 1, 2, true},
		call{time.Hour, "a", 1, 2, true}, call{0, "a", 1, 2, true}, call{0, "a", 1, 2, false},
	)},
	{"KeysIndependent", calls(
		call{0, "client/a", 1, 1, true}, call{0, "client/a", 1, 1, false},
		call{0, "client/b", 1, 1, true}, call{0, "client/b", 1, 1, false},
		call{0, "client/", 1, 1, true}, call{0, "client/ab", 1, 1, true},
	)},
	{"SlowRate", calls(
		call{0, "a", 1.0 / 60, 1, true},
		call{59 * time.Second, "a", 1.0 / 60, 1, false},
		call{time.Second, "a", 1.0 / 60, 1, true},
	)},
	{"ZeroRateUnlimited", calls(
		call{0, "a", 0, 0, true}, call{0, "a", 0, 0, true}, call{0, "a", 0, 1, true},
		call{0, "a", -1, 1, true}, call{0, "a", -1, 1, true},
	)},
	{"BurstBelowOneIsOne", calls(
		call{0, "a", 1, 0, true}, call{0, "a", 1, 0, false},
		call{0, "b", 1, -5, true}, call{0, "b", 1, -5, false},
	)},
	{"Concurrent", testLimiterConcurrent},
}

// calls returns a case that makes cs in order.
func calls(cs ...call) func(*testing.T, otp.Limiter, *clock) {
	return func(t *testing.T, l otp.Limiter, clk *clock) {
		var elapsed time.Duration
		for i, c := range cs {
			clk.add(c.after)
			elapsed += c.after
			if got := l.Allow(c.key, c.rate, c.burst); got != c.want {
				t.Fatalf("call %d (%s at +%v, %v/s burst %d): got %v, want %v", i, c.key, elapsed, c.rate, c.burst, got, c.want)
			}
		}
	}
}

// testLimiterConcurrent: calls at the same instant take exactly burst
// tokens from a bucket, however many race for them.
func testLimiterConcurrent(t *testing.T, l otp.Limiter, _ *clock) {
	const burst = 10
	for k := range 3 {
		key := fmt.Sprintf("client/%d", k)
		var allowed atomic.Int64
		parallel(concurrency, func(int) {
			if l.Allow(key, 0.001, burst) {
				allowed.Add(1)
			}
		})
		if got := allowed.Load(); got != burst {
			t.Fatalf("%s: got %d allowed, want %d", key, got, burst)
		}
	}
}
