package daemon

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/otpgate/otpgate/smpp"
)

// Runtime control on the admin port: GET /carriers lists the carriers
// with their binds, rates, degraded and suspended state and last bind
// failure; POST /carriers/{name}/suspend unbinds a carrier and keeps it
// unbound (routes pass its traffic to their next carrier) until
// POST /carriers/{name}/resume. A suspension survives a reload but not a
// restart, unless the carrier has suspended: true in the configuration.
// A reload that changes that key applies it.

// rateWindow is the span over which a carrier's submit rate is averaged.
const rateWindow = 60

// CarrierStatus is one carrier as GET /carriers (and the status page)
// shows it.
type CarrierStatus struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
	// BindsUp counts the sessions bound that can transmit;
	// BindsConfigured is the carrier's binds.
	BindsUp         int `json:"binds_up"`
	BindsConfigured int `json:"binds_configured"`
	// In a fleet, BindsLeased counts the carrier's transmitting bind
	// slots this node holds the lease of (binds_configured is the
	// fleet's total), and Forwarding says that this node has no bind of
	// its own and hands the carrier's submits to a node that has.
	BindsLeased int     `json:"binds_leased"`
	Forwarding  bool    `json:"forwarding,omitempty"`
	TPS         float64 `json:"tps"` // configured limit, 0: none
	// SubmitRate is the accepted submit_sm per second over the last
	// minute.
	SubmitRate float64 `json:"submit_rate"`
	Degraded   bool    `json:"degraded"`
	Suspended  bool    `json:"suspended"`
	// SuspendedInConfig is the carrier's suspended key: whether it starts
	// suspended.
	SuspendedInConfig bool `json:"suspended_in_config"`
	// Submits counts submit_sm by result, Receipts the receipts by state,
	// since start.
	Submits  map[string]uint64 `json:"submits"`
	Receipts map[string]uint64 `json:"receipts"`
	// LastBindFailure is the reason of the last failed bind (see
	// otpgate_bind_failures_total), and LastBindFailureAt its time.
	LastBindFailure   string     `json:"last_bind_failure,omitempty"`
	LastBindFailureAt *time.Time `json:"last_bind_failure_at,omitempty"`
}

// CarriersReply is the body of GET /carriers.
type CarriersReply struct {
	Carriers []CarrierStatus `json:"carriers"`
}

// carrierStats is the carriers' observer: it keeps what the control API
// and the status page show and passes every event on to next (the
// metrics; nil when off).
type carrierStats struct {
	next smpp.Observer
	mu   sync.Mutex
	by   map[string]*carrierCounts
}

// carrierCounts is what carrierStats keeps of one carrier.
type carrierCounts struct {
	submits, receipts map[string]uint64
	failure           string
	failureAt         time.Time
	ok                [rateWindow]struct{ sec, n int64 } // accepted submits by second, a ring
}

func newCarrierStats() *carrierStats { return &carrierStats{by: map[string]*carrierCounts{}} }

// of returns carrier's counts; s.mu must be held.
func (s *carrierStats) of(carrier string) *carrierCounts {
	c := s.by[carrier]
	if c == nil {
		c = &carrierCounts{submits: map[string]uint64{}, receipts: map[string]uint64{}}
		s.by[carrier] = c
	}
	return c
}

// observer returns s as the carriers' observer.
func (s *carrierStats) observer(next smpp.Observer) smpp.Observer {
	s.mu.Lock()
	s.next = next
	s.mu.Unlock()
	return s
}

// Submit counts one submit_sm.
func (s *carrierStats) Submit(carrier, result string, d time.Duration) {
	now := time.Now().Unix()
	s.mu.Lock()
	c := s.of(carrier)
	c.submits[result]++
	if result == "ok" {
		b := &c.ok[now%rateWindow]
		if b.sec != now {
			b.sec, b.n = now, 0
		}
		b.n++
	}
	next := s.next
	s.mu.Unlock()
	if next != nil {
		next.Submit(carrier, result, d)
	}
}

// BindState passes the event on.
func (s *carrierStats) BindState(carrier, bind string, up bool) {
	if next := s.nextObserver(); next != nil {
		next.BindState(carrier, bind, up)
	}
}

// BindGone passes the event on.
func (s *carrierStats) BindGone(carrier, bind string) {
	if f, ok := s.nextObserver().(smpp.BindForgetter); ok {
		f.BindGone(carrier, bind)
	}
}

// BindFailure keeps the reason of the carrier's last failed bind.
func (s *carrierStats) BindFailure(carrier, reason string) {
	s.mu.Lock()
	c := s.of(carrier)
	c.failure, c.failureAt = reason, time.Now()
	next := s.next
	s.mu.Unlock()
	if next != nil {
		next.BindFailure(carrier, reason)
	}
}

