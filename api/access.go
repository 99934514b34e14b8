package api

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"
)

// Access says which peers' X-Forwarded-For the API believes, and how many
// failed API-key attempts one remote address may make. The zero value
// believes no proxy and sets no limit.
type Access struct {
	// AuthFailuresPerMinute is how many requests with a missing or wrong
	// API key one remote address may make in a minute (a burst of as
	// many, refilled evenly); past it they are answered 429 "Too many
	// requests". A right key is always let through: only failures are
	// limited, so that a client sharing its address (a NAT, a proxy that
	// is not trusted) with one that sends a stale key keeps working. 0
	// means no limit.
	AuthFailuresPerMinute int
	// TrustedProxies are the peers whose X-Forwarded-For is believed
	// (see RemoteAddr).
	TrustedProxies []netip.Prefix
}

// RemoteAddr returns the address a request came from. That is the peer's
// address, unless the peer is in trusted: then X-Forwarded-For is read
// from its right end (the entry the nearest proxy added) leftwards, and
// the first address not in trusted is the one; entries further left were
// written by the client and may be anything. When every entry is trusted
// the leftmost is taken; a malformed entry stops the walk at the last
// address read. The zero Addr means the peer's address could not be
// parsed.
func RemoteAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := parseHostAddr(r.RemoteAddr)
	if !addr.IsValid() || !inAny(addr, trusted) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := parseHostAddr(strings.TrimSpace(hops[i]))
		if !hop.IsValid() {
			return addr
		}
		addr = hop
		if !inAny(hop, trusted) {
			return hop
		}
	}
	return addr
}

// parseHostAddr reads "ip", "ip:port" or "[ipv6]:port" without its zone,
// an IPv4-mapped IPv6 address as IPv4.
func parseHostAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}
		}
		a = ap.Addr()
	}
	return a.WithZone("").Unmap()
}

func inAny(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// authLimitKey is the limiter key of an address's failed API-key
// attempts: an IPv6 address counts with its /64, which one subscriber
// line usually holds whole.
func authLimitKey(a netip.Addr) string {
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return "auth/" + p.String()
		}
	}
	return "auth/" + a.String()
}

// access returns the Access in force.
func (h *handler) access() *Access {
	if h.opts.Access != nil {
		if a := h.opts.Access(); a != nil {
			return a
		}
	}
	return &Access{}
}

// remoteOf is the request's remote address for logs and limits (set by
// logRequests).
func remoteOf(c *gin.Context) netip.Addr {
	a, _ := c.Get(keyRemote)
	addr, _ := a.(netip.Addr)
	return addr
}

// authFailureLimited counts a failed API-key attempt of the request's
// remote address and reports whether it is past the limit.
func (h *handler) authFailureLimited(c *gin.Context) bool {
	a := h.access()
	if h.opts.AuthFailures == nil || a.AuthFailuresPerMinute <= 0 {
		return false
	}
	n := a.AuthFailuresPerMinute
	return !h.opts.AuthFailures.Allow(authLimitKey(remoteOf(c)), float64(n)/60, n)
}

// remoteString is a remote address for the request log ("" when unknown).
func remoteString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
