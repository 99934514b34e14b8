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

// TestGuard_MemoryPerRange measures the heap a tracked range costs, per
// table (the figures the documented bound is computed from): each must
// stay under 600 bytes with a client id of 24 bytes.
func TestGuard_MemoryPerRange(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates")
	}
	const n = 100_000
	cfg := guard.Defaults()
	cfg.RangeDigits = []int{4}
	cfg.MaxRanges = 2 * n
	cfg.VerifiedNumbers = 1
	sends := make([]guard.Send, n)
	for i := range sends {
		sends[i] = in("64c1115454eb66846d026abf", fmt.Sprintf("%06d0000", i))
	}
	tickets := make([]guard.Ticket, n)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	f := newGuard(t, cfg)
	h0 := heap()
	for i, s := range sends {
		tk, err := f.g.Admit(t0, s)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		tickets[i] = tk
	}
	h1 := heap()
	for _, tk := range tickets {
		f.g.Sent(tk, "carrier-a")
	}
	h2 := heap()
	st := f.g.Stats()
	client := float64(h1-h0) / float64(st.Ranges)
	carrier := float64(h2-h1) / float64(st.CarrierRanges)
	t.Logf("%d client ranges: %.0f bytes each; %d carrier ranges: %.0f bytes each", st.Ranges, client, st.CarrierRanges, carrier)
	if st.Ranges != n || st.CarrierRanges != n || client > 600 || carrier > 600 {
		t.Fatalf("got %d and %d ranges, %.0f and %.0f bytes each; want %d and under 600", st.Ranges, st.CarrierRanges, client, carrier, n)
	}
	runtime.KeepAlive(tickets)
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

// BenchmarkGuard_Verified is the guard's share of a verify-otp in the load
// tool's soak: codes sent over ten minutes to 65,536 numbers of 16 ranges
// of consecutive numbers, each verified once before the timer starts, so
// that every range converts and a verification looks for a conversion
// block to lift; under each range's key it finds the velocity block that
// the consecutive numbers raised (monitor mode, as in the soak) and keeps it.
func BenchmarkGuard_Verified(b *testing.B) {
	cfg := guard.Defaults()
	cfg.Mode = guard.ModeMonitor
	g, err := guard.New(cfg, guard.Options{Now: t0})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1 << 16
	vs := make([]guard.Verification, n)
	for i := range vs {
		s := in("c1", fmt.Sprintf("98%02d%06d", i%16, i/16))
		sent := t0.Add(time.Duration(i) * 10 * time.Minute / n)
		tk, err := g.Admit(sent, s)
		if err != nil {
			b.Fatal(err)
		}
		g.Sent(tk, "carrier-a")
		vs[i] = guard.Verification{Client: s.Client, Country: s.Country, CC: s.CC, National: s.National,
			SentAt: sent, Carrier: "carrier-a"}
	}
	now := t0.Add(10 * time.Minute)
	if len(g.Blocks(now)) == 0 {
		b.Fatal("no block raised: a verification would not look for one to lift")
	}
	for _, v := range vs {
		g.Verified(now, v)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.Verified(now, vs[seq.Add(1)%n])
		}
	})
}
