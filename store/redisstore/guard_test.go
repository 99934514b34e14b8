package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/syncbuf"

	"github.com/otpgate/otpgate/guard"
	"github.com/otpgate/otpgate/store/redisstore"
)

// guardNode is one node's guard on the shared cluster: its own DB
// (connection pool) under the fleet's prefix.
type guardNode struct {
	g    *guard.Guard
	db   *redisstore.DB
	logs *syncbuf.Buffer
}

func newGuardNode(t testing.TB, prefix string, cfg guard.Config) *guardNode {
	t.Helper()
	n := &guardNode{db: open(t, redisstore.Options{Prefix: prefix}), logs: &syncbuf.Buffer{}}
	g, err := guard.New(cfg, guard.Options{Shared: n.db, Logger: slog.New(slog.NewTextHandler(n.logs, nil)),
		SharedTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n.g = g
	return n
}

func (n *guardNode) sync(t testing.TB, now time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.g.Sync(ctx, now); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// send admits s and, when admitted, records it sent through carrier "a".
func (n *guardNode) send(now time.Time, s guard.Send) error {
	tk, err := n.g.Admit(now, s)
	if err == nil {
		n.g.Sent(tk, "a")
	}
	return err
}

func inNum(client, national string) guard.Send {
	return guard.Send{Client: client, Country: "IN", CC: "91", National: national}
}

func refusedBy(err error) string {
	var r *guard.Refusal
	if errors.As(err, &r) {
		return r.Rule
	}
	return ""
}

// pump sends to consecutive numbers of the range 98765 through n until
// the guard refuses one; it returns how many went out.
func pump(t *testing.T, n *guardNode, now time.Time, from int) int {
	t.Helper()
	for i := range 100 {
		err := n.send(now, inNum("c1", fmt.Sprintf("98765%05d", from+i)))
		if err != nil {
			if refusedBy(err) != guard.RuleVelocity {
				t.Fatalf("send %d: %v, want a velocity refusal", i, err)
			}
			return i
		}
	}
	t.Fatal("100 consecutive sends went out")
	return 0
}

// TestGuardShared_Blocks: a block raised on node A refuses on node B,
// lists on both with A's reason, since and the fleet's refusal count, and
// a release through B lifts it on A.
func TestGuardShared_Blocks(t *testing.T) {
	prefix := newPrefix()
	a := newGuardNode(t, prefix, guard.Defaults())
	b := newGuardNode(t, prefix, guard.Defaults())
	now := time.Now()

	if got := pump(t, a, now, 0); got != 20 {
		t.Fatalf("A: %d sends out before the block, want 20", got)
	}
	victim := inNum("c1", "9876505555") // same range, a number A never saw
	if err := b.send(now, victim); err != nil {
		t.Fatalf("B before its sync: %v (the block is not B's yet: that is the second of delay)", err)
	}
	b.sync(t, now)
	for range 5 {
		if err := b.send(now, victim); refusedBy(err) != guard.RuleVelocity {
			t.Fatalf("B after sync: got %v, want a velocity refusal", err)
		}
	}
	if err := b.send(now, inNum("c2", "9876505555")); err != nil {
		t.Fatalf("B, another client: %v", err)
	}
	a.sync(t, now)
	b.sync(t, now) // adds B's refusals to the fleet's count
	for name, n := range map[string]*guardNode{"A": a, "B": b} {
		bs := n.g.Blocks(now)
		if len(bs) != 1 {
			t.Fatalf("%s lists %d blocks, want 1: %+v", name, len(bs), bs)
		}
		bl := bs[0]
		// A refused one (the 21st), B five.
		if bl.Rule != guard.RuleVelocity || bl.Range != "+91-987650xxxx" || bl.Client != "c1" || bl.Action != "block" ||
			bl.Refused != 6 || !strings.Contains(bl.Reason, "consecutive-looking") || bl.Since.Sub(now).Abs() > time.Millisecond {
			t.Fatalf("%s lists %+v", name, bl)
		}
	}

	rel, _, err := b.g.Release(now, guard.Release{Range: "+91-98765"})
	if err != nil || len(rel) != 1 || rel[0].Refused != 6 {
		t.Fatalf("release via B: %+v, %v", rel, err)
	}
	if err := b.send(now, victim); err != nil {
		t.Fatalf("B after its release: %v", err)
	}
	if err := a.send(now, victim); refusedBy(err) != guard.RuleVelocity {
		t.Fatalf("A before its sync: got %v, want still refused", err)
	}
	a.sync(t, now)
	if err := a.send(now, inNum("c1", "9876509999")); err != nil {
		t.Fatalf("A after sync: %v", err)
	}
	if bs := a.g.Blocks(now); len(bs) != 0 {
		t.Fatalf("A lists %+v after the release", bs)
	}
	// A forgot its counts of the released range: a new pump gets 20 again
	// (not 1: its old counts would raise the block at once).
	if got := pump(t, a, now, 2000); got != 20 {
		t.Fatalf("A after the release: %d sends out, want 20", got)
	}
	if !strings.Contains(a.logs.String(), "guard block lifted on another node") {
		t.Fatalf("A did not log the release elsewhere:\n%s", a.logs.String())
	}
}

// TestGuardShared_Restart: a block outlives its guard; the next one (a
// restarted node) enforces it from its first Sync, with its reason and
// since.
func TestGuardShared_Restart(t *testing.T) {
	prefix := newPrefix()
	now := time.Now()
	a := newGuardNode(t, prefix, guard.Defaults())
	pump(t, a, now, 0)
	want := a.g.Blocks(now)
	a.db.Close()

	again := newGuardNode(t, prefix, guard.Defaults())
	again.sync(t, now.Add(time.Second))
	if err := again.send(now.Add(time.Second), inNum("c1", "9876507777")); refusedBy(err) != guard.RuleVelocity {
		t.Fatalf("after the restart: got %v, want a velocity refusal", err)
	}
	got := again.g.Blocks(now.Add(time.Second))
	if len(got) != 1 || len(want) != 1 || got[0].Reason != want[0].Reason || !got[0].Since.Equal(want[0].Since) ||
		!got[0].Until.Equal(want[0].Until) {
		t.Fatalf("after the restart: %+v, want %+v", got, want)
	}
	// And it ends when it was to end.
	end := want[0].Until
	again.sync(t, end)
	if err := again.send(end, inNum("c1", "9876507777")); err != nil {
		t.Fatalf("at the block's end: %v", err)
	}
}

// TestGuardShared_Budget: a budget of 10 an hour spread over two nodes,
// sending at once, lets exactly 10 through; a send given back makes room
// for one more.
func TestGuardShared_Budget(t *testing.T) {
	prefix := newPrefix()
	cfg := guard.Defaults()
	cfg.Clients = map[string]guard.ClientRules{"c1": {Budget: guard.Budget{PerHour: 10,
		Countries: map[string]guard.Limits{"GB": {PerDay: 3}}}}}
	nodes := []*guardNode{newGuardNode(t, prefix, cfg), newGuardNode(t, prefix, cfg)}
	now := time.Now()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(3, 4))
	num := func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("9%09d", rng.IntN(1e9))
	}
	var out, budget atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			n := nodes[w%2]
			for range 5 {
				switch err := n.send(now, inNum("c1", num())); {
				case err == nil:
					out.Add(1)
				case refusedBy(err) == guard.RuleBudget:
					budget.Add(1)
				default:
					t.Errorf("send: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if out.Load() != 10 || budget.Load() != 30 {
		t.Fatalf("%d sends out, %d refused by the budget; want 10 and 30", out.Load(), budget.Load())
	}
	if err := nodes[1].send(now, inNum("c2", num())); err != nil {
		t.Fatalf("another client: %v", err)
	}
	t.Run("UnsentGivesBack", func(t *testing.T) {
		now := now.Add(time.Hour + 5*time.Minute) // the hour slid by
		tk, err := nodes[0].g.Admit(now, inNum("c1", num()))
		if err != nil {
			t.Fatal(err)
		}
		nodes[0].g.Unsent(tk)
		for i := range 10 {
			if err := nodes[i%2].send(now, inNum("c1", num())); err != nil {
				t.Fatalf("send %d after an unsent one: %v", i, err)
			}
		}
		if err := nodes[1].send(now, inNum("c1", num())); refusedBy(err) != guard.RuleBudget {
			t.Fatalf("11th: got %v, want budget", err)
		}
	})
	t.Run("Country", func(t *testing.T) {
		now := now.Add(3 * time.Hour)
		gb := guard.Send{Client: "c1", Country: "GB", CC: "44"}
		for i := range 3 {
			gb.National = fmt.Sprintf("77009%05d", i*37)
			if err := nodes[i%2].send(now, gb); err != nil {
				t.Fatalf("GB send %d: %v", i, err)
			}
		}
		gb.National = "7700912345"
		if err := nodes[0].send(now, gb); refusedBy(err) != guard.RuleBudget {
			t.Fatalf("4th GB send: got %v, want budget", err)
		}
		// The refused GB send counted nothing overall: 7 IN sends go
		// out (10 an hour, the 3 GB ones included), not 6.
		for i := range 7 {
			if err := nodes[i%2].send(now, inNum("c1", num())); err != nil {
				t.Fatalf("IN send %d: %v", i, err)
			}
		}
		if err := nodes[0].send(now, inNum("c1", num())); refusedBy(err) != guard.RuleBudget {
			t.Fatalf("8th IN send: got %v, want budget", err)
		}
	})
	if !strings.Contains(nodes[0].logs.String()+nodes[1].logs.String(), "per_hour 10 reached (10 sends in the last hour)") {
		t.Fatal("no budget log line")
	}
}

// TestGuardShared_Verified: a number that verified through node A passes
// node B's block of its range.
func TestGuardShared_Verified(t *testing.T) {
	prefix := newPrefix()
	a := newGuardNode(t, prefix, guard.Defaults())
	b := newGuardNode(t, prefix, guard.Defaults())
	now := time.Now()
	user := inNum("c1", "9876501999")
	a.g.Verified(now, guard.Verification{Client: "c1", Country: "IN", CC: "91", National: user.National, SentAt: now})
	pump(t, b, now, 0)
	if err := b.send(now, user); err != nil {
		t.Fatalf("verified on A, sent through B: %v", err)
	}
	if err := b.send(now, inNum("c1", "9876501998")); refusedBy(err) != guard.RuleVelocity {
		t.Fatalf("an unverified neighbour: got %v, want refused", err)
	}
}

// TestGuardShared_Down: when the shared state does not answer, the guard
// decides on its own counts and blocks (and says so in the log).
func TestGuardShared_Down(t *testing.T) {
	cfg := guard.Defaults()
	cfg.Clients = map[string]guard.ClientRules{"c2": {Budget: guard.Budget{PerHour: 3}}}
	n := newGuardNode(t, newPrefix(), cfg)
	n.db.Close()
	now := time.Now()
	for i := range 3 {
		if err := n.send(now, inNum("c2", fmt.Sprintf("91234%05d", i*1000))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := n.send(now, inNum("c2", "9123499999")); refusedBy(err) != guard.RuleBudget {
		t.Fatalf("4th: got %v, want the node's own budget", err)
	}
	if !strings.Contains(n.logs.String(), "guard shared state unavailable") {
		t.Fatalf("no warning:\n%s", n.logs.String())
	}
	// Its own blocks still apply; a release says it reached this node only.
	if got := pump(t, n, now, 0); got != 20 {
		t.Fatalf("pump: %d out, want 20", got)
	}
	rel, _, err := n.g.Release(now, guard.Release{Range: "+91-98765"})
	if !errors.Is(err, guard.ErrNotShared) || len(rel) != 1 {
		t.Fatalf("release: %+v, %v; want the block and ErrNotShared", rel, err)
	}
}

// TestGuardShared_Capped: the fleet's blocks are capped like a node's.
func TestGuardShared_Capped(t *testing.T) {
	db := open(t, redisstore.Options{})
	ctx := context.Background()
	now := time.Now()
	for i := range 20 {
		b := guard.SharedBlock{Key: fmt.Sprintf("c1\x0091-%d", 9000+i), Digits: fmt.Sprintf("91%d", 9000+i), Level: 6,
			Block: guard.Block{Rule: guard.RuleVelocity, Range: "+91-x", Client: "c1", Since: now,
				Until: now.Add(time.Hour + time.Duration(i)*time.Second)}}
		if _, err := db.PutBlock(ctx, b, now, 5); err != nil {
			t.Fatal(err)
		}
	}
	_, blocks, _, err := db.SyncBlocks(ctx, "", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 5 {
		t.Fatalf("%d blocks kept, want 5", len(blocks))
	}
	for _, b := range blocks { // the ones that end last stay
		if b.Until.Before(now.Add(time.Hour + 15*time.Second)) {
			t.Fatalf("kept %s ending %v", b.Key, b.Until)
		}
	}
}

// TestGuardShared_SpreadPump: a pump to consecutive numbers spread over
// three nodes in turn is cut off after about velocity.sequential sends in
// all, as through one node (each node's own counts would let about three
// times as many through).
func TestGuardShared_SpreadPump(t *testing.T) {
	prefix := newPrefix()
	nodes := []*guardNode{newGuardNode(t, prefix, guard.Defaults()), newGuardNode(t, prefix, guard.Defaults()),
		newGuardNode(t, prefix, guard.Defaults())}
	now := time.Now()
	out, refused := 0, map[int]bool{}
	for i := range 120 {
		n := i % 3
		switch err := nodes[n].send(now, inNum("c1", fmt.Sprintf("98765%05d", i))); {
		case err == nil:
			if len(refused) == 3 {
				t.Fatalf("send %d went out after every node refused", i)
			}
			out++
		case refusedBy(err) == guard.RuleVelocity:
			refused[n] = true
		default:
			t.Fatalf("send %d: %v", i, err)
		}
	}
	t.Logf("%d sends out of 120 spread over 3 nodes", out)
	// 20 consecutive-looking ones, the first of the run, and one per node
	// that is not counted fleet-wide until the node has seen hotSeq.
	if out > 24 || len(refused) != 3 {
		t.Fatalf("%d sends out (want at most 24), refusing nodes %v", out, refused)
	}
	// And the block is one, raised once.
	for _, n := range nodes {
		n.sync(t, now)
	}
	if bs := nodes[0].g.Blocks(now); len(bs) != 1 {
		t.Fatalf("%d blocks: %+v", len(bs), bs)
	}
	raised := 0
	for _, n := range nodes {
		raised += strings.Count(n.logs.String(), "guard raised a block")
	}
	if raised != 1 {
		t.Fatalf("%d raise lines over the nodes, want 1", raised)
	}
}

// TestGuardShared_SpreadSpike: sends to scattered numbers of one range
// spread over two nodes are cut off by velocity.spike fleet-wide (100),
// not by each node's (200 in all).
func TestGuardShared_SpreadSpike(t *testing.T) {
	prefix := newPrefix()
	nodes := []*guardNode{newGuardNode(t, prefix, guard.Defaults()), newGuardNode(t, prefix, guard.Defaults())}
	now := time.Now()
	out := 0
	for i := range 300 {
		err := nodes[i%2].send(now, inNum("c1", fmt.Sprintf("987650%04d", i*37%10000)))
		switch {
		case err == nil:
			out++
		case refusedBy(err) != guard.RuleVelocity:
			t.Fatalf("send %d: %v", i, err)
		}
	}
	t.Logf("%d sends out of 300 spread over 2 nodes", out)
	if out > 100 {
		t.Fatalf("%d sends out, want at most velocity.spike (100)", out)
	}
}

// TestGuardShared_SpreadConversion: a slow pump to scattered numbers of
// one range, never verified, spread over two nodes, is blocked by
// conversion after fewer sends with the fleet's counts than with each
// node's; meanwhile another client's logins, each verified through the
// other node than the one that sent it, are never refused.
func TestGuardShared_SpreadConversion(t *testing.T) {
	run := func(shared bool) (pumped, legitRefused int) {
		var nodes [2]*guardNode
		prefix := newPrefix()
		for i := range nodes {
			if shared {
				nodes[i] = newGuardNode(t, prefix, guard.Defaults())
			} else {
				g, err := guard.New(guard.Defaults(), guard.Options{})
				if err != nil {
					t.Fatal(err)
				}
				nodes[i] = &guardNode{g: g, logs: &syncbuf.Buffer{}}
			}
		}
		type pending struct {
			at   time.Time
			node int
			s    guard.Send
			sent time.Time
		}
		var verifies []pending
		// Start at the start of a conversion bucket (30m/16), so that
		// both runs judge the same buckets.
		step := int64(guard.Defaults().Conversion.Window / 16)
		start := time.Unix(0, (time.Now().UnixNano()/step+1)*step)
		stopped := false
		for sec := range 1500 {
			now := start.Add(time.Duration(sec) * time.Second)
			// A login to a scattered number of +91-91234xxxxx, verified 10 s
			// later through the other node (4 of 5).
			s := inNum("c2", fmt.Sprintf("91234%05d", sec*7919%100000))
			switch err := nodes[sec%2].send(now, s); {
			case err != nil:
				legitRefused++
			case sec%5 != 0:
				verifies = append(verifies, pending{at: now.Add(10 * time.Second), node: (sec + 1) % 2, s: s, sent: now})
			}
			for len(verifies) > 0 && !verifies[0].at.After(now) {
				v := verifies[0]
				verifies = verifies[1:]
				nodes[v.node].g.Verified(v.at, guard.Verification{Client: "c2", Country: "IN", CC: "91",
					National: v.s.National, SentAt: v.sent, Carrier: "a"})
			}
			// The pump: one send every 2 s, never verified.
			if sec%2 == 0 && !stopped {
				switch err := nodes[sec/2%2].send(now, inNum("c1", fmt.Sprintf("987650%04d", sec*37%10000))); {
				case err == nil:
					pumped++
				case refusedBy(err) == guard.RuleConversion || refusedBy(err) == guard.RuleCarrierConversion:
					stopped = true
				default:
					t.Fatalf("pump at %ds: %v", sec, err)
				}
			}
			if shared {
				for _, n := range nodes {
					n.sync(t, now)
				}
			}
		}
		if !stopped {
			t.Fatalf("shared %v: the pump was never stopped (%d sent)", shared, pumped)
		}
		return pumped, legitRefused
	}
	local, localRefused := run(false)
	fleet, fleetRefused := run(true)
	t.Logf("pump stopped after %d sends with the fleet's counts, %d with each node's", fleet, local)
	if localRefused+fleetRefused > 0 {
		t.Fatalf("logins refused: %d with each node's counts, %d with the fleet's", localRefused, fleetRefused)
	}
	// Each node must judge min_sends (50) of its own without the fleet.
	if fleet > local-40 {
		t.Fatalf("pump stopped after %d sends with the fleet's counts, %d with each node's: want about 50 fewer", fleet, local)
	}
}

// TestGuardShared_VerifiedCapped: the fleet's verified numbers are capped
// (guard.verified_numbers), the oldest forgotten first, whatever numbers
// verify.
func TestGuardShared_VerifiedCapped(t *testing.T) {
	db := open(t, redisstore.Options{})
	ctx := context.Background()
	now := time.Now()
	const capacity = 64 * 4 // four per shard tag
	for i := range 2000 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		if err := db.AddVerified(ctx, fmt.Sprintf("91987%07d", i), at, time.Hour, capacity); err != nil {
			t.Fatal(err)
		}
	}
	kept := 0
	for i := range 2000 {
		at, ok, err := db.VerifiedAt(ctx, fmt.Sprintf("91987%07d", i))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			kept++
			if !at.Equal(now.Add(time.Duration(i) * time.Millisecond).Truncate(time.Millisecond)) {
				t.Fatalf("number %d: verified at %v", i, at)
			}
		}
	}
	if kept > capacity || kept < capacity/2 {
		t.Fatalf("%d numbers remembered, want at most %d (and most of them)", kept, capacity)
	}
	if _, ok, _ := db.VerifiedAt(ctx, "919870001999"); !ok {
		t.Fatal("the last number verified was forgotten")
	}
}

// TestGuardShared_Reload: a reload that makes a block meaningless (its
// range now safe-listed) drops it from the fleet; a node whose
// configuration makes a fleet's block meaningless (its rule turned off)
// does not enforce it.
func TestGuardShared_Reload(t *testing.T) {
	prefix := newPrefix()
	a := newGuardNode(t, prefix, guard.Defaults())
	b := newGuardNode(t, prefix, guard.Defaults())
	now := time.Now()
	pump(t, a, now, 0)
	b.sync(t, now)
	victim := inNum("c1", "9876505555")
	if err := b.send(now, victim); refusedBy(err) != guard.RuleVelocity {
		t.Fatalf("B: got %v, want refused", err)
	}

	safe := guard.Defaults()
	safe.SafeList = []string{"+91-98765"}
	if err := b.g.Swap(safe, now); err != nil {
		t.Fatal(err)
	}
	if err := b.send(now, victim); err != nil {
		t.Fatalf("B after safe-listing: %v", err)
	}
	a.sync(t, now)
	if err := a.send(now, victim); err != nil {
		t.Fatalf("A after B's reload dropped the block: %v", err)
	}

	// A raises it again (at once: a reload keeps the counts); B, whose
	// file now turns the velocity rule off, neither enforces nor lists
	// it, though the fleet has it.
	off := guard.Defaults()
	off.Velocity.Sequential, off.Velocity.Spike = 0, 0
	if err := b.g.Swap(off, now); err != nil {
		t.Fatal(err)
	}
	pump(t, a, now, 3000)
	b.sync(t, now)
	if err := b.send(now, inNum("c1", "9876506666")); err != nil {
		t.Fatalf("B: %v", err)
	}
	if bs := b.g.Blocks(now); len(bs) != 0 {
		t.Fatalf("B lists %+v", bs)
	}
	if bs := a.g.Blocks(now); len(bs) != 1 {
		t.Fatalf("A lists %+v, want the block", bs)
	}
}
