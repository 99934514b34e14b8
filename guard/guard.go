package guard

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Rules, as log lines, blocks and the decisions metric name them.
const (
	// RuleNone: no rule had anything to say; the send goes out.
	RuleNone = "none"
	// RuleSafeList: the number is on a safe list; the guard let it through
	// without looking further.
	RuleSafeList = "safe_list"
	// RuleVerified: a range rule blocks the number's range, but the number
	// verified a code recently, so it goes out.
	RuleVerified = "verified"
	// RuleBlockPrefix: the number is under a guard.block_prefixes entry.
	RuleBlockPrefix = "block_prefix"
	// RuleBudget: the client's hourly or daily budget (overall or for the
	// number's country) is spent.
	RuleBudget = "budget"
	// RuleVelocity: the range got many sends to consecutive-looking
	// numbers, or a spike of sends, against its own baseline.
	RuleVelocity = "velocity"
	// RuleConversion: too few of the client's sends to the range were verified.
	RuleConversion = "conversion"
	// RuleCarrierConversion: too few of all clients' sends to the range
	// through one carrier were verified.
	RuleCarrierConversion = "carrier_conversion"
)

// Actions of a decision.
const (
	// ActionAllow: the send goes out.
	ActionAllow = "allow"
	// ActionBlock: the send is refused.
	ActionBlock = "block"
	// ActionMonitor: a rule would have refused the send; in monitor mode
	// it goes out.
	ActionMonitor = "monitor"
)

// ErrRefused is what every refusal of Admit matches.
var ErrRefused = errors.New("guard: send refused")

// Refusal is the error of a refused send: the rule that refused it. Its
// text names no number, range or figure (the log line has them).
type Refusal struct{ Rule string }

func (r *Refusal) Error() string { return "guard: send refused by rule " + r.Rule }

// Unwrap makes a Refusal match ErrRefused.
func (r *Refusal) Unwrap() error { return ErrRefused }

var refusals = map[string]*Refusal{}

func init() {
	for _, r := range []string{RuleBlockPrefix, RuleBudget, RuleVelocity, RuleConversion, RuleCarrierConversion} {
		refusals[r] = &Refusal{Rule: r}
	}
}

// Observer is told of the guard's decisions: every Admit makes one
// (RuleNone/ActionAllow when nothing applied), and of the number of
// active blocks whenever it changes. Implementations must be safe for
// concurrent use and quick: they run on the send path.
type Observer interface {
	GuardDecision(rule, action string)
	GuardBlocks(n int)
}

type nopObserver struct{}

func (nopObserver) GuardDecision(string, string) {}
func (nopObserver) GuardBlocks(int)              {}

// logEvery is how often at most a block (or a budget) logs the sends it
// refuses: the first at once, then one line with a count.
const logEvery = 10 * time.Second

// Guard decides whether an OTP send may go out. It is safe for concurrent
// use; Swap replaces its configuration while sends run. Its memory is
// bounded by its configuration (see Config.MaxRanges, MaxBlocks and
// VerifiedNumbers), whatever numbers are sent.
type Guard struct {
	cfg      atomic.Pointer[compiled]
	ranges   *lru[rangeState] // per client, country code and range
	carriers *lru[conversion] // per carrier, country code and range
	blocks   blockTable
	verified atomic.Pointer[verifiedSet]
	log      *slog.Logger
	obs      Observer
	swapMu   sync.Mutex

	// The fleet's shared state (nil: this process's own); see sync.go.
	shared        Shared
	syncEvery     time.Duration
	sharedTimeout time.Duration
	sharedWarn    atomic.Int64 // unix ns of the last warning that it failed
	conv          convTable    // hot ranges' conversion counts for the fleet
	syncMu        sync.Mutex   // one Sync at a time; guards version
	version       string       // of the fleet's block set this table has
}

