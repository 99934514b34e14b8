package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The series below exist for the alert rules and the dashboard in deploy/:
// the store's commits, and facts that no event counts (how many carriers of
// a route can submit, how many callbacks wait), read at each scrape.

// ops holds the collectors of this file.
type ops struct {
	commitDuration prometheus.Histogram
	commitWrites   prometheus.Histogram
	writeFailures  prometheus.Counter
	routes         *sampled // otpgate_route_carriers_bound{route}
	callbackQueue  *sampled // otpgate_callback_queue_depth
}

func newOps(reg *prometheus.Registry) ops {
	o := ops{
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "otpgate_store_commit_duration_seconds",
			Help:    "Time of each store commit (a group of writes, or the idle heartbeat), synced to disk, failed ones included.",
			Buckets: latencyBuckets}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "otpgate_store_commit_writes",
			Help:    "Writes carried by each store commit (the idle heartbeat is one): the group commit's batch size; writes per commit = _sum / _count.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9)}), // 1 to 256, the writer's cap
		writeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "otpgate_store_write_failures_total",
			Help: "Writes whose commit failed (full disk, I/O error); the idle heartbeat counts as one write."}),
		routes: newSampled("otpgate_route_carriers_bound",
			"Carriers of each route with a bound session that can submit (in a fleet: here, or on a node this one forwards to); 0: the route's numbers get no SMS. "+
				"The route is named by its countries and prefixes as configured.", "route"),
		callbackQueue: newSampled("otpgate_callback_queue_depth",
			"Receipt and MO callbacks waiting in the store for delivery or a retry."),
	}
	reg.MustRegister(o.commitDuration, o.commitWrites, o.writeFailures, o.routes, o.callbackQueue)
	return o
}

// StoreCommit records one commit of the store: its duration, the writes
// it carried, and its error. It is called by the store's writer and does
// not block.
func (m *Registry) StoreCommit(d time.Duration, writes int, err error) {
	m.ops.commitDuration.Observe(d.Seconds())
	m.ops.commitWrites.Observe(float64(writes))
	if err != nil {
		m.ops.writeFailures.Add(float64(writes))
	}
}

// RouteBound is one route and the number of its carriers that can submit.
type RouteBound struct {
	Route string // countries and prefixes, e.g. "IN,US" or "+4477,+4478"
	Bound int
}

// ReadRoutes makes each scrape ask fn for otpgate_route_carriers_bound.
// The route names fn returns must be distinct. fn must be safe for
// concurrent use.
func (m *Registry) ReadRoutes(fn func() []RouteBound) {
	m.ops.routes.set(func() []sample {
		rs := fn()
		out := make([]sample, len(rs))
		for i, r := range rs {
			out[i] = sample{labels: []string{r.Route}, value: float64(r.Bound)}
		}
		return out
	})
}

// ReadCallbackQueue makes each scrape ask fn for
// otpgate_callback_queue_depth; when fn's ok is false (the store cannot be
// read) the series is left out of that scrape rather than reported as 0.
// fn must be safe for concurrent use.
func (m *Registry) ReadCallbackQueue(fn func() (n int, ok bool)) {
	m.ops.callbackQueue.set(func() []sample {
		n, ok := fn()
		if !ok {
			return nil
		}
		return []sample{{value: float64(n)}}
	})
}

// sample is one series of a sampled gauge.
type sample struct {
	labels []string
	value  float64
}

// sampled is a gauge whose series a function gives at each scrape; it has
// none until the function is set.
type sampled struct {
	desc *prometheus.Desc
	fn   atomic.Pointer[func() []sample]
}

func newSampled(name, help string, labels ...string) *sampled {
	return &sampled{desc: prometheus.NewDesc(name, help, labels, nil)}
}

func (s *sampled) set(fn func() []sample) { s.fn.Store(&fn) }

// Describe implements prometheus.Collector.
func (s *sampled) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

// Collect implements prometheus.Collector.
func (s *sampled) Collect(ch chan<- prometheus.Metric) {
	fn := s.fn.Load()
	if fn == nil {
		return
	}
	for _, x := range (*fn)() {
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, x.value, x.labels...)
	}
}
