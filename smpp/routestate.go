package smpp

import (
	"slices"
	"strings"
)

// RouteState is what one route's carriers can do now.
type RouteState struct {
	// Name is the route's countries ("*" first, the others sorted) then
	// its prefixes as configured, comma-separated: "IN,US", "+4477,+4478".
	Name string
	// Carriers is the number of the route's carriers; Bound, of those
	// that can take a send now (Carrier.Usable: a session of this node
	// bound that can submit, or in a fleet a node holding a bind to
	// forward to). A route whose Bound is 0 fails every send at once.
	Carriers, Bound int
}

// States returns the state of each route, in the order they are tried.
// It is safe for concurrent use.
func (r *Router) States() []RouteState {
	out := make([]RouteState, len(r.routes))
	for i := range r.routes {
		rt := &r.routes[i]
		bound := 0
		for _, c := range rt.carriers {
			if c.Usable() {
				bound++
			}
		}
		out[i] = RouteState{Name: rt.name(), Carriers: len(rt.carriers), Bound: bound}
	}
	return out
}

// name is the route's RouteState.Name.
func (rt *route) name() string {
	var parts []string
	if rt.any {
		parts = append(parts, "*")
	}
	countries := make([]string, 0, len(rt.countries))
	for c := range rt.countries {
		countries = append(countries, c)
	}
	slices.Sort(countries)
	parts = append(parts, countries...)
	for _, p := range rt.prefixes {
		parts = append(parts, "+"+p)
	}
	return strings.Join(parts, ",")
}
