package ratelimit_test

import (
	"context"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/ratelimit"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// call is one AllowAt and its expected answer.
type call struct {
	key   string
	rate  float64
	burst int
	at    time.Time
	want  bool
}

func TestKeyed_AllowAt(t *testing.T) {
	tests := []struct {
		name  string
		calls []call
	}{
		{"Unlimited", []call{
			{"a", 0, 0, ms(0), true},
			{"a", 0, 0, ms(0), true},
			{"a", -1, 1, ms(0), true},
			{"a", math.NaN(), 1, ms(0), true},
			{"a", math.Inf(1), 1, ms(0), true},
			{"a", math.Inf(1), 1, ms(0), true},
		}},
		{"RateRaised", []call{
			{"a", 1, 1, ms(0), true},
			{"a", 1, 1, ms(100), false},
			{"a", 10, 1, ms(100), false}, // the new rate counts from the change
			{"a", 10, 1, ms(200), true},
		}},
		{"RateLowered", []call{
			{"a", 10, 1, ms(0), true},
			{"a", 1, 1, ms(0), false},
			{"a", 1, 1, ms(500), false},
			{"a", 1, 1, ms(1000), true},
		}},
		{"BurstRaised", []call{
			{"a", 1, 1, ms(0), true},
			{"a", 1, 3, ms(0), false}, // tokens are kept, not topped up
			{"a", 1, 3, ms(3000), true},
			{"a", 1, 3, ms(3000), true},
			{"a", 1, 3, ms(3000), true},
			{"a", 1, 3, ms(3000), false},
		}},
		{"BurstLowered", []call{
			{"a", 1, 5, ms(0), true},
			{"a", 1, 2, ms(0), true}, // the 4 tokens left are capped to 2
			{"a", 1, 2, ms(0), true},
			{"a", 1, 2, ms(0), false},
		}},
		{"TimeGoesBack", []call{
			{"a", 1, 1, ms(5000), true},
			{"a", 1, 1, ms(0), false},
			{"a", 1, 1, ms(6000), true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := ratelimit.New(nil)
			for i, c := range tt.calls {
				if got := k.AllowAt(c.key, c.rate, c.burst, c.at); got != c.want {
					t.Fatalf("call %d (%s at %v): got %v, want %v", i, c.key, c.at.Sub(t0), got, c.want)
				}
			}
		})
	}
}

// TestKeyed_Allow: an unlimited key needs no bucket. (Allow's contract,
// on the clock given to New, is storetest.RunLimiter's, in
// contract_test.go.)
func TestKeyed_Allow(t *testing.T) {
	k := ratelimit.New(nil)
	for range 3 {
		if !k.Allow("u", 0, 0) {
			t.Fatal("unlimited Allow: got false")
		}
	}
	if k.Len() != 0 {
		t.Fatalf("got Len %d, want 0", k.Len())
	}
}

func TestKeyed_Sweep(t *testing.T) {
	k := ratelimit.New(nil)
	k.AllowAt("idle", 1, 2, ms(0))  // 1 of 2 tokens left; full at 1s
	k.AllowAt("empty", 1, 2, ms(0)) // 0 left; full at 2s
	k.AllowAt("empty", 1, 2, ms(0))
	k.AllowAt("slow", 0.1, 1, ms(0)) // full at 10s
	k.AllowAt("fresh", 1, 2, ms(1500))

	steps := []struct {
		at      time.Time
		dropped int
		left    int
	}{
		{ms(0), 0, 4},
		{ms(999), 0, 4},
		{ms(1000), 1, 3},  // idle
		{ms(2000), 1, 2},  // empty
		{ms(2499), 0, 2},  // fresh has 1.999 tokens
		{ms(2500), 1, 1},  // fresh
		{ms(10000), 1, 0}, // slow
	}
	for _, s := range steps {
		if got := k.Sweep(s.at); got != s.dropped {
			t.Fatalf("Sweep(%v): got %d dropped, want %d", s.at.Sub(t0), got, s.dropped)
		}
		if got := k.Len(); got != s.left {
			t.Fatalf("after Sweep(%v): got Len %d, want %d", s.at.Sub(t0), got, s.left)
		}
	}
	// Lossless: the swept key starts over with a full bucket.
	for i, want := range []bool{true, true, false} {
		if got := k.AllowAt("empty", 1, 2, ms(10000)); got != want {
			t.Fatalf("call %d after sweep: got %v, want %v", i, got, want)
		}
	}
}

func TestKeyed_SweepShrinks(t *testing.T) {
	const n = 100_000
	k := ratelimit.New(nil)
	for i := range n {
		k.AllowAt(strconv.Itoa(i), 1, 1, ms(0))
	}
	if got := k.Len(); got != n {
		t.Fatalf("got Len %d, want %d", got, n)
	}
	if got := k.Sweep(ms(1000)); got != n {
		t.Fatalf("got %d dropped, want %d", got, n)
	}
	if got := k.Len(); got != 0 {
		t.Fatalf("got Len %d, want 0", got)
	}
	for i := range 10 {
		if !k.AllowAt(strconv.Itoa(i), 1, 1, ms(1000)) || k.AllowAt(strconv.Itoa(i), 1, 1, ms(1000)) {
			t.Fatalf("key %d after shrink: want one token", i)
		}
	}
}

// TestKeyed_Concurrent takes tokens from many goroutines while Sweep runs
// at the same instant: exactly burst calls per key pass, since a bucket is
// only dropped while nobody has taken from it.
func TestKeyed_Concurrent(t *testing.T) {
	const keys, burst, goroutines = 5000, 2, 4
	k := ratelimit.New(nil)
	names := make([]string, keys)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	var allowed atomic.Int64
	done := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				k.Sweep(ms(0))
			}
		}
	})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for _, key := range names {
				for range burst {
					if k.AllowAt(key, 0.001, burst, ms(0)) {
						allowed.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	close(done)
	sweeper.Wait()
	if got := allowed.Load(); got != keys*burst {
		t.Fatalf("got %d allowed, want %d", got, keys*burst)
	}
}

func TestKeyed_Run(t *testing.T) {
	var now atomic.Int64
	now.Store(t0.UnixNano())
	k := ratelimit.New(func() time.Time { return time.Unix(0, now.Load()) })
	k.Allow("a", 1, 1)
	now.Add(int64(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		k.Run(ctx, time.Millisecond)
		close(stopped)
	}()
	// Run sweeps at its first tick, a millisecond away; 10s is for a loaded
	// machine.
	for deadline := time.Now().Add(10 * time.Second); k.Len() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("Run never swept: %d buckets left", k.Len())
		}
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func BenchmarkAllow(b *testing.B) {
	k := ratelimit.New(nil)
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = "client/" + strconv.Itoa(i)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			k.Allow(keys[i%len(keys)], 1000, 100)
			i++
		}
	})
}

// BenchmarkKeyed1M inserts a million distinct keys and reports the heap they
// take per key, then the heap left once Sweep dropped them all.
func BenchmarkKeyed1M(b *testing.B) {
	const n = 1_000_000
	var ms0, ms1, ms2 runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		k := ratelimit.New(nil)
		for i := range n {
			k.AllowAt("919876"+strconv.Itoa(1_000_000+i), 1, 5, t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		if k.Len() != n {
			b.Fatalf("got Len %d, want %d", k.Len(), n)
		}
		if got := k.Sweep(t0.Add(time.Minute)); got != n {
			b.Fatalf("Sweep dropped %d, want %d", got, n)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms2)
		runtime.KeepAlive(k)
	}
	b.ReportMetric(float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/n, "B/key")
	b.ReportMetric(float64(int64(ms2.HeapAlloc)-int64(ms0.HeapAlloc)), "B-after-sweep")
}
