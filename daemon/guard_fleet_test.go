package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/daemon"
)

// TestGuard_Fleet: two gateways on one Redis Cluster guard as one. A pump
// through A raises a block that B enforces within its sync period and
// lists on its admin port; a release through B's admin port lifts it on
// A; a block outlives the restart of a node; a client's hourly budget is
// counted over both nodes.
func TestGuard_Fleet(t *testing.T) {
	var cfgs []*daemon.Config
	f := startFleet(t, 2, cfgOpts{ratePerSec: 1000, rateBurst: 1000}, func(cfg *daemon.Config) {
		cfg.Clients[1].Budget = daemon.BudgetConfig{PerHour: 10}
		cfg.Clients[1].Rate = daemon.RateConfig{PerSecond: 1e6, Burst: 1e6} // the budget, not the rate
		cfgs = append(cfgs, cfg)
	})
	a, b := f.nodes[0], f.nodes[1]
	// B's probes of the attacked range: numbers far apart, so that B's
	// own counts never look consecutive.
	probe := 0
	probeB := func(g *gateway) int {
		probe++
		code, _ := send(t, g, fmt.Sprintf("+91-987650%04d", 5000+probe*97%5000))
		return code
	}
	waitCode := func(g *gateway, want int) time.Duration {
		t.Helper()
		start := time.Now()
		for deadline := start.Add(15 * time.Second); ; {
			if probeB(g) == want {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %d within 15s", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	if n := pump(t, a, 0, 30); n != 20 {
		t.Fatalf("pump through A: %d of 30 through, want 20", n)
	}
	took := waitCode(b, 429)
	t.Logf("B refused the range %v after A raised the block", took.Round(time.Millisecond))

	type listed struct {
		Rule, Range, Client, Reason string
		Since                       time.Time
		Refused                     int64
	}
	blocksOf := func(g *gateway) []listed {
		t.Helper()
		code, body := call(t, "GET", g.admin+"/guard/blocks", "", "")
		var out []listed
		if err := json.Unmarshal([]byte(body), &out); code != 200 || err != nil {
			t.Fatalf("GET /guard/blocks: %d %s %v", code, body, err)
		}
		return out
	}
	onB, onA := blocksOf(b), blocksOf(a)
	if len(onB) != 1 || onB[0].Rule != "velocity" || onB[0].Range != "+91-987650xxxx" ||
		!strings.Contains(onB[0].Reason, "consecutive-looking") || onB[0].Refused < 1 {
		t.Fatalf("B lists %+v", onB)
	}
	if len(onA) != 1 || !onA[0].Since.Equal(onB[0].Since) || onA[0].Reason != onB[0].Reason {
		t.Fatalf("A lists %+v, B %+v", onA, onB)
	}

	code, body := call(t, "POST", b.admin+"/guard/release", "", `{"range":"+91-987650xxxx"}`)
	if code != 200 || !strings.Contains(body, `"rule": "velocity"`) {
		t.Fatalf("release through B: %d %s", code, body)
	}
	took = waitCode(a, 200)
	t.Logf("A let the range through %v after B released it", took.Round(time.Millisecond))
	if got := blocksOf(a); len(got) != 0 {
		t.Fatalf("A lists %+v after the release", got)
	}

	fleetT := t // the restarted node lives as long as the fleet
	t.Run("OutlivesRestart", func(t *testing.T) {
		if n := pump(t, a, 2000, 30); n != 20 {
			t.Fatalf("second pump through A: %d of 30 through, want 20", n)
		}
		want := blocksOf(a)
		b.stop(t)
		b2 := startGateway(fleetT, cfgs[1])
		// The restarted node read the fleet's blocks before it served.
		if code := probeB(b2); code != 429 {
			t.Fatalf("restarted B: got %d, want 429 at once", code)
		}
		got := blocksOf(b2)
		if len(got) != 1 || len(want) != 1 || !got[0].Since.Equal(want[0].Since) || got[0].Reason != want[0].Reason {
			t.Fatalf("restarted B lists %+v, want %+v", got, want)
		}
		f.nodes[1] = b2
	})

	t.Run("BudgetAcrossNodes", func(t *testing.T) {
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Go(func() {
				for i := range 5 {
					code, body := call(t, "POST", f.nodes[w%2].url+"/api/v3/otp-verification/send-otp", keyB,
						sendBody(clientB, fmt.Sprintf("+91-9%d%08d", w+1, i*7919), "6"))
					switch code {
					case 200:
						ok.Add(1)
					case 429:
						refused.Add(1)
					default:
						t.Errorf("send: %d %s", code, body)
					}
				}
			})
		}
		wg.Wait()
		if ok.Load() != 10 || refused.Load() != 20 {
			t.Fatalf("%d sent, %d refused; want 10 and 20 (per_hour 10 over both nodes)", ok.Load(), refused.Load())
		}
	})
}

// TestGuard_FleetPumpingAttack is TestGuard_PumpingAttack against three
// gateways on one Redis Cluster: every request goes through the next
// node, so the attack on each range is spread over all three (each
// node's own counts would let about 60 SMS through), and codes are
// verified through another node than their send's. The goals are the
// same: under 50 SMS per attacked range, no legitimate send refused (the
// returning users verified through one node pass the blocks on the
// others).
func TestGuard_FleetPumpingAttack(t *testing.T) {
	f := startFleet(t, 3, cfgOpts{perHour: 1000}, func(cfg *daemon.Config) {
		for i := range cfg.Clients {
			cfg.Clients[i].Rate = daemon.RateConfig{PerSecond: 1e5, Burst: 1e5}
		}
		cfg.Carriers[0].Window = 32
	})
	waitSimBound(t, f.sim, 2) // carrier a's 2 binds are the fleet's: the third node forwards
	pumpingAttack(t, f.sim, f.nodes)
	// One block per range for the fleet, listed by both nodes alike.
	var lists [3]map[string]time.Time
	for i, g := range f.nodes {
		code, body := call(t, "GET", g.admin+"/guard/blocks", "", "")
		var blocks []struct {
			Range string
			Since time.Time
		}
		if err := json.Unmarshal([]byte(body), &blocks); code != 200 || err != nil {
			t.Fatalf("node %d: GET /guard/blocks: %d %s", i, code, body)
		}
		lists[i] = map[string]time.Time{}
		for _, b := range blocks {
			lists[i][b.Range] = b.Since
		}
		for _, want := range []string{"+91-981110xxxx", "+49-1517770xxxx", "+234-803111xxxx"} {
			if _, ok := lists[i][want]; !ok || len(blocks) != 3 {
				t.Errorf("node %d lacks the block of %s: %s", i, want, body)
			}
		}
	}
	for r, since := range lists[0] {
		for i := 1; i < len(lists); i++ {
			if !lists[i][r].Equal(since) {
				t.Errorf("%s: blocked since %v on node 0, %v on node %d", r, since, lists[i][r], i)
			}
		}
	}
}
