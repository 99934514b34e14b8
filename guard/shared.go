package guard

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Shared is state that the guards of a fleet keep in one place (the fleet
// backend), so that the nodes act as one guard: the active blocks, and
// the clients' budget counts. A guard without one (Options.Shared nil)
// keeps everything in its process. Implementations must be safe for
// concurrent use; every method is bounded by its ctx.
type Shared interface {
	// PutBlock stores b unless a block is active under b.Key at now, and
	// returns the block active under it: b, or the earlier one. It keeps
	// at most capacity blocks: when full, the expired ones go, then the
	// one that ends first. A block lasts until its Until.
	PutBlock(ctx context.Context, b SharedBlock, now time.Time, capacity int) (SharedBlock, error)
	// SyncBlocks adds refused (sends refused since the last call, by
	// block key) to the blocks' counts, and returns the version of the
	// block set; when it differs from seen ("" never matches), also the
	// blocks active at now (nil when there are none) with their counts.
	SyncBlocks(ctx context.Context, seen string, refused map[string]int64, now time.Time) (version string, blocks []SharedBlock, changed bool, err error)
	// DeleteBlocks removes the blocks under keys and returns those it
	// removed, with their counts.
	DeleteBlocks(ctx context.Context, keys []string) ([]SharedBlock, error)
	// TakeBudget counts a send against the client's caps unless one of
	// them is spent (then it counts it only when Count is set), and
	// says which was.
	TakeBudget(ctx context.Context, t BudgetTake) (BudgetResult, error)
	// UndoBudget takes back a send TakeBudget counted: the caps of t
	// (their Limits unused) in the buckets of t.Hour and t.Day.
	UndoBudget(ctx context.Context, t BudgetTake) error
	// AddVerified remembers that number (country code and national
	// digits) verified a code at at, for ttl; the fleet remembers about
	// capacity numbers at most, the oldest forgotten first.
	AddVerified(ctx context.Context, number string, at time.Time, ttl time.Duration, capacity int) error
	// VerifiedAt returns when number last verified a code, if the fleet
	// remembers it.
	VerifiedAt(ctx context.Context, number string) (time.Time, bool, error)
	// AddVelocity adds counts (negative ones take back) to the fleet's
	// velocity buckets of a range, and returns its sends and
	// consecutive-looking sends in the window of v.Steps buckets ending at
	// v.Bucket.
	AddVelocity(ctx context.Context, v VelocityAdd) (sends, seq int, err error)
	// SyncConversion adds each range's counts to the fleet's and returns
	// the fleet's figures of each in window w, in the order of ranges.
	SyncConversion(ctx context.Context, w ConversionWindow, ranges []ConversionAdd) ([]ConversionFigures, error)
	// DeleteCounts forgets the fleet's counts of ranges: velocity and
	// conversion of clients' ranges, conversion of carriers' ranges.
	DeleteCounts(ctx context.Context, clientRanges, carrierRanges []string) error
}

// VelocityAdd is a node's counts of a range's sends added to the fleet's.
type VelocityAdd struct {
	// Key is the range: client, a zero byte, the country code, '-' and
	// the prefix.
	Key string
	// Bucket is the window's newest bucket (time divided by the step),
	// Steps its buckets; the counts expire after TTL.
	Bucket int64
	Steps  int
	TTL    time.Duration
	Counts []VelocityCount
}

// VelocityCount is the sends to a range in one bucket, and how many of
// them looked consecutive.
type VelocityCount struct {
	Bucket     int64
	Sends, Seq int
}

// A range becomes hot, and the fleet counts its sends, once this node saw
// hotSeq consecutive-looking sends to it in the velocity window, a
// quarter of its sends or more (or, for the smallest range size, a
// quarter of velocity.spike sends, at least hotSends), and its sends in the
// window are at least half of
// velocity.factor times its baseline here (a range spread evenly over the
// nodes trips the rule only when each node's share does that; a busy
// range's chance neighbours do not). Logins to random numbers almost
// never make a range hot, so their sends make no round trip; a pump
// to consecutive numbers spread over N nodes is counted fleet-wide after
// about N × hotSeq of its sends, one to random numbers of a range after
// N × spike/4.
const (
	hotSeq   = 2
	hotSends = 10
)

// hotCounts returns what the send just counted in v adds to the fleet's
// counts: nothing while the range is not hot, the send when it is, and
// this node's whole window when it just became hot.
func hotCounts(v *velocity, out []VelocityCount, level0 bool, sends, seq int, isSeq bool, base float64, vc Velocity) []VelocityCount {
	if v.hot {
		q := 0
		if isSeq {
			q = 1
		}
		return append(out, VelocityCount{Bucket: v.bucket, Sends: 1, Seq: q})
	}
	if (vc.Sequential > 0 && seq >= hotSeq && 4*seq >= sends || level0 && vc.Spike > 0 && sends >= max(hotSends, vc.Spike/4)) &&
		float64(sends) >= vc.Factor/2*base {
		v.hot = true
		return v.counts(out)
	}
	return out
}

// fleetVelocity adds counts to the fleet's of the range key and returns
// the fleet's window totals; ok is false when the shared state did not
// answer.
func (g *Guard) fleetVelocity(key []byte, bucket int64, counts []VelocityCount, c *compiled) (sends, seq int, ok bool) {
	ctx, cancel := g.sharedCtx()
	defer cancel()
	sends, seq, err := g.shared.AddVelocity(ctx, VelocityAdd{Key: string(key), Bucket: bucket, Steps: vSteps,
		TTL: c.Velocity.Window + time.Duration(c.vStep), Counts: counts})
	if err != nil {
		g.sharedFailed("velocity", err)
		return 0, 0, false
	}
	return sends, seq, true
}

// forgetFleetCounts forgets the fleet's counts of the ranges a released
// block covers at its size and the larger ones, so that the fleet's
// counts do not raise it again at once. (Those of smaller ranges within
// it expire with their window.)
func (g *Guard) forgetFleetCounts(c *compiled, released []*block) {
	if g.shared == nil {
		return
	}
	var clients, carriers []string
	var buf [128]byte
	for _, b := range released {
		scope, rng, _ := strings.Cut(b.key, "\x00")
		cc, prefix, _ := strings.Cut(rng, "-")
		if b.info.Client == "*" {
			scope = b.info.Carrier // a carrier's conversion block
			if scope == "" {
				continue
			}
		}
		for _, d := range c.levels {
			if d < b.level || len(prefix) < d-b.level {
				continue
			}
			k := string(rangeKey(buf[:0], scope, cc, prefix[:len(prefix)-(d-b.level)]))
			if b.info.Client == "*" {
				carriers = append(carriers, k)
			} else {
				clients = append(clients, k)
			}
		}
	}
	if len(clients)+len(carriers) == 0 {
		return
	}
	ctx, cancel := g.sharedCtx()
	defer cancel()
	if err := g.shared.DeleteCounts(ctx, clients, carriers); err != nil {
		g.sharedFailed("release", err)
	}
}

// SharedBlock is a block as the guards of a fleet share it.
type SharedBlock struct {
	// Key is the blocked scope and range: client (or "" for every
	// client), a zero byte, the country code, '-' and the prefix.
	Key string `json:"key"`
	// Digits are the country code and prefix, what a release matches.
	Digits string `json:"digits"`
	// Level is the range size (digits that vary).
	Level int `json:"level"`
	// Monitor is set when the block was raised in monitor mode.
	Monitor bool `json:"monitor,omitempty"`
	// ID tells one raise from another (nodes raising a block at once).
	ID uint64 `json:"id"`
	// Block is what the admin port shows; its Refused is the fleet's
	// count, Action is not stored.
	Block
}

// Budget windows as the fleet backend counts them: the same steps as the
// guard's own (an hour in twelve steps of five minutes, a day in
// twenty-four steps of an hour).
const (
	BudgetHourSteps = hourSteps
	BudgetHourStep  = time.Duration(hourStep)
	BudgetDaySteps  = daySteps
	BudgetDayStep   = time.Duration(dayStep)
)

// BudgetTake is a send counted against a client's budget caps.
type BudgetTake struct {
	Client string
	// Hour and Day are the send's buckets: its unix time divided by
	// BudgetHourStep and BudgetDayStep. A cap's hour is the sum of the
	// BudgetHourSteps buckets up to Hour, its day the BudgetDaySteps
	// buckets up to Day.
	Hour, Day int64
	// Count counts the send even when a cap is spent (monitor mode).
	Count bool
	Caps  []BudgetCap
}

// BudgetCap is one cap of a client's budget: overall (Scope "*") or for a
// country (its ISO code).
type BudgetCap struct {
	Scope string
	Limits
}

// BudgetResult is the outcome of TakeBudget.
type BudgetResult struct {
	// Spent is 1 + the index in Caps of the first spent cap; 0 when none is.
	Spent int
	// Hour and Day are that cap's sends in the last hour and day, before
	// this one.
	Hour, Day int
}

// Defaults of the options of a shared guard.
const (
	// DefaultSyncEvery is how often a guard with Shared state reads the
	// fleet's blocks: a block raised or released by another node takes
	// effect here within about this long.
	DefaultSyncEvery = time.Second
	// DefaultSharedTimeout bounds a call to the shared state on the send
	// path (a budget, a raise); past it the guard decides on its own
	// state.
	DefaultSharedTimeout = 500 * time.Millisecond
)

// sharedWarnEvery is how often at most the guard logs that the shared
// state did not answer.
const sharedWarnEvery = 10 * time.Second

// sharedCtx is a context bounded by the guard's shared timeout.
func (g *Guard) sharedCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), g.sharedTimeout)
}

