package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// smsTo counts the SMS the simulator accepted to numbers starting with
// prefix (E.164 digits), but those in except.
func smsTo(sim *smsc.Server, prefix string, except map[string]bool) int {
	n := 0
	for _, m := range sim.Messages() {
		if strings.HasPrefix(m.Dst, prefix) && !except[m.Dst] {
			n++
		}
	}
	return n
}

// lastCode is the code of the last SMS to e164 (digits) the simulator got.
func lastCode(sim *smsc.Server, e164 string) string {
	msgs := sim.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Dst == e164 {
			return codeRE.FindString(msgs[i].Text)
		}
	}
	return ""
}

// attackedRange is a range the attack pumps: +cc-prefix followed by four
// consecutive digits.
type attackedRange struct{ cc, prefix string }

func (r attackedRange) number(i int) string { return fmt.Sprintf("+%s-%s%04d", r.cc, r.prefix, i) }
func (r attackedRange) digits() string      { return r.cc + r.prefix }

// legitNumber is a random number of a real user, outside the attacked ranges.
func legitNumber(rng *rand.Rand, clientB bool, attacked []attackedRange) string {
	for {
		var cc, nat string
		switch k := rng.IntN(5); {
		case clientB || k == 0: // client B sends to India only
			cc, nat = "91", fmt.Sprintf("9%09d", rng.IntN(1e9))
		case k == 1:
			cc, nat = "49", fmt.Sprintf("151%08d", rng.IntN(1e8))
		case k == 2:
			cc, nat = "1", fmt.Sprintf("212%07d", 2000000+rng.IntN(8000000))
		case k == 3:
			cc, nat = "234", fmt.Sprintf("803%07d", rng.IntN(1e7))
		default:
			cc, nat = "55", fmt.Sprintf("119%08d", rng.IntN(1e8))
		}
		hit := false
		for _, r := range attacked {
			hit = hit || strings.HasPrefix(cc+nat, r.digits())
		}
		if !hit {
			return "+" + cc + "-" + nat
		}
	}
}