// rangeState is what the guard keeps per client and range: 304 bytes,
// plus the key and the table's overhead (see TestGuard_MemoryPerRange).
type rangeState struct {
	velocity
	conversion
}

// compiled is a Config made ready for lookups.
type compiled struct {
	Config
	safe  prefixSet
	block prefixSet
	// prefixBlocks are the block_prefixes entries as blocks, for the
	// list and the counts of what they refuse.
	prefixBlocks map[string]*block
	clientSafe   map[string]prefixSet
	budgets      map[string]*clientBudget
	levels       []int // RangeDigits, smallest first
	vStep        int64
	cStep        int64
	since        time.Time // when this configuration took effect
}

// Options are a Guard's collaborators. Logger defaults to a discarding
// one; Observer to none.
type Options struct {
	Logger   *slog.Logger
	Observer Observer
	// Now is when the guard starts (time.Now when zero).
	Now time.Time
	// Shared, when set, is the fleet's shared state: blocks, budgets and
	// verified numbers are then the fleet's (see Shared); nil keeps them
	// in this process.
	Shared Shared
	// SyncEvery is how often Run reads the fleet's blocks (default
	// DefaultSyncEvery); SharedTimeout bounds a call to the shared state
	// on the send path (default DefaultSharedTimeout).
	SyncEvery, SharedTimeout time.Duration
}

