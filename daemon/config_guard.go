package daemon

import (
	"fmt"
	"strings"
	"time"

	"github.com/otpgate/otpgate/guard"
	"github.com/otpgate/otpgate/phone"
)

// GuardConfig is the `guard:` section: the SMS-pumping guard. The guard
// package owns the defaults (guard.Defaults) and the checks; this maps the
// keys.
type GuardConfig struct {
	Mode            string                `yaml:"mode"`             // enforce | monitor
	SafeList        []string              `yaml:"safe_list"`        // numbers and prefixes that bypass the guard
	BlockPrefixes   []string              `yaml:"block_prefixes"`   // prefixes whose sends are refused
	RangeDigits     []int                 `yaml:"range_digits"`     // range sizes: numbers differing only in their last N digits
	BlockFor        Duration              `yaml:"block_for"`        // how long a range rule's block lasts
	VerifiedFor     Duration              `yaml:"verified_for"`     // a verified number is exempt from range rules this long
	VerifiedNumbers int                   `yaml:"verified_numbers"` // verified numbers remembered (8 bytes each)
	MaxRanges       int                   `yaml:"max_ranges"`       // ranges tracked per table (LRU)
	MaxBlocks       int                   `yaml:"max_blocks"`       // active blocks at most
	Velocity        GuardVelocityConfig   `yaml:"velocity"`
	Conversion      GuardConversionConfig `yaml:"conversion"`
}

// GuardVelocityConfig is `guard.velocity`.
type GuardVelocityConfig struct {
	Window     Duration `yaml:"window"`
	Sequential int      `yaml:"sequential"`
	Gap        int      `yaml:"gap"`
	Spike      int      `yaml:"spike"`
	Factor     float64  `yaml:"factor"`
	Baseline   Duration `yaml:"baseline"`
}

// GuardConversionConfig is `guard.conversion`.
type GuardConversionConfig struct {
	Window          Duration `yaml:"window"`
	Grace           Duration `yaml:"grace"`
	MinSends        int      `yaml:"min_sends"`
	CarrierMinSends int      `yaml:"carrier_min_sends"`
	MinRate         float64  `yaml:"min_rate"`
}

// BudgetConfig is `clients[].budget`: sends per hour and per day, overall
// and per country (ISO code); 0 is no cap.
type BudgetConfig struct {
	PerHour   int                     `yaml:"per_hour"`
	PerDay    int                     `yaml:"per_day"`
	Countries map[string]BudgetLimits `yaml:"countries"`
}

// BudgetLimits is one country's budget.
type BudgetLimits struct {
	PerHour int `yaml:"per_hour"`
	PerDay  int `yaml:"per_day"`
}

// defaultGuardConfig is the `guard:` section of a file that leaves it out.
func defaultGuardConfig() GuardConfig {
	d := guard.Defaults()
	return GuardConfig{Mode: d.Mode, RangeDigits: d.RangeDigits, BlockFor: Duration(d.BlockFor),
		VerifiedFor: Duration(d.VerifiedFor), VerifiedNumbers: d.VerifiedNumbers, MaxRanges: d.MaxRanges,
		MaxBlocks: d.MaxBlocks,
		Velocity: GuardVelocityConfig{Window: Duration(d.Velocity.Window), Sequential: d.Velocity.Sequential,
			Gap: d.Velocity.Gap, Spike: d.Velocity.Spike, Factor: d.Velocity.Factor, Baseline: Duration(d.Velocity.Baseline)},
		Conversion: GuardConversionConfig{Window: Duration(d.Conversion.Window), Grace: Duration(d.Conversion.Grace),
			MinSends: d.Conversion.MinSends, CarrierMinSends: d.Conversion.CarrierMinSends, MinRate: d.Conversion.MinRate}}
}

// guardConfig is the guard's configuration of cfg.
func guardConfig(cfg *Config) guard.Config {
	g := cfg.Guard
	out := guard.Config{Mode: g.Mode, SafeList: g.SafeList, BlockPrefixes: g.BlockPrefixes, RangeDigits: g.RangeDigits,
		BlockFor: g.BlockFor.D(), VerifiedFor: g.VerifiedFor.D(), VerifiedNumbers: g.VerifiedNumbers,
		MaxRanges: g.MaxRanges, MaxBlocks: g.MaxBlocks,
		Velocity: guard.Velocity{Window: g.Velocity.Window.D(), Sequential: g.Velocity.Sequential, Gap: g.Velocity.Gap,
			Spike: g.Velocity.Spike, Factor: g.Velocity.Factor, Baseline: g.Velocity.Baseline.D()},
		Conversion: guard.Conversion{Window: g.Conversion.Window.D(), Grace: g.Conversion.Grace.D(),
			MinSends: g.Conversion.MinSends, CarrierMinSends: g.Conversion.CarrierMinSends, MinRate: g.Conversion.MinRate},
		Clients: map[string]guard.ClientRules{}}
	for _, c := range cfg.Clients {
		r := guard.ClientRules{SafeList: c.SafeList, Budget: guard.Budget{PerHour: c.Budget.PerHour, PerDay: c.Budget.PerDay}}
		if len(c.Budget.Countries) > 0 {
			r.Budget.Countries = map[string]guard.Limits{}
			for iso, l := range c.Budget.Countries {
				r.Budget.Countries[strings.ToUpper(iso)] = guard.Limits{PerHour: l.PerHour, PerDay: l.PerDay}
			}
		}
		out.Clients[c.ID] = r
	}
	return out
}

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// validateGuard checks guard:, otp.default_client_rate and each client's
// budget, weight and safe_list.
func (c *Config) validateGuard(add adder) {
	r := c.OTP.DefaultClientRate
	if r.PerSecond < 0 || r.Burst < 0 {
		add("otp.default_client_rate", "must not be negative (per_second 0: clients without a rate are unlimited)")
	} else if r.PerSecond > 0 && r.Burst == 0 {
		add("otp.default_client_rate.burst", "must be at least 1 when per_second is set")
	}
	index := map[string]int{}
	for i, cl := range c.Clients {
		index[cl.ID] = i
		if cl.Weight < 0 {
			add(fmt.Sprintf("clients[%d].weight", i), "must not be negative (0 or absent: 1)")
		}
		for iso := range cl.Budget.Countries {
			if _, ok := phone.CountryByISO(strings.ToUpper(iso)); !ok {
				add(fmt.Sprintf("clients[%d].budget.countries.%s", i, iso), "unknown country %q", iso)
			}
		}
	}
	gc := guardConfig(c)
	for _, p := range gc.Check() {
		if p.Client != "" {
			add(fmt.Sprintf("clients[%d].%s", index[p.Client], p.Path), "%s", p.Msg)
		} else {
			add("guard."+p.Path, "%s", p.Msg)
		}
	}
}