// TestGuard_PumpingAttack replays an SMS-pumping attack through the
// daemon, over HTTP and SMPP to the simulator, with the guard's defaults:
// client A's leaked key sends to consecutive numbers of three ranges, at
// up to 300 a second, and never verifies; meanwhile client B and client
// A's real users send to random numbers and verify 80 % of the codes, and
// users of the attacked ranges who verified before the attack log in
// again. Goals: under 50 SMS per attacked range reach the carrier, and no
// legitimate send is refused.
func TestGuard_PumpingAttack(t *testing.T) {
	sim := startSim(t, smsc.Options{ReceiptDelay: 5 * time.Millisecond})
	cfg := testConfig(t, cfgOpts{simAddr: sim.Addr(), perHour: 1000})
	for i := range cfg.Clients {
		cfg.Clients[i].Rate = daemon.RateConfig{PerSecond: 1e5, Burst: 1e5} // the attack and the real users share client A
	}
	cfg.Carriers[0].Window = 32
	cfg.Log.Level = "info"
	g := startGateway(t, cfg)
	waitSimBound(t, sim, 2)
	attacked, sendAs := pumpingAttack(t, sim, []*gateway{g})

	parent := t
	t.Run("Explained", func(t *testing.T) {
		code, body := call(t, "GET", g.admin+"/guard/blocks", "", "")
		var blocks []struct {
			Rule, Range, Client, Reason, Action string
			Since                               time.Time
			Refused                             int
		}
		if code != 200 || json.Unmarshal([]byte(body), &blocks) != nil {
			t.Fatalf("GET /guard/blocks: %d %s", code, body)
		}
		ranges := map[string]bool{}
		for _, b := range blocks {
			if b.Rule != "velocity" || b.Client != clientA || b.Action != "block" || b.Since.IsZero() ||
				!strings.Contains(b.Reason, "consecutive-looking") || b.Refused == 0 {
				t.Errorf("block %+v", b)
			}
			ranges[b.Range] = true
		}
		// The NOC's status page lists them too.
		if code, page := call(t, "GET", g.admin+"/", "", ""); code != 200 || !strings.Contains(page, "91-981110xxxx") { // html escapes the +
			t.Errorf("status page (%d) lacks the blocked range +91-981110xxxx", code)
		}
		for _, want := range []string{"+91-981110xxxx", "+49-1517770xxxx", "+234-803111xxxx"} {
			if !ranges[want] {
				t.Errorf("blocks lack %s: %s", want, body)
			}
		}
		logs := logsOf(parent)
		if n := strings.Count(logs, `"msg":"guard raised a block"`); n != 3 {
			t.Errorf("got %d log lines raising a block, want 3", n)
		}
		_, metrics := call(t, "GET", g.admin+"/metrics", "", "")
		for _, want := range []string{`otpgate_guard_decisions_total{action="block",rule="velocity"}`,
			`otpgate_guard_decisions_total{action="allow",rule="verified"} 6`, "otpgate_guard_blocks 3",
			`otpgate_ratelimited_total{scope="guard"}`} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
	t.Run("Release", func(t *testing.T) {
		code, body := call(t, "POST", g.admin+"/guard/release", "", `{"range":"+91-981110xxxx"}`)
		if code != 200 || !strings.Contains(body, `"range": "+91-981110xxxx"`) {
			t.Fatalf("release: %d %s", code, body)
		}
		if code := sendAs(clientA, keyA, attacked[0].number(5000)); code != 200 {
			t.Fatalf("send after the release: %d", code)
		}
		if code := sendAs(clientA, keyA, attacked[1].number(5000)); code != 429 {
			t.Fatalf("send to a range still blocked: %d", code)
		}
		if code, body := call(t, "POST", g.admin+"/guard/release", "", `{"range":"98765"}`); code != 400 {
			t.Fatalf("bad range: %d %s", code, body)
		}
	})
}

// pumpingAttack runs the attack of TestGuard_PumpingAttack against nodes
// (each request through the next node, so that a code is mostly verified
// through another node than the one that sent it) and checks its goals. It
// returns the attacked ranges and its send.
func pumpingAttack(t *testing.T, sim *smsc.Server, nodes []*gateway) ([]attackedRange, func(clientID, key, number string) int) {
	t.Helper()
	client := benchClient()
	var turn atomic.Int64
	next := func() *gateway { return nodes[int(turn.Add(1))%len(nodes)] }
	sendAs := func(clientID, key, number string) int {
		code, err := post(client, next().url+sendPath, key, sendBody(clientID, number, "6"))
		if err != nil {
			return 0
		}
		return code
	}
	verifyAs := func(clientID, key, number string) int {
		c := lastCode(sim, strings.NewReplacer("+", "", "-", "").Replace(number))
		code, err := post(client, next().url+verifyPath, key, verifyBody(clientID, number, c))
		if err != nil {
			return 0
		}
		return code
	}

	attacked := []attackedRange{{"91", "981110"}, {"49", "1517770"}, {"234", "803111"}}
	// Users of the attacked ranges who verified a code before the attack.
	returning := map[string]bool{} // E.164 digits
	var returningNumbers []string
	for _, r := range attacked {
		for _, i := range []int{9990, 9991} {
			n := r.number(i)
			if code := sendAs(clientA, keyA, n); code != 200 {
				t.Fatalf("returning user %s: send %d", n, code)
			}
			if code := verifyAs(clientA, keyA, n); code != 200 {
				t.Fatalf("returning user %s: verify %d", n, code)
			}
			returning[strings.NewReplacer("+", "", "-", "").Replace(n)] = true
			returningNumbers = append(returningNumbers, n)
		}
	}

	var (
		attackDone           = make(chan struct{})
		legitSends, legitBad atomic.Int64
		verifies             atomic.Int64
		badMu                sync.Mutex
		bad                  []string
		wg                   sync.WaitGroup
	)
	refuse := func(format string, a ...any) {
		legitBad.Add(1)
		badMu.Lock()
		if len(bad) < 10 {
			bad = append(bad, fmt.Sprintf(format, a...))
		}
		badMu.Unlock()
	}
	// Legitimate traffic: 4 workers for client A's users, 2 for client B.
	for w := range 6 {
		isB := w >= 4
		id, key := clientA, keyA
		if isB {
			id, key = clientB, keyB
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for {
				select {
				case <-attackDone:
					return
				default:
				}
				n := legitNumber(rng, isB, attacked)
				legitSends.Add(1)
				if code := sendAs(id, key, n); code != 200 {
					refuse("%s send %s: %d", id, n, code)
					continue
				}
				if rng.Float64() < 0.8 {
					verifies.Add(1)
					if code := verifyAs(id, key, n); code != 200 {
						refuse("%s verify %s: %d", id, n, code)
					}
				}
			}
		})
	}
	// The attack: 8 workers per range, 300 sends a second in all.
	lim := rate.NewLimiter(300, 10)
	var attackSent, attack429 atomic.Int64
	var awg sync.WaitGroup
	for _, r := range attacked {
		var next atomic.Int64
		for range 8 {
			awg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= 300 {
						return
					}
					if err := lim.Wait(context.Background()); err != nil {
						return
					}
					switch sendAs(clientA, keyA, r.number(i)) {
					case 200:
						attackSent.Add(1)
					case 429:
						attack429.Add(1)
					}
				}
			})
		}
	}
	awg.Wait()
	// The returning users log in while their ranges are blocked.
	for _, n := range returningNumbers {
		legitSends.Add(1)
		if code := sendAs(clientA, keyA, n); code != 200 {
			refuse("returning user %s: %d", n, code)
		}
	}
	close(attackDone)
	wg.Wait()

	for _, r := range attacked {
		got := smsTo(sim, r.digits(), returning)
		t.Logf("range +%s-%sxxxx: %d SMS reached the carrier before the attack was cut off", r.cc, r.prefix, got)
		if got >= 50 {
			t.Errorf("range +%s-%sxxxx: %d SMS reached the carrier, want under 50", r.cc, r.prefix, got)
		}
	}
	t.Logf("attack: %d sends answered 200, %d answered 429; legitimate: %d sends (%d verified), %d refused",
		attackSent.Load(), attack429.Load(), legitSends.Load(), verifies.Load(), legitBad.Load())
	if legitBad.Load() > 0 {
		t.Errorf("%d legitimate requests refused, want none; first: %v", legitBad.Load(), bad)
	}
	if attack429.Load() < 3*200 {
		t.Errorf("only %d attack sends refused", attack429.Load())
	}

	return attacked, sendAs
}