// New returns a Guard with cfg, which must pass Check.
func New(cfg Config, o Options) (*Guard, error) {
	if ps := cfg.Check(); len(ps) > 0 {
		return nil, fmt.Errorf("guard: %s: %s", ps[0].Path, ps[0].Msg)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	g := &Guard{log: o.Logger, obs: o.Observer, blocks: blockTable{m: map[string]*block{}}, shared: o.Shared,
		syncEvery: cmp.Or(o.SyncEvery, DefaultSyncEvery), sharedTimeout: cmp.Or(o.SharedTimeout, DefaultSharedTimeout)}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	g.ranges = newLRU[rangeState](cfg.MaxRanges)
	g.carriers = newLRU[conversion](cfg.MaxRanges)
	g.verified.Store(newVerifiedSet(cfg.VerifiedNumbers, o.Now))
	g.cfg.Store(compile(cfg, nil, o.Now))
	return g, nil
}

func compile(cfg Config, old *compiled, now time.Time) *compiled {
	c := &compiled{Config: cfg, safe: newPrefixSet(cfg.SafeList), block: newPrefixSet(cfg.BlockPrefixes),
		clientSafe: map[string]prefixSet{}, levels: slices.Sorted(slices.Values(cfg.RangeDigits)),
		vStep: max(1, int64(cfg.Velocity.Window)/vSteps), cStep: max(1, int64(cfg.Conversion.Window)/cSteps), since: now}
	var prev map[string]*clientBudget
	if old != nil {
		prev = old.budgets
	}
	c.budgets = buildBudgets(cfg.Clients, prev)
	c.prefixBlocks = map[string]*block{}
	for _, e := range c.block.set {
		if old != nil && old.prefixBlocks[e] != nil {
			c.prefixBlocks[e] = old.prefixBlocks[e]
			continue
		}
		d, _ := ParsePrefix(e)
		c.prefixBlocks[e] = &block{digits: d, info: Block{Rule: RuleBlockPrefix, Range: e, Client: "*",
			Reason: "guard.block_prefixes entry " + e, Since: now}}
	}
	for id, r := range cfg.Clients {
		if len(r.SafeList) > 0 {
			c.clientSafe[id] = newPrefixSet(r.SafeList)
		}
	}
	return c
}

// Mode returns the mode in force.
func (g *Guard) Mode() string { return g.cfg.Load().Mode }

// Send is a send the guard is asked about: the client and the parsed
// number.
type Send struct {
	Client   string
	Country  string // ISO 3166 alpha-2, upper case
	CC       string // country calling code digits
	National string // national significant number digits
}

// Ticket is an admitted send. Give it back to Sent once a carrier took the
// SMS (or may have), or to Unsent when it certainly did not go out.
type Ticket struct {
	s      Send
	at     int64 // unix nanoseconds of Admit
	nlev   int   // range sizes whose velocity counted the send: Unsent takes it back
	lev    [maxLevels]int
	seq    [maxLevels]bool
	budget [2]*budgetState // counted budgets: Unsent gives them back
	// sbudget says which caps the fleet's budget counted: 1 overall, 2
	// the country's; hot, at which range sizes the fleet's velocity did.
	sbudget uint8
	hot     [maxLevels]bool
	bypass  bool // safe-listed: nothing to count
}

// Admit decides whether s may go out at now. It returns a *Refusal
// (matching ErrRefused) when a rule refuses it; in monitor mode it never
// does. Admitted sends are counted at once, so that concurrent sends
// cannot slip past a threshold together.
func (g *Guard) Admit(now time.Time, s Send) (Ticket, error) {
	c := g.cfg.Load()
	t := Ticket{s: s, at: now.UnixNano()}
	enforce := c.Mode == ModeEnforce
	var buf [40]byte
	e164 := append(append(buf[:0], s.CC...), s.National...)

	// Safe lists and block prefixes: the longest matching entry wins; a
	// tie goes to the block.
	safeLen, _ := c.safe.match(e164)
	if cs, ok := c.clientSafe[s.Client]; ok {
		if l, _ := cs.match(e164); l > safeLen {
			safeLen = l
		}
	}
	blockLen, blockEntry := c.block.match(e164)
	if safeLen > 0 && safeLen > blockLen {
		t.bypass = true
		g.obs.GuardDecision(RuleSafeList, ActionAllow)
		return t, nil
	}
	rule := ""
	if blockLen > 0 {
		rule = RuleBlockPrefix
		g.refused(c.prefixBlocks[blockEntry], now, enforce)
		if enforce {
			return t, g.refuse(RuleBlockPrefix)
		}
	}

	if cb := c.budgets[s.Client]; cb != nil {
		if r := g.takeBudget(c, cb, &t, now, enforce); r != "" && rule == "" {
			rule = RuleBudget
			if enforce {
				g.Unsent(t)
				return t, g.refuse(RuleBudget)
			}
		}
	}

	rangeRule, b := g.rangeRules(c, &t, now, e164)
	if rangeRule != "" {
		if g.isVerified(e164, now, c.VerifiedFor) {
			rangeRule = RuleVerified
		} else {
			g.refused(b, now, enforce)
			if rule == "" {
				rule = rangeRule
			}
		}
	}
	switch {
	case rule != "" && enforce:
		g.Unsent(t)
		return t, g.refuse(rule)
	case rule != "":
		g.obs.GuardDecision(rule, ActionMonitor)
	case rangeRule == RuleVerified:
		g.obs.GuardDecision(RuleVerified, ActionAllow)
	default:
		g.obs.GuardDecision(RuleNone, ActionAllow)
	}
	return t, nil
}

func (g *Guard) refuse(rule string) error {
	g.obs.GuardDecision(rule, ActionBlock)
	return refusals[rule]
}

// takeBudget counts t against the client's budgets and returns why one is
// spent ("" when none is). In enforce mode a spent budget counts nothing.
func (g *Guard) takeBudget(c *compiled, cb *clientBudget, t *Ticket, now time.Time, enforce bool) string {
	if g.shared != nil {
		if r, ok := g.takeSharedBudget(c, cb, t, now, enforce); ok {
			return r
		}
	}
	at := now.UnixNano()
	check := func(st *budgetState, l Limits, scope string) string {
		r := st.take(at, l, !enforce)
		if r == "" || !enforce {
			t.budget[slices.Index(t.budget[:], nil)] = st
		}
		if r != "" {
			if ok, n := st.shouldLog(at); ok {
				g.log.Warn(logBudget, keyRule, RuleBudget, keyClient, t.s.Client, keyScope, scope, keyReason, r,
					keyAction, actionOf(c), keyRefused, n)
			}
		}
		return r
	}
	if cb.overall != nil {
		if r := check(cb.overall, cb.limits, "*"); r != "" {
			return r
		}
	}
	if st := cb.countries[t.s.Country]; st != nil {
		if r := check(st, cb.climits[t.s.Country], t.s.Country); r != "" {
			return r
		}
	}
	return ""
}

func actionOf(c *compiled) string {
	if c.Mode == ModeEnforce {
		return ActionBlock
	}
	return ActionMonitor
}

// rangeRules applies the range rules to t at every range size: an active
// block of the range (for the client, or for all), then the velocity and
// conversion of the client's range, counting the send. It returns the
// first rule that blocks, and its block.
func (g *Guard) rangeRules(c *compiled, t *Ticket, now time.Time, e164 []byte) (string, *block) {
	at := now.UnixNano()
	var keyBuf [128]byte
	if g.blocks.n.Load() > 0 {
		for _, d := range c.levels {
			prefix := rangePrefix(t.s.National, d)
			for _, scope := range [2]string{t.s.Client, ""} {
				key := rangeKey(keyBuf[:0], scope, t.s.CC, prefix)
				if b := g.blocks.get(key, at); b != nil {
					return b.info.Rule, b
				}
			}
		}
	}
	v, cv := c.Velocity, c.Conversion
	for i, d := range c.levels {
		prefix := rangePrefix(t.s.National, d)
		key := rangeKey(keyBuf[:0], t.s.Client, t.s.CC, prefix)
		suffix := rangeSuffix(t.s.National, prefix)
		var sends, seq, judged, verified int
		var base float64
		var push []VelocityCount // allocated only for a hot range's send
		var snap []ConversionCount
		var bucket int64
		g.ranges.with(key, true, func(st *rangeState) {
			t.seq[i] = st.velocity.add(at, c.vStep, suffix, v.Gap, v.Baseline)
			t.lev[i], t.nlev = d, i+1
			sends, seq = st.velocity.totals(at, c.vStep)
			base = st.velocity.baseline(v.Window)
			if cv.MinSends > 0 {
				judged, verified = st.conversion.judged(at, c.cStep, int64(cv.Grace))
				if g.shared != nil {
					snap = g.hotConversion(&st.conversion, judged, verified, cv.MinRate)
				}
			}
			if g.shared != nil {
				push, bucket = hotCounts(&st.velocity, push, i == 0, sends, seq, t.seq[i], base, v), st.velocity.bucket
			}
		})
		if g.shared != nil && cv.MinSends > 0 {
			if snap != nil {
				g.addConversion(key, false, snap...)
			}
			judged, verified = g.fleetConversion(key, judged, verified)
		}
		if len(push) > 0 {
			if fs, fq, ok := g.fleetVelocity(key, bucket, push, c); ok {
				t.hot[i] = true
				// The baseline is this node's share of the range's
				// traffic: scale it as the sends.
				if fs > sends {
					base *= float64(fs) / float64(max(sends, 1))
					sends = fs
				}
				seq = max(seq, fq)
			}
		}
		threshold := v.Factor * base
		var reason string
		rule := RuleVelocity
		switch {
		case v.Sequential > 0 && seq >= v.Sequential && float64(sends) >= threshold:
			reason = fmt.Sprintf("%d sends to consecutive-looking numbers (%d sends in all) in %s; baseline %.1f per %s",
				seq, sends, v.Window, base, v.Window)
		case v.Spike > 0 && i == 0 && sends >= v.Spike && float64(sends) >= threshold:
			reason = fmt.Sprintf("%d sends in %s; baseline %.1f per %s", sends, v.Window, base, v.Window)
		case cv.MinSends > 0 && judged >= cv.MinSends && float64(verified) < cv.MinRate*float64(judged):
			rule = RuleConversion
			reason = conversionReason(verified, judged, cv, "")
		default:
			continue
		}
		b := g.raise(c, rule, t.s.Client, "", t.s.CC, prefix, len(t.s.National), d, reason, now,
			slog.Int(keySends, sends), slog.Int(keySequential, seq), slog.Float64(keyBaseline, math.Round(base*100)/100),
			slog.Int(keyJudged, judged), slog.Int(keyVerified, verified))
		return b.info.Rule, b
	}
	return "", nil
}

func conversionReason(verified, judged int, cv Conversion, carrier string) string {
	via := ""
	if carrier != "" {
		via = " through carrier " + carrier
	}
	return fmt.Sprintf("%d of %d sends%s verified (%.0f%%, minimum %.0f%%) between %s and %s ago",
		verified, judged, via, 100*float64(verified)/float64(judged), 100*cv.MinRate, cv.Window, cv.Grace)
}

// raise makes a block of rule on the range (scope "" is every client)
// and logs it, unless one is already active there; it returns the active one.
func (g *Guard) raise(c *compiled, rule, client, carrier, cc, prefix string, natLen, level int, reason string,
	now time.Time, figures ...slog.Attr) *block {
	var keyBuf [128]byte
	b := &block{key: string(rangeKey(keyBuf[:0], client, cc, prefix)), digits: cc + prefix, level: level,
		monitor: c.Mode == ModeMonitor, id: rand.Uint64()}
	shown := client
	if shown == "" {
		shown = "*"
	}
	b.info = Block{Rule: rule, Range: maskRange(cc, prefix, natLen), Client: shown, Carrier: carrier, Reason: reason,
		Since: now, Until: now.Add(c.BlockFor)}
	b.logAt.Store(now.UnixNano())
	stored := false // written to the fleet's blocks by this call
	if g.shared != nil {
		if a := g.putShared(b, now, c.MaxBlocks); a != b {
			b = a // raised on another node first: that one applies
		} else {
			stored = true
		}
	}
	active, added := g.blocks.add(b, now.UnixNano(), c.MaxBlocks)
	if g.shared == nil && !added || g.shared != nil && !stored {
		return active
	}
	attrs := []any{keyRule, rule, keyRange, b.info.Range, keyClient, shown, keyAction, actionOf(c), keyReason, reason,
		keyUntil, b.info.Until}
	if carrier != "" {
		attrs = append(attrs, keyCarrier, carrier)
	}
	for _, f := range figures {
		attrs = append(attrs, f)
	}
	g.log.Warn(logRaised, attrs...)
	g.obs.GuardBlocks(int(g.blocks.n.Load()))
	return b
}

// refused counts a send that b refuses (or would) and logs the count
// once per logEvery.
func (g *Guard) refused(b *block, now time.Time, enforce bool) {
	b.refused.Add(1)
	b.held.Add(1)
	if g.shared != nil {
		b.unflushed.Add(1)
	}
	at := now.UnixNano()
	last := b.logAt.Load()
	if last != 0 && at-last < int64(logEvery) || !b.logAt.CompareAndSwap(last, at) {
		return
	}
	n := b.held.Swap(0)
	msg := logRefused
	if !enforce {
		msg = logWouldRefuse
	}
	g.log.Warn(msg, keyRule, b.info.Rule, keyRange, b.info.Range, keyClient, b.info.Client, keyRefused, n,
		keyReason, b.info.Reason, keySince, b.info.Since)
}

// Sent records that a carrier took the SMS of t (carrier "" when it is
// unknown whether it went out): it counts toward the conversion of the
// range, for the client and for the carrier.
func (g *Guard) Sent(t Ticket, carrier string) {
	if t.bypass || t.s.Client == "" {
		return // safe-listed, or not from Admit
	}
	c := g.cfg.Load()
	cv := c.Conversion
	var keyBuf [128]byte
	now := t.at
	for _, d := range c.levels {
		prefix := rangePrefix(t.s.National, d)
		if cv.MinSends > 0 {
			key := rangeKey(keyBuf[:0], t.s.Client, t.s.CC, prefix)
			hot := false
			g.ranges.with(key, true, func(st *rangeState) {
				hot = st.conversion.addSent(t.at, now, c.cStep) && st.conversion.hot
			})
			if hot {
				g.addConversion(key, false, ConversionCount{Bucket: t.at / c.cStep, Sent: 1})
			}
		}
		if carrier == "" || cv.CarrierMinSends <= 0 {
			continue
		}
		var judged, verified int
		var snap []ConversionCount
		hot := false
		key := rangeKey(keyBuf[:0], carrier, t.s.CC, prefix)
		g.carriers.with(key, true, func(st *conversion) {
			hot = st.addSent(t.at, now, c.cStep) && st.hot
			judged, verified = st.judged(now, c.cStep, int64(cv.Grace))
			if g.shared != nil {
				snap = g.hotConversion(st, judged, verified, cv.MinRate)
			}
		})
		if g.shared != nil {
			if snap != nil {
				g.addConversion(key, true, snap...)
			}
			if hot {
				g.addConversion(key, true, ConversionCount{Bucket: t.at / c.cStep, Sent: 1})
			}
			judged, verified = g.fleetConversion(key, judged, verified)
		}
		if judged >= cv.CarrierMinSends && float64(verified) < cv.MinRate*float64(judged) {
			g.raise(c, RuleCarrierConversion, "", carrier, t.s.CC, prefix, len(t.s.National), d,
				conversionReason(verified, judged, cv, carrier), time.Unix(0, now),
				slog.Int(keyJudged, judged), slog.Int(keyVerified, verified))
		}
	}
}

// Unsent takes back the counts of t: its SMS certainly did not go out.
func (g *Guard) Unsent(t Ticket) {
	for _, b := range t.budget {
		if b != nil {
			b.undo(t.at)
		}
	}
	if t.sbudget != 0 {
		g.undoSharedBudget(t)
	}
	c := g.cfg.Load()
	var keyBuf [128]byte
	for i, d := range t.lev[:t.nlev] {
		key := rangeKey(keyBuf[:0], t.s.Client, t.s.CC, rangePrefix(t.s.National, d))
		g.ranges.with(key, false, func(st *rangeState) {
			if st != nil {
				st.velocity.undo(t.at, c.vStep, t.seq[i], c.Velocity.Baseline)
			}
		})
		if t.hot[i] {
			back := VelocityCount{Bucket: t.at / c.vStep, Sends: -1}
			if t.seq[i] {
				back.Seq = -1
			}
			g.fleetVelocity(key, back.Bucket, []VelocityCount{back}, c)
		}
	}
}

// Verification is a code verified: the client, the number and when the
// code was sent, and through which carrier ("" if unknown).
type Verification struct {
	Client   string
	Country  string
	CC       string
	National string
	SentAt   time.Time
	Carrier  string
}

// Verified records a verification at now: the number becomes exempt from
// the range rules for VerifiedFor, and the send counts as converted. A
// conversion block of the range whose conversion has recovered lifts.
func (g *Guard) Verified(now time.Time, v Verification) {
	c := g.cfg.Load()
	var buf [40]byte
	e164 := string(append(append(buf[:0], v.CC...), v.National...))
	g.verified.Load().add(e164, now)
	if g.shared != nil {
		ctx, cancel := g.sharedCtx()
		if err := g.shared.AddVerified(ctx, e164, now, c.VerifiedFor, c.VerifiedNumbers); err != nil {
			g.sharedFailed("verified", err)
		}
		cancel()
	}
	cv := c.Conversion
	at, sent := now.UnixNano(), v.SentAt.UnixNano()
	var keyBuf [128]byte
	// In a fleet the code was often sent through another node: the
	// verification counts here all the same (see conversion.addVerified).
	create := g.shared != nil
	for _, d := range c.levels {
		prefix := rangePrefix(v.National, d)
		key := rangeKey(keyBuf[:0], v.Client, v.CC, prefix)
		var judged, verified int
		hot := false
		g.ranges.with(key, create, func(st *rangeState) {
			if st != nil {
				hot = st.conversion.addVerified(sent, at, c.cStep) && st.conversion.hot
				judged, verified = st.conversion.judged(at, c.cStep, int64(cv.Grace))
			}
		})
		if g.shared != nil {
			if hot {
				g.addConversion(key, false, ConversionCount{Bucket: sent / c.cStep, Verified: 1})
			}
			judged, verified = g.fleetConversion(key, judged, verified)
		}
		if judged > 0 && judged >= cv.MinSends && float64(verified) >= cv.MinRate*float64(judged) {
			g.recover(key, RuleConversion, verified, judged, cv, "")
		}
		if v.Carrier != "" {
			judged, verified, hot = 0, 0, false
			ckey := rangeKey(keyBuf[:0], v.Carrier, v.CC, prefix)
			g.carriers.with(ckey, create, func(st *conversion) {
				if st != nil {
					hot = st.addVerified(sent, at, c.cStep) && st.hot
					judged, verified = st.judged(at, c.cStep, int64(cv.Grace))
				}
			})
			if g.shared != nil {
				if hot {
					g.addConversion(ckey, true, ConversionCount{Bucket: sent / c.cStep, Verified: 1})
				}
				judged, verified = g.fleetConversion(ckey, judged, verified)
			}
			if judged > 0 && judged >= cv.CarrierMinSends && float64(verified) >= cv.MinRate*float64(judged) {
				g.recover(rangeKey(keyBuf[:0], "", v.CC, prefix), RuleCarrierConversion, verified, judged, cv, v.Carrier)
			}
		}
	}
}

// recover lifts the block of rule under key, if any: its range converts
// again, verified of judged sends (through carrier, when it is one). It runs
// on every verification, so the reason is written only for a block lifted.
func (g *Guard) recover(key []byte, rule string, verified, judged int, cv Conversion, carrier string) {
	if g.blocks.n.Load() == 0 {
		return
	}
	b := g.blocks.removeKey(key, rule)
	if b == nil {
		return
	}
	g.deleteShared("recover", []string{b.key})
	g.log.Info(logRecovered, keyRule, rule, keyRange, b.info.Range, keyClient, b.info.Client,
		keyReason, conversionReason(verified, judged, cv, carrier), keyRefused, b.refused.Load())
	g.obs.GuardBlocks(int(g.blocks.n.Load()))
}

// rangePrefix is national without its last digits digits (all of it but
// nothing when it is not longer).
func rangePrefix(national string, digits int) string {
	if len(national) <= digits {
		return ""
	}
	return national[:len(national)-digits]
}

// rangeSuffix is the part of national after prefix as a number (its last
// nine digits at most).
func rangeSuffix(national, prefix string) uint32 {
	s := national[len(prefix):]
	if len(s) > maxRangeDigits {
		s = s[len(s)-maxRangeDigits:]
	}
	var n uint32
	for i := 0; i < len(s); i++ {
		n = n*10 + uint32(s[i]-'0')
	}
	return n
}

// rangeKey appends the key of a range: scope (a client, a carrier, or ""
// for every client), a zero byte, the country code, '-' and the prefix.
func rangeKey(buf []byte, scope, cc, prefix string) []byte {
	buf = append(buf, scope...)
	buf = append(buf, 0)
	buf = append(buf, cc...)
	buf = append(buf, '-')
	return append(buf, prefix...)
}
