package guard

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Swap installs cfg, which must pass Check, for the sends that start
// after it. Counters and blocks carry over, except blocks that the new
// configuration makes meaningless: of a range size no longer tracked, of
// a rule now turned off, of a range now on a safe list, and those raised
// in monitor mode when the mode becomes enforce (they were never
// enforced; an attack still going on raises them again). A change of
// verified_numbers forgets the verified numbers.
func (g *Guard) Swap(cfg Config, now time.Time) error {
	if ps := cfg.Check(); len(ps) > 0 {
		return fmt.Errorf("guard: %s: %s", ps[0].Path, ps[0].Msg)
	}
	g.swapMu.Lock()
	defer g.swapMu.Unlock()
	old := g.cfg.Load()
	c := compile(cfg, old, now)
	g.ranges.setCap(cfg.MaxRanges)
	g.carriers.setCap(cfg.MaxRanges)
	if cfg.VerifiedNumbers != old.VerifiedNumbers {
		g.verified.Store(newVerifiedSet(cfg.VerifiedNumbers, now))
	}
	toEnforce := old.Mode == ModeMonitor && cfg.Mode == ModeEnforce
	dropped := g.blocks.remove(func(b *block) bool { return dropReason(c, b, toEnforce) != "" })
	g.cfg.Store(c)
	if g.shared != nil {
		keys := make([]string, 0, len(dropped))
		for _, b := range dropped {
			keys = append(keys, b.key)
		}
		g.deleteShared("reload", keys) // on failure, the nodes drop them as they read them
		g.syncMu.Lock()
		g.version = "" // the next Sync applies this configuration to the fleet's blocks
		g.syncMu.Unlock()
	}
	for _, b := range dropped {
		g.log.Info(logDropped, keyRule, b.info.Rule, keyRange, b.info.Range, keyClient, b.info.Client,
			keyWhy, dropReason(c, b, toEnforce))
	}
	if len(dropped) > 0 {
		g.obs.GuardBlocks(int(g.blocks.n.Load()))
	}
	return nil
}

// dropReason says why c ends block b, or "" when b stays.
func dropReason(c *compiled, b *block, toEnforce bool) string {
	switch {
	case !slices.Contains(c.levels, b.level):
		return "range_digits no longer has this size"
	case b.info.Rule == RuleVelocity && c.Velocity.Sequential == 0 && c.Velocity.Spike == 0,
		b.info.Rule == RuleConversion && c.Conversion.MinSends == 0,
		b.info.Rule == RuleCarrierConversion && c.Conversion.CarrierMinSends == 0:
		return "rule turned off"
	case c.safe.covers(b.digits):
		return "range on guard.safe_list"
	case b.info.Client != "*" && c.clientSafe[b.info.Client].covers(b.digits):
		return "range on the client's safe_list"
	case toEnforce && b.monitor:
		return "raised in monitor mode"
	}
	return ""
}

// Blocks lists the blocks active at now, guard.block_prefixes entries
// included, oldest first.
func (g *Guard) Blocks(now time.Time) []Block {
	c := g.cfg.Load()
	var out []Block
	for _, b := range c.prefixBlocks {
		out = append(out, g.view(c, b))
	}
	out = append(out, g.activeBlocks(c, now)...)
	slices.SortFunc(out, func(a, b Block) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Range, b.Range), cmp.Compare(a.Client, b.Client))
	})
	return out
}

// activeBlocks lists the range rules' blocks active at now: the fleet's
// with their counts when the guard has shared state and it answers, else
// this node's.
func (g *Guard) activeBlocks(c *compiled, now time.Time) []Block {
	local := g.blocks.active(now.UnixNano())
	var out []Block
	if g.shared != nil {
		if fleet, ok := g.sharedBlocks(now); ok {
			byKey := make(map[string]*block, len(local))
			for _, b := range local {
				byKey[b.key] = b
			}
			for _, sb := range fleet {
				nb := blockOf(sb)
				if dropReason(c, nb, c.Mode == ModeEnforce) != "" {
					continue
				}
				v := sb.Block
				v.Action = actionOf(c)
				if b := byKey[sb.Key]; b != nil && b.info.Since.Equal(sb.Since) {
					v.Refused += b.unflushed.Load()
					delete(byKey, sb.Key)
				}
				out = append(out, v)
			}
			for _, b := range local {
				if byKey[b.key] != nil && b.pending.Load() {
					out = append(out, g.view(c, b))
				}
			}
			return out
		}
	}
	for _, b := range local {
		out = append(out, g.view(c, b))
	}
	return out
}

func (g *Guard) view(c *compiled, b *block) Block {
	v := b.info
	v.Action, v.Refused = actionOf(c), b.refused.Load()
	return v
}