// pump sends n consecutive numbers of +91-987650xxxx from i as client A
// and returns how many answered 200.
func pump(t *testing.T, g *gateway, from, n int) int {
	t.Helper()
	ok := 0
	for i := from; i < from+n; i++ {
		if code, _ := send(t, g, fmt.Sprintf("+91-987650%04d", i)); code == 200 {
			ok++
		}
	}
	return ok
}

// TestGuard_Reload: monitor mode first, then enforce, then a safe list,
// by reloading the file; blocks and counts carry over sensibly.
func TestGuard_Reload(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	dir := t.TempDir()
	base := configYAML(t, cfgOpts{dir: dir, simAddr: sim.Addr(), ratePerSec: 1000, rateBurst: 1000})
	path := filepath.Join(dir, "otpgate.yaml")
	writeConfig(t, path, base+"guard: {mode: monitor}\n")
	cfg, err := daemon.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	blocks := func() string { _, b := call(t, "GET", g.admin+"/guard/blocks", "", ""); return b }

	// Monitor: the pump goes through, the block is listed and logged.
	if n := pump(t, g, 0, 30); n != 30 {
		t.Fatalf("monitor mode: %d of 30 through", n)
	}
	if b := blocks(); !strings.Contains(b, `"action": "monitor"`) || !strings.Contains(b, "+91-987650xxxx") {
		t.Fatalf("blocks in monitor mode: %s", b)
	}
	if !strings.Contains(logsOf(t), `"msg":"guard raised a block","component":"guard","rule":"velocity","range":"+91-987650xxxx","client":"`+clientA+`","action":"monitor"`) {
		t.Fatalf("no monitor log line:\n%s", logsOf(t))
	}

	// Enforce: the block raised in monitor mode goes; the pump, still on,
	// is stopped at once.
	writeConfig(t, path, base+"guard: {mode: enforce, block_prefixes: [\"+1-555\"]}\n")
	if err := g.d.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if b := blocks(); strings.Contains(b, "987650") {
		t.Fatalf("the monitor block survived the switch: %s", b)
	}
	if n := pump(t, g, 30, 10); n != 0 {
		t.Fatalf("enforce after monitor: %d of 10 through, want 0", n)
	}
	if code, _ := send(t, g, "+1-5551234567"); code != 429 {
		t.Fatalf("block prefix: got %d, want 429", code)
	}
	if b := blocks(); !strings.Contains(b, `"action": "block"`) || !strings.Contains(b, `"range": "+1-555"`) {
		t.Fatalf("blocks in enforce mode: %s", b)
	}

	// The range goes on the safe list: its block goes, its sends pass.
	writeConfig(t, path, base+"guard: {safe_list: [\"+91-98765\"]}\n")
	if err := g.d.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if b := blocks(); b != "[]\n" {
		t.Fatalf("blocks after safe-listing: %s", b)
	}
	if n := pump(t, g, 40, 30); n != 30 {
		t.Fatalf("safe-listed range: %d of 30 through", n)
	}

	t.Run("Rejected", func(t *testing.T) {
		writeConfig(t, path, base+"guard: {mode: off, range_digits: [0], velocity: {factor: -1}}\n")
		err := g.d.ReloadFile(path)
		for _, want := range []string{"guard.mode", "guard.range_digits[0]", "guard.velocity.factor"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want a rejection naming %s", err, want)
			}
		}
		if n := pump(t, g, 70, 5); n != 5 {
			t.Fatal("the running guard changed after a rejected reload")
		}
	})
}

