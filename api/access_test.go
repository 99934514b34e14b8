package api_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/otpgate/otpgate/api"
)

func TestRemoteAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		name    string
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"NoProxyTrusted", "127.0.0.1:4000", []string{"203.0.113.7"}, nil, "127.0.0.1"},
		{"PeerNotTrusted", "192.0.2.1:4000", []string{"203.0.113.7"}, proxies, "192.0.2.1"},
		{"TrustedPeerNoHeader", "127.0.0.1:4000", nil, proxies, "127.0.0.1"},
		{"OneHop", "127.0.0.1:4000", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"ClientWritesAFakeFirst", "127.0.0.1:4000", []string{"198.51.100.9, 203.0.113.7"}, proxies, "203.0.113.7"},
		{"TwoTrustedHops", "127.0.0.1:4000", []string{"198.51.100.9, 203.0.113.7, 10.1.2.3"}, proxies, "203.0.113.7"},
		{"HeaderLines", "127.0.0.1:4000", []string{"198.51.100.9", "203.0.113.7", "10.1.2.3"}, proxies, "203.0.113.7"},
		{"AllTrusted", "127.0.0.1:4000", []string{"10.9.9.9, 10.1.2.3"}, proxies, "10.9.9.9"},
		{"Malformed", "127.0.0.1:4000", []string{"203.0.113.7, nonsense, 10.1.2.3"}, proxies, "10.1.2.3"},
		{"WithPort", "127.0.0.1:4000", []string{"203.0.113.7:5555"}, proxies, "203.0.113.7"},
		{"IPv6", "[fd00::1]:4000", []string{"2001:db8::5"}, proxies, "2001:db8::5"},
		{"IPv6WithPort", "[fd00::1]:4000", []string{"[2001:db8::5]:80"}, proxies, "2001:db8::5"},
		{"Mapped", "[::ffff:127.0.0.1]:4000", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"Empty", "127.0.0.1:4000", []string{""}, proxies, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := api.RemoteAddr(r, tc.trusted); got.String() != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
