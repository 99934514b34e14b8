package guard_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/guard"
)

// TestGuard_Bounded: an attacker sending to ever new numbers and ranges
// cannot grow the guard past its caps.
func TestGuard_Bounded(t *testing.T) {
	cfg := guard.Defaults()
	cfg.MaxRanges, cfg.MaxBlocks = 1000, 50
	f := newGuard(t, cfg)
	now := t0
	for i := range 50000 {
		// Consecutive numbers in ever new ranges, from a few clients:
		// blocks are raised all along.
		s := in(fmt.Sprintf("c%d", i%3), fmt.Sprintf("9%05d%04d", i/30, i%30))
		now = now.Add(time.Millisecond)
		f.send(now, s)
		f.verify(now, now, in("c9", fmt.Sprintf("8%09d", i)))
	}
	st := f.g.Stats()
	if st.Ranges > 1024 || st.CarrierRanges > 1024 || st.Blocks > 50 {
		t.Fatalf("got %+v, want at most 1024 ranges per table and 50 blocks", st)
	}
	if st.Blocks < 50 {
		t.Fatalf("got %d blocks: the test meant to fill the table", st.Blocks)
	}
}

// TestGuard_MemoryPerRange measures the heap a tracked range costs (the
// figure the README's bound is computed from): it must stay under 700
// bytes per range and table.
func TestGuard_MemoryPerRange(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates")
	}
	const n = 100_000
	cfg := guard.Defaults()
	cfg.RangeDigits = []int{4}
	cfg.MaxRanges = n
	cfg.VerifiedNumbers = 1
	sends := make([]guard.Send, n)
	for i := range sends {
		sends[i] = in("64c1115454eb66846d026abf", fmt.Sprintf("%06d0000", i))
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f := newGuard(t, cfg)
	for i, s := range sends {
		tk, err := f.g.Admit(t0, s)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		f.g.Sent(tk, "carrier-a")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := f.g.Stats()
	per := float64(after.HeapAlloc-before.HeapAlloc) / float64(st.Ranges+st.CarrierRanges)
	t.Logf("%d client ranges + %d carrier ranges: %.0f bytes per range (client id of 24 bytes)", st.Ranges, st.CarrierRanges, per)
	if per > 700 {
		t.Fatalf("got %.0f bytes per range, want under 700", per)
	}
	runtime.KeepAlive(f)
}

// BenchmarkGuard_AdmitSent is the guard's share of a send: Admit and Sent
// for logins to ever new random numbers (so mostly new ranges: the
// costlier case) at 10,000 a second, from parallel goroutines.
func BenchmarkGuard_AdmitSent(b *testing.B) {
	g, err := guard.New(guard.Defaults(), guard.Options{Now: t0})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	nums := make([]string, 1<<20) // more than b.N: every send to a new number, most to a new range
	for i := range nums {
		nums[i] = fmt.Sprintf("9%09d", rng.IntN(1e9))
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			tk, err := g.Admit(t0.Add(time.Duration(i)*100*time.Microsecond), in("64c1115454eb66846d026abf", nums[i%(1<<20)]))
			if err != nil {
				b.Fatal(err)
			}
			g.Sent(tk, "carrier-a")
		}
	})
}