// sharedFailed logs (at most every sharedWarnEvery) that op on the shared
// state failed: the guard then decides on its own state.
func (g *Guard) sharedFailed(op string, err error) {
	now := time.Now().UnixNano()
	last := g.sharedWarn.Load()
	if last != 0 && now-last < int64(sharedWarnEvery) || !g.sharedWarn.CompareAndSwap(last, now) {
		return
	}
	g.log.Warn(logSharedFailed, keyOp, op, keyError, err)
}

// takeSharedBudget counts t against the fleet's counts of the client's
// caps, and returns why one is spent ("" when none is). ok is false when
// the shared state did not answer: the guard then counts on its own.
func (g *Guard) takeSharedBudget(c *compiled, cb *clientBudget, t *Ticket, now time.Time, enforce bool) (reason string, ok bool) {
	var caps [2]BudgetCap
	var states [2]*budgetState
	var bits [2]uint8
	n := 0
	if cb.overall != nil {
		caps[n], states[n], bits[n] = BudgetCap{Scope: "*", Limits: cb.limits}, cb.overall, 1
		n++
	}
	if st := cb.countries[t.s.Country]; st != nil {
		caps[n], states[n], bits[n] = BudgetCap{Scope: t.s.Country, Limits: cb.climits[t.s.Country]}, st, 2
		n++
	}
	at := now.UnixNano()
	ctx, cancel := g.sharedCtx()
	defer cancel()
	res, err := g.shared.TakeBudget(ctx, BudgetTake{Client: t.s.Client, Hour: at / hourStep, Day: at / dayStep,
		Count: !enforce, Caps: caps[:n]})
	if err != nil {
		g.sharedFailed("budget", err)
		return "", false
	}
	if res.Spent == 0 || !enforce {
		for _, b := range bits[:n] {
			t.sbudget |= b
		}
	}
	if res.Spent < 1 || res.Spent > n {
		return "", true
	}
	i := res.Spent - 1
	l, scope := caps[i].Limits, caps[i].Scope
	if l.PerHour > 0 && res.Hour >= l.PerHour {
		reason = fmt.Sprintf("per_hour %d reached (%d sends in the last hour)", l.PerHour, res.Hour)
	} else {
		reason = fmt.Sprintf("per_day %d reached (%d sends in the last day)", l.PerDay, res.Day)
	}
	if ok, k := states[i].shouldLog(at); ok {
		g.log.Warn(logBudget, keyRule, RuleBudget, keyClient, t.s.Client, keyScope, scope, keyReason, reason,
			keyAction, actionOf(c), keyRefused, k)
	}
	return reason, true
}