// Release is an operator's release of blocks.
type Release struct {
	// Range is a prefix or a number ("+91-98765", "+91-987650xxxx"): the
	// blocks of ranges within it, or containing it, are released.
	Range string
	// Client, when set, releases only that client's blocks ("*": only
	// those of every client).
	Client string
	// Rule, when set, releases only the blocks of that rule.
	Rule string
}

// ErrNotShared means a Release lifted the blocks of this node only: the
// fleet's shared state did not answer, and the other nodes (and this one,
// once it answers again) still have them.
var ErrNotShared = errors.New("guard: the fleet's shared state did not answer: released on this node only")

// ErrBadRange means a Release's range is not a prefix.
var ErrBadRange = errors.New("guard: range: want \"+\" and digits, like +91-98765")

// Release lifts the blocks r selects and forgets their ranges' counts, so
// that only new sends can raise them again. It returns the released
// blocks, and the guard.block_prefixes entries r matches: those stay
// until the configuration changes.
func (g *Guard) Release(now time.Time, r Release) (released []Block, configured []string, err error) {
	digits, err := ParsePrefix(strings.TrimRight(strings.TrimSpace(r.Range), "xX"))
	if err != nil {
		return nil, nil, ErrBadRange
	}
	c := g.cfg.Load()
	match := func(b *block) bool {
		return matchesRelease(b.digits, digits) && (r.Client == "" || r.Client == b.info.Client) &&
			(r.Rule == "" || r.Rule == b.info.Rule)
	}
	var keys []string
	shared := true // the fleet's blocks were released too
	if g.shared != nil {
		fleet, ok := g.sharedBlocks(now)
		shared = ok
		for _, sb := range fleet {
			if match(blockOf(sb)) {
				keys = append(keys, sb.Key)
			}
		}
	}
	gone := g.blocks.remove(match)
	for _, b := range gone {
		if !slices.Contains(keys, b.key) {
			keys = append(keys, b.key)
		}
	}
	fleetGone, ok := g.deleteShared("release", keys)
	shared = shared && ok
	var forget []*block
	for _, b := range gone {
		forget = append(forget, b)
	}
	for k, sb := range fleetGone {
		if !slices.ContainsFunc(gone, func(b *block) bool { return b.key == k }) {
			forget = append(forget, blockOf(sb))
		}
	}
	g.forgetFleetCounts(c, forget)
	for _, b := range gone {
		g.forgetCounts(b)
		v := g.view(c, b)
		if sb, ok := fleetGone[b.key]; ok && sb.Since.Equal(b.info.Since) {
			v.Refused = sb.Refused + b.unflushed.Load()
		}
		delete(fleetGone, b.key)
		g.log.Warn(logReleased, keyRule, v.Rule, keyRange, v.Range, keyClient, v.Client,
			keyRefused, v.Refused, keySince, v.Since)
		released = append(released, v)
	}
	for _, sb := range fleetGone { // not yet synced to this node
		g.forgetCounts(blockOf(sb))
		v := sb.Block
		v.Action = actionOf(c)
		g.log.Warn(logReleased, keyRule, v.Rule, keyRange, v.Range, keyClient, v.Client,
			keyRefused, v.Refused, keySince, v.Since)
		released = append(released, v)
	}
	slices.SortFunc(released, func(a, b Block) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Range, b.Range), cmp.Compare(a.Client, b.Client))
	})
	if len(gone) > 0 {
		g.obs.GuardBlocks(int(g.blocks.n.Load()))
	}
	if r.Rule == "" || r.Rule == RuleBlockPrefix {
		for e, b := range c.prefixBlocks {
			if matchesRelease(b.digits, digits) {
				configured = append(configured, e)
			}
		}
		slices.Sort(configured)
	}
	if !shared {
		return released, configured, ErrNotShared
	}
	return released, configured, nil
}

// forgetCounts forgets the counts of b's range, and of the larger and
// smaller ranges that overlap it, which would raise b again at once once
// it is released.
func (g *Guard) forgetCounts(b *block) {
	overlaps := func(k string) bool {
		scope, rng, _ := strings.Cut(k, "\x00")
		return (b.info.Client == "*" || scope == b.info.Client) &&
			matchesRelease(strings.Replace(rng, "-", "", 1), b.digits)
	}
	if b.info.Client == "*" {
		g.carriers.removeIf(overlaps)
	} else {
		g.ranges.removeIf(overlaps)
	}
	if g.shared != nil {
		g.forgetConversion(func(k string, carrier bool) bool { return carrier == (b.info.Client == "*") && overlaps(k) })
	}
}

// Stats are sizes of the guard's state.
type Stats struct {
	Ranges, CarrierRanges, Blocks, VerifiedCapacity int
}

// Stats returns the guard's state sizes.
func (g *Guard) Stats() Stats {
	return Stats{Ranges: g.ranges.len(), CarrierRanges: g.carriers.len(), Blocks: int(g.blocks.n.Load()),
		VerifiedCapacity: g.verified.Load().capacity()}
}