// TestGuard_Config: the guard's keys, each client's budget, weight and
// safe list, and otp.default_client_rate are checked with their paths.
func TestGuard_Config(t *testing.T) {
	cfg := testConfig(t, cfgOpts{simAddr: "127.0.0.1:1"})
	if cfg.Guard.Mode != "enforce" || len(cfg.Guard.RangeDigits) != 2 || cfg.OTP.DefaultClientRate.PerSecond != 10 {
		t.Fatalf("defaults: %+v %+v", cfg.Guard, cfg.OTP.DefaultClientRate)
	}
	y := configYAML(t, cfgOpts{simAddr: "127.0.0.1:1"})
	y = strings.Replace(y, "    countries: [IN]\n", "    countries: [IN]\n    weight: -1\n    safe_list: [\"44\"]\n"+
		"    budget: {per_hour: -1, countries: {ZZ: {per_day: 1}}}\n", 1)
	y = strings.Replace(y, "otp: {", "otp: {default_client_rate: {per_second: 5, burst: 0}, ", 1)
	y += "guard: {block_prefixes: [\"+44-7x\"], conversion: {min_rate: 1.5, grace: 1h}, verified_numbers: 0}\n"
	bad, err := daemon.ParseConfig(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	ps := bad.Validate().Error()
	for _, want := range []string{"otp.default_client_rate.burst", "clients[1].weight", "clients[1].budget.countries.ZZ",
		"clients[1].safe_list[0]", "clients[1].budget: per_hour", "guard.block_prefixes[0]", "guard.conversion.min_rate",
		"guard.conversion.grace", "guard.verified_numbers"} {
		if !strings.Contains(ps, want) {
			t.Errorf("problems lack %s: %s", want, ps)
		}
	}
}

// TestGuard_FairShare: client A's burst does not hold client B's sends
// behind it on a carrier at its TPS: clients[].weight reaches the
// carrier's queue.
func TestGuard_FairShare(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	cfg := testConfig(t, cfgOpts{simAddr: sim.Addr(), submitTimout: "10s"})
	cfg.Carriers[0].TPS = 100
	for i := range cfg.Clients {
		cfg.Clients[i].Rate = daemon.RateConfig{PerSecond: 1000, Burst: 1000}
	}
	cfg.Clients[1].Weight = 3
	g := startGateway(t, cfg)
	waitSimBound(t, sim, 2)
	client := benchClient()
	rng := rand.New(rand.NewPCG(1, 1))
	var wg sync.WaitGroup
	fire := func(id, key, cc string, n int) {
		for range n {
			number := fmt.Sprintf("+91-%s%07d", cc, rng.IntN(1e7))
			wg.Go(func() {
				if code, err := post(client, g.url+sendPath, key, sendBody(id, number, "6")); code != 200 {
					t.Errorf("%s %s: %d %v", id, number, code, err)
				}
			})
		}
	}
	fire(clientA, keyA, "981", 200)
	for sim.Stats().Accepted < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	fire(clientB, keyB, "982", 30)
	wg.Wait()
	first, last, n := -1, -1, 0
	msgs := sim.Messages()
	for i, m := range msgs {
		if strings.HasPrefix(m.Dst, "91982") {
			if first < 0 {
				first = i
			}
			last, n = i, n+1
		}
	}
	// Weight 3 against 1: B's 30 go out within about 40 submits, not
	// after A's 180 left.
	if n != 30 || last-first > 50 {
		t.Fatalf("B's %d SMS at %d..%d of %d, want 30 within 50 submits", n, first, last, len(msgs))
	}
}
