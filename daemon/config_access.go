package daemon

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/otpgate/otpgate/api"
)

// validateAccess checks auth_failures_per_minute and trusted_proxies.
func (c *Config) validateAccess(add func(path, format string, a ...any)) {
	if c.AuthFailuresPerMinute < 0 {
		add("auth_failures_per_minute", "must not be negative (0 turns the limit off)")
	}
	for i, s := range c.TrustedProxies {
		if _, err := parseProxy(s); err != nil {
			add(fmt.Sprintf("trusted_proxies[%d]", i), "want a CIDR like 10.0.0.0/8 or an address, got %q", s)
		}
	}
}

// parseProxy reads a trusted_proxies entry: a CIDR, or one address.
func parseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// accessOf is the API's Access of a valid cfg.
func accessOf(cfg *Config) *api.Access {
	a := &api.Access{AuthFailuresPerMinute: cfg.AuthFailuresPerMinute}
	for _, s := range cfg.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			a.TrustedProxies = append(a.TrustedProxies, p)
		}
	}
	return a
}
