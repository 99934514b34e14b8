package smpp_test

import (
	"slices"
	"testing"

	"github.com/otpgate/otpgate/smpp"
)

// TestRouter_States: each route, in order, with its name, its carriers
// and those of them bound; a route whose only carrier never binds has
// none bound.
func TestRouter_States(t *testing.T) {
	e := newRouterEnv(t)
	r := e.router(t,
		smpp.Route{Countries: []string{"us", "IN"}, Carriers: []string{"down", "up2"}},
		smpp.Route{Prefixes: []string{"+4477", "+4478"}, Carriers: []string{"up1", "up2"}},
		smpp.Route{Countries: []string{"DE"}, Carriers: []string{"down"}},
		smpp.Route{Countries: []string{"FR", "*"}, Prefixes: []string{"+33"}, Carriers: []string{"up1"}},
	)
	want := []smpp.RouteState{
		{Name: "IN,US", Carriers: 2, Bound: 1},
		{Name: "+4477,+4478", Carriers: 2, Bound: 2},
		{Name: "DE", Carriers: 1, Bound: 0},
		{Name: "*,FR,+33", Carriers: 1, Bound: 1},
	}
	if got := r.States(); !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
