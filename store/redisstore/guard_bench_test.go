package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/guard"
	"github.com/otpgate/otpgate/store/redisstore"
)

// BenchmarkGuardShared is the guard's share of a send (Admit and Sent,
// from parallel goroutines, to ever new random numbers) with its state in
// this process ("memory") and shared through Redis ("redis", its Sync
// running every second as in the daemon): without a budget the send path
// reads only the node's cached blocks; a client with a budget costs one
// script call per send (x16: 32 sends in flight, as a busy gateway has,
// which share Redis's fsyncs). "blocked" is a send refused by a block (the
// attack's case): with Redis it asks the fleet whether the number
// verified.
func BenchmarkGuardShared(b *testing.B) {
	budget := guard.Defaults()
	budget.Clients = map[string]guard.ClientRules{"c1": {Budget: guard.Budget{PerHour: 1 << 30, PerDay: 1 << 30,
		Countries: map[string]guard.Limits{"IN": {PerDay: 1 << 30}}}}}
	for _, tc := range []struct {
		name   string
		cfg    guard.Config
		shared bool
		par    int // goroutines per CPU: sends in flight at once
	}{
		{"memory", guard.Defaults(), false, 1},
		{"redis", guard.Defaults(), true, 1},
		{"memory_budget", budget, false, 1},
		{"redis_budget", budget, true, 1},
		{"redis_budget_x16", budget, true, 16},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetParallelism(tc.par)
			g := benchGuard(b, tc.cfg, tc.shared)
			rng := rand.New(rand.NewPCG(11, 12))
			nums := make([]string, 1<<20) // more than b.N: every send to a new number, most to a new range
			for i := range nums {
				nums[i] = fmt.Sprintf("9%09d", rng.IntN(1e9))
			}
			now := time.Now()
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					tk, err := g.Admit(now.Add(time.Duration(i)*100*time.Microsecond), inNum("c1", nums[i%(1<<20)]))
					if err != nil {
						b.Fatal(err)
					}
					g.Sent(tk, "carrier-a")
				}
			})
		})
	}
	for _, shared := range []bool{false, true} {
		name := "blocked_memory"
		if shared {
			name = "blocked_redis"
		}
		b.Run(name, func(b *testing.B) {
			g := benchGuard(b, guard.Defaults(), shared)
			now := time.Now()
			for i := range 21 { // raise a velocity block on +91-987650xxxx
				g.Admit(now, inNum("c1", fmt.Sprintf("98765%05d", i)))
			}
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					if _, err := g.Admit(now, inNum("c1", fmt.Sprintf("98765%05d", 100+i%9000))); refusedBy(err) != guard.RuleVelocity {
						b.Fatalf("got %v, want refused", err)
					}
				}
			})
		})
	}
}

func benchGuard(b *testing.B, cfg guard.Config, shared bool) *guard.Guard {
	b.Helper()
	o := guard.Options{}
	if shared {
		o.Shared = open(b, redisstore.Options{})
	}
	g, err := guard.New(cfg, o)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return g
}
