package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/otpgate/otpgate/metrics"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/store"
	"github.com/otpgate/otpgate/store/redisstore"
)

// The series that the alert rules and the dashboard (deploy/) need beyond
// the event counters: store commits, the carriers each route can use, the
// callback backlog, and a degraded gauge from each carrier's start.

// backlogScanTimeout bounds the scan that counts the queued callbacks at
// each scrape.
const backlogScanTimeout = 2 * time.Second

// observeStore makes the store report its commits to the metrics.
func (d *Server) observeStore(so *store.Options) {
	if m := d.Metrics; m != nil {
		so.Committed = m.StoreCommit
	}
}

// sampleMetrics makes each scrape read the routes of the router in force
// (a reload replaces it) and the callback backlog of db.
// backlogCounter is what a store offers to count its callback queue (both
// do; with redis the figure is the fleet's, the same on every node).
type backlogCounter interface {
	CallbackBacklog(ctx context.Context) (int, error)
}

var (
	_ backlogCounter = (*store.DB)(nil)
	_ backlogCounter = (*redisstore.DB)(nil)
)

func (d *Server) sampleMetrics(st any) {
	m := d.Metrics
	if m == nil {
		return
	}
	m.ReadRoutes(func() []metrics.RouteBound {
		r := d.router.Load()
		if r == nil {
			return nil
		}
		return routeBounds(r.States())
	})
	db, ok := st.(backlogCounter)
	if !ok {
		return
	}
	m.ReadCallbackQueue(func() (int, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), backlogScanTimeout)
		defer cancel()
		n, err := db.CallbackBacklog(ctx)
		return n, err == nil
	})
}

// routeBounds names each route by its countries and prefixes; a name that
// an earlier route has already gets the route's number as the log lines
// give it ("route 2"), so that every series is distinct.
func routeBounds(states []smpp.RouteState) []metrics.RouteBound {
	out := make([]metrics.RouteBound, len(states))
	seen := make(map[string]bool, len(states))
	for i, s := range states {
		name := s.Name
		if seen[name] {
			name = fmt.Sprintf("%s (route %d)", name, i)
		}
		seen[name] = true
		out[i] = metrics.RouteBound{Route: name, Bound: s.Bound}
	}
	return out
}

// carrierStarted gives a new carrier its degraded series at 0, so that the
// series exists before the first time the carrier degrades.
func (d *Server) carrierStarted(name string) {
	if d.Metrics != nil {
		d.Metrics.Degraded(name, false)
	}
}
