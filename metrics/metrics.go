package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds every collector of the gateway on its own registry.
type Registry struct {
	reg           *prometheus.Registry
	ops           ops // ops.go
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	submits       *prometheus.CounterVec
	submitLatency *prometheus.HistogramVec
	bindUp        *prometheus.GaugeVec
	bindFailures  *prometheus.CounterVec
	degraded      *prometheus.GaugeVec
	receipts      *prometheus.CounterVec
	ratelimited   *prometheus.CounterVec
	verifications *prometheus.CounterVec
	callbacks     *prometheus.CounterVec
	circuits      *prometheus.GaugeVec
	reloads       *prometheus.CounterVec
	mo            *prometheus.CounterVec
	shortfalls    prometheus.Counter
	forwards      *prometheus.CounterVec
	guard         *prometheus.CounterVec
	guardBlocks   prometheus.Gauge
}

// New registers the collectors (and the Go and process collectors).
func New() *Registry {
	m := &Registry{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.ops = newOps(m.reg)
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_http_requests_total",
		Help: "HTTP requests by route template and status code."}, []string{"route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "otpgate_http_request_duration_seconds",
		Help: "HTTP request latency by route template.", Buckets: latencyBuckets}, []string{"route"})
	m.submits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_sms_submits_total",
		Help: "submit_sm outcomes by carrier: ok, throttled, rejected, lost, timeout, error."}, []string{"carrier", "result"})
	m.submitLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "otpgate_submit_duration_seconds",
		Help: "Time from submit_sm to its response, by carrier.", Buckets: latencyBuckets}, []string{"carrier"})
	m.bindUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "otpgate_bind_up",
		Help: "1 when the carrier session is bound, else 0."}, []string{"carrier", "bind"})
	m.bindFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_bind_failures_total",
		Help: "Failed bind attempts by carrier and reason: invalid_password, invalid_system_id, invalid_system_type, refused, timeout, tls, network."},
		[]string{"carrier", "reason"})
	f(m.bindFailures)
	m.degraded = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "otpgate_carrier_degraded",
		Help: "1 while the carrier is degraded (a submit went unanswered for submit_ack_timeout; routes skip it), else 0."},
		[]string{"carrier"})
	f(m.degraded)
	m.receipts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_receipts_total",
		Help: "Delivery receipts received, by carrier and state; also state=pending for those that matched no message when they arrived, " +
			"state=dropped for those of them dropped for the per-carrier cap, state=refused for those answered with an error (id too long)."}, []string{"carrier", "state"})
	m.ratelimited = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_ratelimited_total",
		Help: "Requests refused by a limit: client, resend, hourly, inflight, guard (the pumping guard), auth (failed API-key attempts of one address)."}, []string{"scope"})
	m.verifications = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_verifications_total",
		Help: "verify-otp outcomes: ok, invalid, not_found, locked."}, []string{"result"})
	m.callbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_callbacks_total",
		Help: "Receipt and MO callback tries by outcome: delivered, retry, short_circuited (the endpoint's circuit was open: no request), dropped."}, []string{"outcome"})
	m.circuits = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "otpgate_callback_circuit_open",
		Help: "Callback endpoints of the client whose circuit is open after repeated failures (their tries are short-circuited)."}, []string{"client"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_config_reloads_total",
		Help: "SIGHUP reloads by result: ok, rejected."}, []string{"result"})
	m.mo = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_mo_total",
		Help: "MO messages (not receipts) received and acknowledged, by carrier."}, []string{"carrier"})
	m.shortfalls = prometheus.NewCounter(prometheus.CounterOpts{Name: "otpgate_store_shortfall_total",
		Help: "Writes to the redis store that no replica confirmed within store.redis.wait_timeout (failed, or kept with on_shortfall degrade)."})
	f(m.shortfalls)
	m.forwards = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_fleet_forwards_total",
		Help: "Submits this node handed to another node of the fleet that holds a bind of the carrier, by carrier and result: " +
			"ok, or what failed (not_bound, throttled, status, partial, lost_written, lost_unwritten, stalled, unanswered, deadline, other)."},
		[]string{"carrier", "result"})
	f(m.forwards)
	m.guard = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpgate_guard_decisions_total",
		Help: "Pumping guard decisions, one per send-otp that reached it, by rule (none, safe_list, verified, block_prefix, budget, " +
			"velocity, conversion, carrier_conversion) and action (allow, block; monitor: would block, let through in monitor mode)."},
		[]string{"rule", "action"})
	m.guardBlocks = prometheus.NewGauge(prometheus.GaugeOpts{Name: "otpgate_guard_blocks",
		Help: "Number ranges the pumping guard blocks now (see GET /guard/blocks on the admin port)."})
	f(m.guard)
	f(m.guardBlocks)
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.submits, m.submitLatency, m.bindUp,
		m.receipts, m.ratelimited, m.verifications, m.callbacks, m.circuits, m.reloads, m.mo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Handler serves the Prometheus text format.
