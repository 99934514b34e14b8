package guard_test

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/syncbuf"

	"github.com/otpgate/otpgate/guard"
)

// decisions counts the guard's decisions by rule and action.
type decisions struct {
	mu     sync.Mutex
	n      map[string]int
	blocks int
}

func (d *decisions) GuardDecision(rule, action string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[rule+"/"+action]++
}

func (d *decisions) GuardBlocks(n int) {
	d.mu.Lock()
	d.blocks = n
	d.mu.Unlock()
}

func (d *decisions) get(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[key]
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

type fixture struct {
	g    *guard.Guard
	obs  *decisions
	logs *syncbuf.Buffer
}

func newGuard(tb testing.TB, cfg guard.Config) fixture {
	tb.Helper()
	f := fixture{obs: &decisions{}, logs: &syncbuf.Buffer{}}
	g, err := guard.New(cfg, guard.Options{Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Observer: f.obs, Now: t0})
	if err != nil {
		tb.Fatal(err)
	}
	f.g = g
	return f
}

// in is an Indian mobile number: national 10 digits.
func in(client, national string) guard.Send {
	return guard.Send{Client: client, Country: "IN", CC: "91", National: national}
}

func ruleOf(err error) string {
	var r *guard.Refusal
	if errors.As(err, &r) {
		return r.Rule
	}
	return ""
}

// send admits s at now and, when admitted, records it as sent through carrier "a".
func (f fixture) send(now time.Time, s guard.Send) error {
	t, err := f.g.Admit(now, s)
	if err == nil {
		f.g.Sent(t, "a")
	}
	return err
}

func (f fixture) verify(now, sentAt time.Time, s guard.Send) {
	f.g.Verified(now, guard.Verification{Client: s.Client, Country: s.Country, CC: s.CC, National: s.National,
		SentAt: sentAt, Carrier: "a"})
}

func TestGuard_Velocity(t *testing.T) {
	f := newGuard(t, guard.Defaults())
	// A verified user of the range that will be attacked.
	f.verify(t0, t0, in("c1", "9876501999"))

	now := t0.Add(time.Minute)
	sent := 0
	for i := range 200 {
		err := f.send(now.Add(time.Duration(i)*5*time.Millisecond), in("c1", fmt.Sprintf("98765%05d", i)))
		if err == nil {
			sent++
			continue
		}
		if !errors.Is(err, guard.ErrRefused) || ruleOf(err) != guard.RuleVelocity {
			t.Fatalf("send %d: got %v, want a velocity refusal", i, err)
		}
	}
	if sent != 20 {
		t.Fatalf("got %d consecutive sends out, want 20 (velocity.sequential)", sent)
	}
	if got := f.obs.get("velocity/block"); got != 180 {
		t.Fatalf("got %d velocity/block decisions, want 180", got)
	}
	later := now.Add(2 * time.Second)
	t.Run("VerifiedNumberPasses", func(t *testing.T) {
		if err := f.send(later, in("c1", "9876501999")); err != nil {
			t.Fatalf("got %v, want the verified number through", err)
		}
		if f.obs.get("verified/allow") != 1 {
			t.Fatal("no verified/allow decision")
		}
	})
	t.Run("OtherRangeAndClient", func(t *testing.T) {
		if err := f.send(later, in("c1", "9123456789")); err != nil {
			t.Fatalf("other range: %v", err)
		}
		if err := f.send(later, in("c2", "9876500150")); err != nil {
			t.Fatalf("other client, same range: %v", err)
		}
	})
	t.Run("Listed", func(t *testing.T) {
		bs := f.g.Blocks(later)
		if len(bs) != 1 {
			t.Fatalf("got %d blocks, want 1: %+v", len(bs), bs)
		}
		b := bs[0]
		if b.Rule != guard.RuleVelocity || b.Range != "+91-987650xxxx" || b.Client != "c1" || b.Action != "block" ||
			!b.Since.Equal(now.Add(20*5*time.Millisecond)) || b.Refused != 180 {
			t.Fatalf("got %+v", b)
		}
		if !strings.Contains(b.Reason, "20 sends to consecutive-looking numbers") {
			t.Fatalf("reason %q", b.Reason)
		}
	})
	t.Run("Logged", func(t *testing.T) {
		logs := f.logs.String()
		if n := strings.Count(logs, `msg="guard raised a block"`); n != 1 {
			t.Fatalf("got %d raise lines, want 1:\n%s", n, logs)
		}
		for _, want := range []string{"rule=velocity", "range=+91-987650xxxx", "client=c1", "sequential=20", "action=block"} {
			if !strings.Contains(logs, want) {
				t.Fatalf("log lacks %s:\n%s", want, logs)
			}
		}
		if strings.Contains(logs, "98765000") {
			t.Fatalf("a number reached the log:\n%s", logs)
		}
	})
	t.Run("Expires", func(t *testing.T) {
		if err := f.send(now.Add(time.Hour+time.Second), in("c1", "9876500300")); err != nil {
			t.Fatalf("after block_for: %v", err)
		}
	})
}

// TestGuard_NormalLogins: 10,000 logins to random numbers in 20 countries,
// 80 % verified within a minute, at 20 per second, trip nothing.
func TestGuard_NormalLogins(t *testing.T) {
	f := newGuard(t, guard.Defaults())
	rng := rand.New(rand.NewPCG(1, 2))
	type country struct {
		iso, cc string
		digits  int
		lead    string
	}
	countries := []country{{"IN", "91", 10, "9"}, {"US", "1", 10, "2"}, {"GB", "44", 10, "7"}, {"DE", "49", 11, "15"},
		{"FR", "33", 9, "6"}, {"BR", "55", 11, "119"}, {"ID", "62", 11, "81"}, {"NG", "234", 10, "80"}, {"PK", "92", 10, "3"},
		{"MX", "52", 10, "55"}, {"PH", "63", 10, "9"}, {"EG", "20", 10, "1"}, {"VN", "84", 9, "9"}, {"TR", "90", 10, "5"},
		{"IT", "39", 10, "3"}, {"ES", "34", 9, "6"}, {"KE", "254", 9, "7"}, {"ZA", "27", 9, "8"}, {"AR", "54", 10, "9"},
		{"SG", "65", 8, "9"}}
	type pending struct {
		s  guard.Send
		at time.Time
	}
	var queue []pending
	now := t0
	for i := range 10000 {
		c := countries[rng.IntN(len(countries))]
		nat := c.lead
		for len(nat) < c.digits {
			nat += string(rune('0' + rng.IntN(10)))
		}
		s := guard.Send{Client: []string{"c1", "c2"}[i%2], Country: c.iso, CC: c.cc, National: nat}
		now = now.Add(50 * time.Millisecond)
		if err := f.send(now, s); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if rng.Float64() < 0.8 {
			queue = append(queue, pending{s, now})
		}
		// Users type their code 5 to 60 seconds after the send.
		for len(queue) > 0 && now.Sub(queue[0].at) > time.Duration(5+rng.IntN(55))*time.Second {
			f.verify(now, queue[0].at, queue[0].s)
			queue = queue[1:]
		}
	}
	if bs := f.g.Blocks(now); len(bs) != 0 {
		t.Fatalf("got blocks %+v", bs)
	}
	if n := f.obs.get("none/allow"); n != 10000 {
		t.Fatalf("got %d none/allow decisions, want 10000", n)
	}
}

// TestGuard_Conversion: a slow pump to random numbers of one range, never
// verified, is blocked once min_sends sends older than the grace were
// judged; verifications that come late lift it.
func TestGuard_Conversion(t *testing.T) {
	cfg := guard.Defaults()
	cfg.RangeDigits = []int{4}
	f := newGuard(t, cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	now := t0
	var sent []guard.Send
	var times []time.Time
	var refused error
	for i := 0; i < 1000 && refused == nil; i++ {
		now = now.Add(5 * time.Second)
		s := in("c1", fmt.Sprintf("987650%04d", rng.IntN(10000)))
		refused = f.send(now, s)
		if refused == nil {
			sent = append(sent, s)
			times = append(times, now)
		}
	}
	if ruleOf(refused) != guard.RuleConversion {
		t.Fatalf("got %v, want a conversion refusal", refused)
	}
	// 50 sends judged once 2 minutes (grace) and one ~112 s step have
	// passed: about 50 + 2m/5s + 112s/5s sends.
	if len(sent) < 50 || len(sent) > 50+24+23+1 {
		t.Fatalf("blocked after %d sends, want 50 to 98", len(sent))
	}
	bs := f.g.Blocks(now)
	if len(bs) != 1 || !strings.Contains(bs[0].Reason, "0 of ") {
		t.Fatalf("blocks %+v", bs)
	}
	// The codes turn out to have been verified late (a slow receipt route):
	// the range recovers.
	for i, s := range sent {
		f.verify(now, times[i], s)
	}
	if bs := f.g.Blocks(now); len(bs) != 0 {
		t.Fatalf("still blocked after the verifications: %+v", bs)
	}
	if !strings.Contains(f.logs.String(), "guard lifted a block") {
		t.Fatal("no log line for the recovery")
	}
	checkLifted(t, f.logs.String(), guard.RuleConversion, "")
}

var liftedLine = regexp.MustCompile(`msg="guard lifted a block[^"]*" rule=(\S+) [^\n]* reason="([0-9]+) of ([0-9]+) sends( through carrier \S+)? verified \(([0-9]+)%, minimum 10%\)`)

// checkLifted finds the log line that lifted a block of rule and checks
// the figures of its reason: verified of judged sends, at least the 10 %
// minimum, through carrier when it is one.
func checkLifted(t *testing.T, logs, rule, carrier string) {
	t.Helper()
	for _, m := range liftedLine.FindAllStringSubmatch(logs, -1) {
		if m[1] != rule {
			continue
		}
		verified, _ := strconv.Atoi(m[2])
		judged, _ := strconv.Atoi(m[3])
		pct, _ := strconv.Atoi(m[5])
		via := strings.TrimPrefix(m[4], " through carrier ")
		if judged == 0 || verified > judged || 10*verified < judged || pct != int(math.Round(100*float64(verified)/float64(judged))) || via != carrier {
			t.Fatalf("lifted a %s block with %q; want verified of judged sends over 10 %% through carrier %q", rule, m[0], carrier)
		}
		return
	}
	t.Fatalf("no log line lifting a %s block:\n%s", rule, logs)
}

// TestGuard_ConvertingKeepsOtherBlocks: a range blocked for velocity
// (monitor mode: its sends go on) whose codes all get verified converts
// well, and that lifts only a conversion block: the velocity block stays.
func TestGuard_ConvertingKeepsOtherBlocks(t *testing.T) {
	cfg := guard.Defaults()
	cfg.Mode = guard.ModeMonitor
	cfg.RangeDigits = []int{4}
	// 80 sends judged (at least 50) and all verified (at least 10 %): the
	// range converts, so each verification looks for a block to lift.
	cfg.Conversion = guard.Conversion{Window: 30 * time.Minute, Grace: 2 * time.Minute, MinSends: 50,
		CarrierMinSends: 200, MinRate: 0.1}
	f := newGuard(t, cfg)
	var sent []guard.Send
	var times []time.Time
	for i := range 80 {
		now := t0.Add(time.Duration(i) * time.Second)
		s := in("c1", fmt.Sprintf("98765%05d", i))
		if err := f.send(now, s); err != nil {
			t.Fatalf("send %d: %v (monitor mode refuses nothing)", i, err)
		}
		sent, times = append(sent, s), append(times, now)
	}
	now := t0.Add(5 * time.Minute) // past the grace: every send is judged
	bs := f.g.Blocks(now)
	if len(bs) != 1 || bs[0].Rule != guard.RuleVelocity {
		t.Fatalf("blocks %+v, want one velocity block", bs)
	}
	for i, s := range sent {
		f.verify(now, times[i], s)
	}
	if got := f.g.Blocks(now); len(got) != 1 || got[0].Rule != guard.RuleVelocity {
		t.Fatalf("after the verifications: blocks %+v, want the velocity block kept", got)
	}
	if strings.Contains(f.logs.String(), "guard lifted a block") {
		t.Fatalf("a block was lifted:\n%s", f.logs.String())
	}
}

// TestGuard_CarrierConversion: many clients each pumping a little of one
// range through one carrier: the carrier's conversion blocks the range for
// every client.
func TestGuard_CarrierConversion(t *testing.T) {
	cfg := guard.Defaults()
	cfg.Conversion.CarrierMinSends = 100
	f := newGuard(t, cfg)
	rng := rand.New(rand.NewPCG(5, 6))
	now := t0
	var refused error
	var sent []guard.Send
	var times []time.Time
	for i := 0; i < 2000 && refused == nil; i++ {
		now = now.Add(2 * time.Second)
		s := in(fmt.Sprintf("c%d", i%40), fmt.Sprintf("987650%04d", rng.IntN(10000)))
		if refused = f.send(now, s); refused == nil {
			sent, times = append(sent, s), append(times, now)
		}
	}
	if ruleOf(refused) != guard.RuleCarrierConversion {
		t.Fatalf("got %v after %d sends admitted, want a carrier_conversion refusal", refused, len(sent))
	}
	bs := f.g.Blocks(now)
	if len(bs) == 0 || bs[0].Client != "*" || bs[0].Carrier != "a" {
		t.Fatalf("blocks %+v", bs)
	}
	if err := f.send(now, in("new-client", "9876501234")); ruleOf(err) != guard.RuleCarrierConversion {
		t.Fatalf("another client: got %v, want the carrier block", err)
	}
	// The codes were verified after all: the carrier's range converts again
	// and the block lifts, for every client.
	for i, s := range sent {
		f.verify(now, times[i], s)
	}
	if bs := f.g.Blocks(now); len(bs) != 0 {
		t.Fatalf("still blocked after the verifications: %+v", bs)
	}
	checkLifted(t, f.logs.String(), guard.RuleCarrierConversion, "a")
}

func TestGuard_Budget(t *testing.T) {
	cfg := guard.Defaults()
	cfg.Clients = map[string]guard.ClientRules{"c1": {Budget: guard.Budget{PerHour: 5,
		Countries: map[string]guard.Limits{"GB": {PerDay: 2}}}}}
	f := newGuard(t, cfg)
	rng := rand.New(rand.NewPCG(7, 8))
	num := func() string { return fmt.Sprintf("9%09d", rng.IntN(1e9)) }
	now := t0
	for i := range 5 {
		if err := f.send(now, in("c1", num())); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := f.send(now, in("c1", num())); ruleOf(err) != guard.RuleBudget {
		t.Fatalf("6th send: got %v, want budget", err)
	}
	if err := f.send(now, in("c2", num())); err != nil {
		t.Fatalf("other client: %v", err)
	}
	t.Run("UnsentGivesBack", func(t *testing.T) {
		now := now.Add(time.Hour) // the hour slid by
		tk, err := f.g.Admit(now, in("c1", num()))
		if err != nil {
			t.Fatal(err)
		}
		f.g.Unsent(tk)
		for i := range 5 {
			if err := f.send(now, in("c1", num())); err != nil {
				t.Fatalf("send %d after an unsent one: %v", i, err)
			}
		}
	})
	t.Run("Country", func(t *testing.T) {
		now := now.Add(3 * time.Hour)
		gb := func() guard.Send {
			return guard.Send{Client: "c1", Country: "GB", CC: "44", National: fmt.Sprintf("7%09d", rng.IntN(1e9))}
		}
		for i := range 2 {
			if err := f.send(now, gb()); err != nil {
				t.Fatalf("GB send %d: %v", i, err)
			}
		}
		if err := f.send(now, gb()); ruleOf(err) != guard.RuleBudget {
			t.Fatalf("3rd GB send: got %v, want budget", err)
		}
		if err := f.send(now, in("c1", num())); err != nil {
			t.Fatalf("IN send: %v", err)
		}
	})
	if !strings.Contains(f.logs.String(), "per_hour 5 reached") {
		t.Fatalf("no budget log line:\n%s", f.logs.String())
	}
}

func TestGuard_Lists(t *testing.T) {
	cfg := guard.Defaults()
	cfg.BlockPrefixes = []string{"+91-98", "+44"}
	cfg.SafeList = []string{"+91-9876"}
	cfg.Clients = map[string]guard.ClientRules{"c1": {SafeList: []string{"+44-7700900123"}}}
	f := newGuard(t, cfg)
	for _, tc := range []struct {
		s    guard.Send
		rule string
	}{
		{in("c1", "9812345678"), guard.RuleBlockPrefix},
		{in("c1", "9876543210"), ""}, // the longer safe entry wins
		{in("c1", "9123456789"), ""},
		{guard.Send{Client: "c1", Country: "GB", CC: "44", National: "7700900123"}, ""},
		{guard.Send{Client: "c2", Country: "GB", CC: "44", National: "7700900123"}, guard.RuleBlockPrefix},
	} {
		if err := f.send(t0, tc.s); ruleOf(err) != tc.rule {
			t.Errorf("%s %s%s: got %v, want rule %q", tc.s.Client, tc.s.CC, tc.s.National, err, tc.rule)
		}
	}
	// Safe-listed numbers bypass the range rules too.
	for i := range 100 {
		if err := f.send(t0, in("c1", fmt.Sprintf("98765%05d", i))); err != nil {
			t.Fatalf("safe-listed consecutive send %d: %v", i, err)
		}
	}
	if got := f.obs.get("safe_list/allow"); got != 102 {
		t.Fatalf("got %d safe_list/allow decisions, want 102", got)
	}
	bs := f.g.Blocks(t0)
	if len(bs) != 2 || bs[0].Rule != guard.RuleBlockPrefix || bs[0].Range != "+44" || bs[1].Refused != 1 {
		t.Fatalf("blocks %+v", bs)
	}
}

func TestGuard_Monitor(t *testing.T) {
	cfg := guard.Defaults()
	cfg.Mode = guard.ModeMonitor
	cfg.BlockPrefixes = []string{"+44"}
	f := newGuard(t, cfg)
	for i := range 100 {
		if err := f.send(t0, in("c1", fmt.Sprintf("98765%05d", i))); err != nil {
			t.Fatalf("monitor mode refused send %d: %v", i, err)
		}
	}
	if err := f.send(t0, guard.Send{Client: "c1", Country: "GB", CC: "44", National: "7700900123"}); err != nil {
		t.Fatalf("monitor mode refused a block prefix: %v", err)
	}
	if got := f.obs.get("velocity/monitor"); got != 80 {
		t.Fatalf("got %d velocity/monitor decisions, want 80", got)
	}
	if got := f.obs.get("block_prefix/monitor"); got != 1 {
		t.Fatalf("got %d block_prefix/monitor decisions, want 1", got)
	}
	bs := f.g.Blocks(t0)
	if len(bs) != 2 || bs[1].Action != guard.ActionMonitor || bs[1].Rule != guard.RuleVelocity {
		t.Fatalf("blocks %+v", bs)
	}
	if !strings.Contains(f.logs.String(), "action=monitor") {
		t.Fatal("no monitor log line")
	}

	t.Run("ToEnforceDropsMonitorBlocks", func(t *testing.T) {
		cfg.Mode = guard.ModeEnforce
		if err := f.g.Swap(cfg, t0); err != nil {
			t.Fatal(err)
		}
		if bs := f.g.Blocks(t0); len(bs) != 1 || bs[0].Rule != guard.RuleBlockPrefix {
			t.Fatalf("blocks after the switch: %+v", bs)
		}
		// The attack goes on: its range's counts are still there.
		if err := f.send(t0, in("c1", "9876500100")); ruleOf(err) != guard.RuleVelocity {
			t.Fatalf("got %v, want velocity at once", err)
		}
	})
}

func TestGuard_Release(t *testing.T) {
	cfg := guard.Defaults()
	cfg.BlockPrefixes = []string{"+91-99"}
	f := newGuard(t, cfg)
	attack := func(from int) (sent int) {
		for i := range 100 {
			if f.send(t0, in("c1", fmt.Sprintf("98765%05d", from+i))) == nil {
				sent++
			}
		}
		return sent
	}
	if n := attack(0); n != 20 {
		t.Fatalf("got %d through, want 20", n)
	}
	if _, _, err := f.g.Release(t0, guard.Release{Range: "98765"}); !errors.Is(err, guard.ErrBadRange) {
		t.Fatalf("got %v, want ErrBadRange", err)
	}
	if rel, _, _ := f.g.Release(t0, guard.Release{Range: "+91-98765", Client: "c2"}); len(rel) != 0 {
		t.Fatalf("released another client's block: %+v", rel)
	}
	rel, conf, err := f.g.Release(t0, guard.Release{Range: "+91-9"})
	if err != nil || len(rel) != 1 || rel[0].Refused != 80 || len(conf) != 1 || conf[0] != "+91-99" {
		t.Fatalf("got %+v %v %v", rel, conf, err)
	}
	if !strings.Contains(f.logs.String(), "guard block released") {
		t.Fatal("no release log line")
	}
	// The counts were forgotten: a new run of the attack gets 20 again.
	if n := attack(1000); n != 20 {
		t.Fatalf("after release got %d through, want 20", n)
	}
	// A number releases the ranges that hold it.
	if rel, _, _ := f.g.Release(t0, guard.Release{Range: "+91-9876501050"}); len(rel) != 1 {
		t.Fatalf("release by number: %+v", rel)
	}
}

func TestGuard_Swap(t *testing.T) {
	cfg := guard.Defaults()
	cfg.Clients = map[string]guard.ClientRules{"c1": {Budget: guard.Budget{PerDay: 3}}}
	f := newGuard(t, cfg)
	for i := range 30 {
		f.send(t0, in("c1", fmt.Sprintf("9%09d", i*1000003)))
		f.send(t0, in("c2", fmt.Sprintf("98765%05d", i)))
		f.send(t0, in("c3", fmt.Sprintf("91234%05d", i)))
	}
	if bs := f.g.Blocks(t0); len(bs) != 2 {
		t.Fatalf("blocks %+v", bs)
	}
	// A reload that safe-lists one range and keeps the budget's counts.
	cfg.SafeList = []string{"+91-912"}
	if err := f.g.Swap(cfg, t0); err != nil {
		t.Fatal(err)
	}
	bs := f.g.Blocks(t0)
	if len(bs) != 1 || bs[0].Client != "c2" {
		t.Fatalf("blocks after the reload: %+v", bs)
	}
	if !strings.Contains(f.logs.String(), "why=\"range on guard.safe_list\"") {
		t.Fatalf("no log line for the dropped block:\n%s", f.logs.String())
	}
	if err := f.send(t0, in("c1", "9000000001")); ruleOf(err) != guard.RuleBudget {
		t.Fatalf("budget after reload: got %v, want budget (counts kept)", err)
	}
	cfg.RangeDigits = []int{5}
	if err := f.g.Swap(cfg, t0); err != nil {
		t.Fatal(err)
	}
	if bs := f.g.Blocks(t0); len(bs) != 0 {
		t.Fatalf("blocks of a size no longer tracked: %+v", bs)
	}
	bad := cfg
	bad.Mode = "off"
	if err := f.g.Swap(bad, t0); err == nil {
		t.Fatal("Swap took a bad mode")
	}
}

// TestGuard_Concurrent: many goroutines flooding one range at once get
// no more through than one would: a send is checked and counted under one
// lock.
func TestGuard_Concurrent(t *testing.T) {
	cfg := guard.Defaults()
	cfg.Velocity.Sequential, cfg.Velocity.Spike = 0, 50
	f := newGuard(t, cfg)
	var wg sync.WaitGroup
	var sent atomic.Int64
	rng := rand.New(rand.NewPCG(9, 10))
	nums := make([]string, 1600)
	for i := range nums {
		nums[i] = fmt.Sprintf("987650%04d", rng.IntN(10000))
	}
	for w := range 16 {
		wg.Go(func() {
			for i := range 100 {
				s := in("c1", nums[w*100+i])
				if err := f.send(t0, s); err == nil {
					sent.Add(1)
					f.verify(t0, t0, in("c2", "91"+s.National[2:]))
				}
				f.g.Blocks(t0)
			}
		})
	}
	wg.Wait()
	if n := sent.Load(); n != 49 {
		t.Fatalf("got %d through concurrently, want 49 (the 50th, velocity.spike, trips)", n)
	}
}

func TestConfig_Check(t *testing.T) {
	cfg := guard.Defaults()
	if ps := cfg.Check(); len(ps) != 0 {
		t.Fatalf("defaults: %v", ps)
	}
	cfg.Mode = "off"
	cfg.RangeDigits = []int{4, 4, 12}
	cfg.SafeList = []string{"91"}
	cfg.Conversion.MinRate = 2
	cfg.Conversion.Grace = cfg.Conversion.Window
	cfg.Clients = map[string]guard.ClientRules{"c1": {Budget: guard.Budget{PerHour: -1}, SafeList: []string{"+x"}}}
	want := []string{"mode", "safe_list[0]", "range_digits[1]", "range_digits[2]", "conversion.grace", "conversion.min_rate",
		"c1:safe_list[0]", "c1:budget"}
	ps := cfg.Check()
	var got []string
	for _, p := range ps {
		path := p.Path
		if p.Client != "" {
			path = p.Client + ":" + path
		}
		got = append(got, path)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := guard.New(cfg, guard.Options{}); err == nil {
		t.Fatal("New took a bad config")
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{"+91-98765": "9198765", " +91 98765 ": "9198765", "+4477009": "4477009"} {
		if got, err := guard.ParsePrefix(in); err != nil || got != want {
			t.Errorf("%q: got %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "+", "91", "+91x", "+1234567890123456"} {
		if _, err := guard.ParsePrefix(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestGuard_OddInput: times near or before 1970, empty numbers and zero
// tickets never panic.
func TestGuard_OddInput(t *testing.T) {
	f := newGuard(t, guard.Defaults())
	for _, now := range []time.Time{time.Unix(0, 0), time.Unix(-86400*400, 0), {}, t0} {
		for _, s := range []guard.Send{{}, {Client: "c1"}, {Client: "c1", CC: "1", National: "2"}, in("c1", "98765000000000000")} {
			tk, err := f.g.Admit(now, s)
			if err == nil {
				f.g.Sent(tk, "a")
			}
			f.g.Unsent(tk)
			f.g.Verified(now, guard.Verification{Client: s.Client, CC: s.CC, National: s.National, SentAt: now, Carrier: "a"})
		}
		f.g.Sent(guard.Ticket{}, "a")
		f.g.Unsent(guard.Ticket{})
		f.g.Blocks(now)
	}
}

// FuzzParsePrefix: any input gives digits or an error, never a panic, and
// the digits parse back to themselves.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"+91-98765", "+1 555", "+", "91", "+44-77009001234567", "+9x", " +49 151 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := guard.ParsePrefix(s)
		if err != nil {
			return
		}
		if back, err := guard.ParsePrefix("+" + d); err != nil || back != d {
			t.Fatalf("%q: digits %q parse back as %q %v", s, d, back, err)
		}
	})
}

// TestGuard_LargerRange: a pump that moves on to the next range of 10,000
// is stopped by the range of a million around both at once; a send the
// smaller range refused did not count in the larger one.
func TestGuard_LargerRange(t *testing.T) {
	f := newGuard(t, guard.Defaults())
	for i := range 21 {
		f.send(t0, in("c1", fmt.Sprintf("987650%04d", i)))
	}
	if err := f.send(t0, in("c1", "9876510000")); err != nil {
		t.Fatalf("first send to the next range: %v", err)
	}
	if err := f.send(t0, in("c1", "9876510001")); ruleOf(err) != guard.RuleVelocity {
		t.Fatalf("second send to the next range: got %v, want velocity", err)
	}
	bs := f.g.Blocks(t0)
	if len(bs) != 2 || bs[1].Range != "+91-9876xxxxxx" {
		t.Fatalf("blocks %+v", bs)
	}
}