// Degraded passes the event on.
func (s *carrierStats) Degraded(carrier string, degraded bool) {
	if next := s.nextObserver(); next != nil {
		next.Degraded(carrier, degraded)
	}
}

// Receipt counts one receipt by state.
func (s *carrierStats) Receipt(carrier, state string) {
	s.mu.Lock()
	s.of(carrier).receipts[state]++
	next := s.next
	s.mu.Unlock()
	if next != nil {
		next.Receipt(carrier, state)
	}
}

func (s *carrierStats) nextObserver() smpp.Observer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// fill copies carrier's counts into st.
func (s *carrierStats) fill(carrier string, st *CarrierStatus, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.of(carrier)
	st.Submits, st.Receipts = maps.Clone(c.submits), maps.Clone(c.receipts)
	var n int64
	for _, b := range c.ok {
		if now.Unix()-b.sec < rateWindow {
			n += b.n
		}
	}
	st.SubmitRate = float64(n) / rateWindow
	if c.failure != "" {
		at := c.failureAt.UTC()
		st.LastBindFailure, st.LastBindFailureAt = c.failure, &at
	}
}

// carrierStatuses returns every running carrier's status, in the
// configuration's order.
func (d *Server) carrierStatuses() []CarrierStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	out := make([]CarrierStatus, 0, len(d.runs))
	for _, kc := range d.cfg.Carriers {
		if r := d.runs[kc.Name]; r != nil {
			out = append(out, d.statusOf(r, now))
		}
	}
	return out
}

// statusOf returns r's status; d.mu must be held (r.cfg.Suspended).
func (d *Server) statusOf(r *carrierRun, now time.Time) CarrierStatus {
	st := CarrierStatus{Name: r.cfg.Name, Mode: r.cfg.Mode, BindsUp: r.carrier.Bound(), BindsConfigured: r.cfg.Binds,
		BindsLeased: r.carrier.Leased(), TPS: r.cfg.TPS, Degraded: r.carrier.Degraded(), Suspended: r.carrier.Suspended(), SuspendedInConfig: r.cfg.Suspended}
	st.Forwarding = st.BindsUp == 0 && r.carrier.Usable()
	d.stats.fill(r.cfg.Name, &st, now)
	return st
}

// sameCarrier reports whether a and b configure the same carrier but for
// the suspended key, which a reload applies without a rebind.
func sameCarrier(a, b CarrierConfig) bool {
	a.Suspended, b.Suspended = false, false
	return reflect.DeepEqual(a, b)
}

// suspendedOnReload reports whether kc's carrier should be suspended after
// a reload (or at start, when there is no old run): the configuration's
// key when it is new or changed, else what the operator left in force.
func suspendedOnReload(old *carrierRun, kc CarrierConfig) bool {
	if old == nil || old.cfg.Suspended != kc.Suspended {
		return kc.Suspended
	}
	return old.carrier.Suspended()
}

// keepSuspension applies kc's suspended key to r, kept by a reload, when
// the key changed. d.mu must be held.
func keepSuspension(r *carrierRun, kc CarrierConfig) {
	if r.cfg.Suspended == kc.Suspended {
		return
	}
	r.cfg.Suspended = kc.Suspended
	if kc.Suspended {
		r.carrier.Suspend()
	} else {
		r.carrier.Resume()
	}
}

// controlRoutes adds the runtime control endpoints to the admin mux.
func (d *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /carriers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, CarriersReply{Carriers: d.carrierStatuses()})
	})
	mux.HandleFunc("POST /carriers/{name}/suspend", func(w http.ResponseWriter, r *http.Request) {
		d.setSuspended(w, r, true)
	})
	mux.HandleFunc("POST /carriers/{name}/resume", func(w http.ResponseWriter, r *http.Request) {
		d.setSuspended(w, r, false)
	})
	mux.HandleFunc("GET /{$}", d.statusPage)
}

// setSuspended suspends or resumes the carrier named in the path and
// answers its status.
func (d *Server) setSuspended(w http.ResponseWriter, r *http.Request, on bool) {
	name := r.PathValue("name")
	d.mu.Lock()
	run := d.runs[name]
	if run == nil {
		d.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no carrier of that name"})
		return
	}
	changed := false
	if on {
		changed = run.carrier.Suspend()
	} else {
		changed = run.carrier.Resume()
	}
	st := d.statusOf(run, time.Now())
	d.mu.Unlock()
	msg := "carrier resumed on the admin port"
	if on {
		msg = "carrier suspended on the admin port"
	}
	d.log.Warn(msg, keyCarrier, name, keyChanged, changed, keyRemote, r.RemoteAddr)
	writeJSON(w, http.StatusOK, st)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