// undoSharedBudget takes back the fleet's budget counts of t.
func (g *Guard) undoSharedBudget(t Ticket) {
	var caps [2]BudgetCap
	n := 0
	if t.sbudget&1 != 0 {
		caps[n].Scope = "*"
		n++
	}
	if t.sbudget&2 != 0 {
		caps[n].Scope = t.s.Country
		n++
	}
	ctx, cancel := g.sharedCtx()
	defer cancel()
	if err := g.shared.UndoBudget(ctx, BudgetTake{Client: t.s.Client, Hour: t.at / hourStep, Day: t.at / dayStep,
		Caps: caps[:n]}); err != nil {
		g.sharedFailed("budget", err)
	}
}

// isVerified reports whether the number e164 verified a code within
// verifiedFor: on this node, or, with shared state, on any.
func (g *Guard) isVerified(e164 []byte, now time.Time, verifiedFor time.Duration) bool {
	if g.verified.Load().recent(string(e164), now, verifiedFor) {
		return true
	}
	if g.shared == nil {
		return false
	}
	ctx, cancel := g.sharedCtx()
	defer cancel()
	at, ok, err := g.shared.VerifiedAt(ctx, string(e164))
	if err != nil {
		g.sharedFailed("verified", err)
		return false
	}
	if !ok || now.Sub(at) >= verifiedFor {
		return false
	}
	g.verified.Load().add(string(e164), at) // ask the fleet once per number, not at each send
	return true
}
