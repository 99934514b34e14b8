package guard

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Modes of the guard.
const (
	// ModeEnforce refuses the sends the rules block.
	ModeEnforce = "enforce"
	// ModeMonitor decides and logs as ModeEnforce would, and refuses nothing.
	ModeMonitor = "monitor"
)

// Config is the guard's configuration: the `guard:` section and each
// client's budget and safe list. Defaults returns the value of every field
// a configuration leaves out; an explicit 0 turns a threshold off where
// its comment says so.
type Config struct {
	// Mode is ModeEnforce or ModeMonitor.
	Mode string
	// SafeList holds numbers and prefixes ("+91-98765", "+919876543210")
	// whose sends bypass every rule, for every client.
	SafeList []string
	// BlockPrefixes holds prefixes whose sends are refused.
	BlockPrefixes []string
	// RangeDigits are the range sizes the range rules track: a range of N
	// is the set of numbers that differ only in their last N digits (4: a
	// block of 10,000 numbers). One to three sizes, each 1 to 9.
	RangeDigits []int
	// BlockFor is how long a block raised by a range rule lasts, unless
	// the range recovers or an operator releases it first.
	BlockFor time.Duration
	// VerifiedFor is how long a number that verified a code stays exempt
	// from the range rules.
	VerifiedFor time.Duration
	// VerifiedNumbers is how many recently verified numbers are
	// remembered (rounded up to a power of two; 8 bytes each).
	VerifiedNumbers int
	// MaxRanges caps the ranges tracked per client (and per carrier)
	// table; the least recently used range is forgotten first.
	MaxRanges int
	// MaxBlocks caps the active blocks; when full, the block that ends
	// first gives way.
	MaxBlocks int
	// Velocity is the velocity rule.
	Velocity Velocity
	// Conversion is the conversion rule.
	Conversion Conversion
	// Clients holds each client's budget and safe list, by client id.
	Clients map[string]ClientRules
}

// Velocity configures the velocity rule: sends per (client, country,
// range) over a sliding window, against the range's own baseline.
type Velocity struct {
	// Window is the sliding window (counted in six steps).
	Window time.Duration
	// Sequential is how many sends in the window to distinct numbers each
	// within Gap of a number sent to the range shortly before trip the
	// rule; 0 turns this test off.
	Sequential int
	// Gap is the largest distance between two numbers that look consecutive.
	Gap int
	// Spike is how many sends in the window to a range of the smallest
	// size trip the rule whatever the numbers; 0 turns this test off.
	Spike int
	// Factor: the window's sends must also be at least Factor times the
	// range's baseline (its exponentially weighted average per window).
	Factor float64
	// Baseline is the time constant of that average.
	Baseline time.Duration
}

// Conversion configures the conversion rule: of the sends to a range
// between Window and Grace ago, the share whose code was verified.
type Conversion struct {
	// Window is how far back sends are judged (counted in sixteen steps).
	Window time.Duration
	// Grace is how long a send has to be verified before it counts.
	Grace time.Duration
	// MinSends is the least number of judged sends to a client's range
	// before its conversion means anything; 0 turns the rule off.
	MinSends int
	// CarrierMinSends is the same for a range across all clients through
	// one carrier; 0 turns the per-carrier rule off.
	CarrierMinSends int
	// MinRate is the conversion (0 to 1) below which the range is blocked.
	MinRate float64
}

// ClientRules are one client's budget and safe list.
type ClientRules struct {
	// Budget caps the client's sends.
	Budget Budget
	// SafeList holds numbers and prefixes that bypass the guard for this
	// client only.
	SafeList []string
}

// Budget caps a client's sends per hour and per day, overall and per
// country (ISO code, upper case). 0 means no cap.
type Budget struct {
	PerHour, PerDay int
	Countries       map[string]Limits
}

// Limits are a per-country budget. 0 means no cap.
type Limits struct {
	PerHour, PerDay int
}

// Defaults returns the configuration of a guard nobody configured: in
// force, tuned so that logins to random numbers never trip it.
func Defaults() Config {
	return Config{
		Mode:            ModeEnforce,
		RangeDigits:     []int{4, 6},
		BlockFor:        time.Hour,
		VerifiedFor:     24 * time.Hour,
		VerifiedNumbers: 1 << 20,
		MaxRanges:       100_000,
		MaxBlocks:       10_000,
		Velocity: Velocity{Window: time.Minute, Sequential: 20, Gap: 10, Spike: 100, Factor: 10,
			Baseline: time.Hour},
		Conversion: Conversion{Window: 30 * time.Minute, Grace: 2 * time.Minute, MinSends: 50,
			CarrierMinSends: 200, MinRate: 0.1},
	}
}