func (m *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request counts one HTTP request (route is gin's template, never the raw path).
func (m *Registry) Request(route string, status int, d time.Duration) {
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

// Verification counts one verify-otp outcome.
func (m *Registry) Verification(result string) { m.verifications.WithLabelValues(result).Inc() }

// RateLimited counts one refusal by a limit.
func (m *Registry) RateLimited(scope string) { m.ratelimited.WithLabelValues(scope).Inc() }

// Submit counts one submit_sm and its latency.
func (m *Registry) Submit(carrier, result string, d time.Duration) {
	m.submits.WithLabelValues(carrier, result).Inc()
	if d > 0 {
		m.submitLatency.WithLabelValues(carrier).Observe(d.Seconds())
	}
}

// BindGone drops the bind gauge of a slot that is no longer this node's
// (in a fleet, another node holds its lease), so that no alert reads it
// as down here.
func (m *Registry) BindGone(carrier, bind string) { m.bindUp.DeleteLabelValues(carrier, bind) }

// BindState sets the bind gauge of one session.
func (m *Registry) BindState(carrier, bind string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.bindUp.WithLabelValues(carrier, bind).Set(v)
}

// BindFailure counts one failed bind attempt.
func (m *Registry) BindFailure(carrier, reason string) {
	m.bindFailures.WithLabelValues(carrier, reason).Inc()
}

// Degraded sets the degraded gauge of a carrier.
func (m *Registry) Degraded(carrier string, degraded bool) {
	v := 0.0
	if degraded {
		v = 1
	}
	m.degraded.WithLabelValues(carrier).Set(v)
}

// Receipt counts one delivery receipt.
func (m *Registry) Receipt(carrier, state string) { m.receipts.WithLabelValues(carrier, state).Inc() }

// MO counts one MO message handled.
func (m *Registry) MO(carrier string) { m.mo.WithLabelValues(carrier).Inc() }

// Callback counts one callback attempt's outcome.
func (m *Registry) Callback(outcome string) { m.callbacks.WithLabelValues(outcome).Inc() }

// CallbackCircuit counts a circuit of one of client's callback endpoints
// opening (open) or closing.
func (m *Registry) CallbackCircuit(client string, open bool) {
	if open {
		m.circuits.WithLabelValues(client).Inc()
	} else {
		m.circuits.WithLabelValues(client).Dec()
	}
}

// Reload counts one reload.
func (m *Registry) Reload(ok bool) {
	r := "ok"
	if !ok {
		r = "rejected"
	}
	m.reloads.WithLabelValues(r).Inc()
}

// GuardDecision counts one decision of the pumping guard.
func (m *Registry) GuardDecision(rule, action string) { m.guard.WithLabelValues(rule, action).Inc() }

// GuardBlocks sets the number of active guard blocks.
func (m *Registry) GuardBlocks(n int) { m.guardBlocks.Set(float64(n)) }

// ForgetCarrier removes the bind series of a carrier that is gone.
func (m *Registry) ForgetCarrier(carrier string) {
	m.bindUp.DeletePartialMatch(prometheus.Labels{"carrier": carrier})
	m.bindFailures.DeletePartialMatch(prometheus.Labels{"carrier": carrier})
	m.degraded.DeletePartialMatch(prometheus.Labels{"carrier": carrier})
}

// FleetForward counts a submit forwarded to another node of the fleet.
func (m *Registry) FleetForward(carrier, result string) {
	m.forwards.WithLabelValues(carrier, result).Inc()
}

// StoreShortfall counts a store write that no replica confirmed in time.
func (m *Registry) StoreShortfall() { m.shortfalls.Inc() }
