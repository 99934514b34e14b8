package daemon_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
)

// TestFleet_MasterKilled kills a Redis master (SIGKILL) while two nodes
// take sends: every send answered 200 verifies once the cluster is whole
// again, and every other answer during the failover is a 503, never a
// 200 that is later lost nor a 500. It logs when writes were accepted
// again.
func TestFleet_MasterKilled(t *testing.T) {
	f := startFleet(t, 2, cfgOpts{submitTimout: "5s"}, func(cfg *daemon.Config) {
		cfg.Clients[0].Rate = daemon.RateConfig{PerSecond: 1e6, Burst: 1e6}
		cfg.Guard.Mode = "monitor" // consecutive numbers at full speed
		cfg.Store.Redis.WaitTimeout = daemon.Duration(2 * time.Second)
		// A bind holds through a failover shorter than two thirds of the
		// lease (renewals of keys on the dead master fail meanwhile): 20 s
		// here, for a loaded machine's slow failover.
		cfg.Fleet.BindLease = daemon.Duration(30 * time.Second)
	})
	client := benchClient()
	var (
		mu      sync.Mutex
		acked   []string
		codes   = map[int]int{}
		stop    = make(chan struct{})
		lastOK  atomic.Int64 // unix ns of the latest 200
		killed  atomic.Int64
		firstOK atomic.Int64 // first 200 of a send started after the kill, unix ns
	)
	node := func(w int) string { return f.nodes[w%2].url }
	wg := sendUntil(client, 8, "+91-7", node, stop, func(s sendOutcome) bool {
		if s.err != nil {
			t.Errorf("send %s: %v", s.number, s.err)
			return false
		}
		mu.Lock()
		codes[s.code]++
		if s.code == 200 {
			acked = append(acked, s.number)
		}
		mu.Unlock()
		if s.code == 200 {
			lastOK.Store(time.Now().UnixNano())
			if k := killed.Load(); k != 0 && s.began.UnixNano() > k {
				firstOK.CompareAndSwap(0, time.Now().UnixNano())
			}
		}
		return true
	})
	waitFor(t, 60*time.Second, "100 sends answered 200", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 100
	})
	victim := f.cluster.Masters()[0]
	victim.Kill()
	killed.Store(time.Now().UnixNano())
	// Sends go on through the failover: the promoted replica's shard
	// cannot make a write durable on two machines until the dead node is
	// back as its replica.
	time.Sleep(8 * time.Second)
	if err := victim.Restart(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := f.cluster.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // sends after the rejoin
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for code, n := range codes {
		if code != 200 && code != 503 {
			t.Errorf("%d sends answered %d: want only 200 or 503", n, code)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	verifyAcked(t, f.sim, client, f.nodes[1].url, acked, "after the failover")
	fo := "none after the kill"
	if v := firstOK.Load(); v != 0 {
		fo = time.Duration(v - killed.Load()).Round(10 * time.Millisecond).String()
	}
	t.Logf("master killed under load: %d × 200 (all verify), %d × 503; first 200 of a send begun after the kill: %s",
		codes[200], codes[503], fo)
}