// Problem is one thing wrong with a Config: Path is relative to the
// `guard:` section, or, when Client is set, to that client's entry.
type Problem struct {
	Client string
	Path   string
	Msg    string
}

// Check lists every problem of c.
func (c *Config) Check() []Problem {
	var ps []Problem
	add := func(path, format string, a ...any) {
		ps = append(ps, Problem{Path: path, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Mode != ModeEnforce && c.Mode != ModeMonitor {
		add("mode", "want enforce or monitor, got %q", c.Mode)
	}
	checkPrefixes("safe_list", c.SafeList, add)
	checkPrefixes("block_prefixes", c.BlockPrefixes, add)
	if len(c.RangeDigits) == 0 || len(c.RangeDigits) > maxLevels {
		add("range_digits", "want one to %d sizes", maxLevels)
	}
	for i, d := range c.RangeDigits {
		if d < 1 || d > maxRangeDigits {
			add(fmt.Sprintf("range_digits[%d]", i), "want 1 to %d, got %d", maxRangeDigits, d)
		} else if slices.Index(c.RangeDigits, d) < i {
			add(fmt.Sprintf("range_digits[%d]", i), "%d is listed twice", d)
		}
	}
	positive := func(path string, d time.Duration) {
		if d <= 0 {
			add(path, "must be positive")
		}
	}
	positive("block_for", c.BlockFor)
	positive("verified_for", c.VerifiedFor)
	positive("velocity.window", c.Velocity.Window)
	positive("velocity.baseline", c.Velocity.Baseline)
	positive("conversion.window", c.Conversion.Window)
	if c.VerifiedNumbers < 1 || c.VerifiedNumbers > maxVerified {
		add("verified_numbers", "want 1 to %d", maxVerified)
	}
	if c.MaxRanges < 1 {
		add("max_ranges", "must be at least 1")
	}
	if c.MaxBlocks < 1 {
		add("max_blocks", "must be at least 1")
	}
	v := c.Velocity
	if v.Sequential < 0 || v.Spike < 0 || v.Gap < 0 {
		add("velocity", "sequential, spike and gap must not be negative")
	}
	if v.Sequential > maxCount || v.Spike > maxCount {
		add("velocity", "sequential and spike must be at most %d", maxCount)
	}
	if v.Factor < 0 {
		add("velocity.factor", "must not be negative")
	}
	cv := c.Conversion
	if cv.Grace < 0 || (cv.Window > 0 && cv.Grace >= cv.Window) {
		add("conversion.grace", "must be at least 0 and shorter than conversion.window")
	}
	if cv.MinSends < 0 || cv.CarrierMinSends < 0 {
		add("conversion", "min_sends and carrier_min_sends must not be negative")
	}
	if cv.MinRate < 0 || cv.MinRate > 1 {
		add("conversion.min_rate", "want 0 to 1, got %g", cv.MinRate)
	}
	ids := make([]string, 0, len(c.Clients))
	for id := range c.Clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r := c.Clients[id]
		cadd := func(path, format string, a ...any) {
			ps = append(ps, Problem{Client: id, Path: path, Msg: fmt.Sprintf(format, a...)})
		}
		checkPrefixes("safe_list", r.SafeList, cadd)
		b := r.Budget
		if b.PerHour < 0 || b.PerDay < 0 {
			cadd("budget", "per_hour and per_day must not be negative (0: no cap)")
		}
		for iso, l := range b.Countries {
			if l.PerHour < 0 || l.PerDay < 0 {
				cadd("budget.countries."+iso, "per_hour and per_day must not be negative (0: no cap)")
			}
		}
	}
	return ps
}

// Limits on the configuration that keep the state's size known.
const (
	maxLevels      = 3
	maxRangeDigits = 9 // a range's suffix fits a uint32
	maxVerified    = 1 << 26
	maxCount       = 1 << 30
)

func checkPrefixes(path string, list []string, add func(path, format string, a ...any)) {
	for i, p := range list {
		if _, err := ParsePrefix(p); err != nil {
			add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

// ParsePrefix reads a number or prefix of the safe and block lists: "+",
// then one to fifteen digits, with '-' or ' ' anywhere after the '+'. It
// returns the digits.
func ParsePrefix(s string) (string, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, "+")
	if !ok {
		return "", fmt.Errorf("want \"+\" and digits, got %q", s)
	}
	var b strings.Builder
	for _, r := range rest {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == ' ':
		default:
			return "", fmt.Errorf("want \"+\" and digits, got %q", s)
		}
	}
	if b.Len() == 0 || b.Len() > 15 {
		return "", fmt.Errorf("want one to fifteen digits, got %q", s)
	}
	return b.String(), nil
}
