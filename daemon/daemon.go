package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpgate/otpgate/api"
	"github.com/otpgate/otpgate/guard"
	"github.com/otpgate/otpgate/metrics"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/phone"
	"github.com/otpgate/otpgate/ratelimit"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/smpp/smsc"
	"golang.org/x/net/netutil"
	"golang.org/x/sync/errgroup"
)

// DrainTimeout bounds how long shutdown waits for in-flight HTTP requests.
const DrainTimeout = 15 * time.Second

// Server is a configured gateway, ready to Run.
type Server struct {
	log *slog.Logger
	// Level, when set, is the process's log level: a reload sets it.
	Level *slog.LevelVar
	// Metrics, when set, collects the gateway's metrics and serves them at
	// /metrics; New sets a fresh one.
	Metrics *metrics.Registry

	ready  chan struct{}
	notify *Notifier

	reloadMu  sync.Mutex // serialises reloads
	mu        sync.Mutex // guards what follows; held only briefly
	cfg       *Config
	addr      net.Addr
	adminAddr net.Addr
	notReady  atomic.Pointer[string] // last reason publicReadiness saw ("" ready)
	db        storeBackend
	receipts  *otp.Receipts
	inbox     *otp.Inbox // MO messages
	router    atomic.Pointer[smpp.Router]
	svc       atomic.Pointer[otp.Service] // read without mu: the store's writer must not take it
	access    atomic.Pointer[api.Access]  // trusted proxies, auth failure limit: read at each request
	guard     atomic.Pointer[guard.Guard] // the pumping guard, for the admin port and reloads
	stopping  bool                        // shutdown has begun: no more reloads
	runs      map[string]*carrierRun
	bg        context.Context // parent of the carriers' contexts
	wg        sync.WaitGroup  // carriers' goroutines
	lateAcks  chan otp.Ack    // late submit_sm_resp, for runLateAcks
	stats     *carrierStats   // the carriers' observer, for the control API and status page
	started   time.Time
	fleet     *fleetNode // nil unless store.backend is redis
	secret    []byte     // the HMAC secret, for the fleet's config fingerprint
}

// carrierRun is one running carrier, with its simulator when simulated.
type carrierRun struct {
	cfg     CarrierConfig
	carrier *smpp.Carrier
	sim     *smsc.Server
	cancel  context.CancelFunc
	done    chan struct{}
}

// New checks cfg and returns a Server. logger may be nil.
func New(cfg *Config, logger *slog.Logger) (*Server, error) {
	if ps := cfg.Validate(); len(ps) > 0 {
		return nil, ps
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logWarnings(logger, cfg)
	return &Server{cfg: cfg, log: logger, ready: make(chan struct{}), Metrics: metrics.New(), runs: map[string]*carrierRun{},
		notify: NewNotifier(logger), lateAcks: make(chan otp.Ack, lateAckQueue), stats: newCarrierStats(), started: time.Now()}, nil
}

// Addr returns the HTTP listener's address; it is valid after Ready is closed.
func (d *Server) Addr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// AdminAddr returns the admin listener's address (nil when admin_listen is
// empty); it is valid after Ready is closed.
func (d *Server) AdminAddr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.adminAddr
}

// Ready is closed once the HTTP listener is bound and serving.
func (d *Server) Ready() <-chan struct{} { return d.ready }

// send is the service's otp.Sender (as a senderFunc): it goes through the
// router in force, which a reload may replace.
func (d *Server) send(ctx context.Context, sms otp.SMS) (otp.Sent, error) {
	return d.router.Load().Send(ctx, sms)
}

// senderFunc adapts a function to otp.Sender.
type senderFunc func(ctx context.Context, sms otp.SMS) (otp.Sent, error)

// Send calls f.
func (f senderFunc) Send(ctx context.Context, sms otp.SMS) (otp.Sent, error) { return f(ctx, sms) }

// Run opens the store, starts the carriers and serves HTTP until ctx is
// done; then it stops accepting requests, finishes those in flight, unbinds
// the carriers and closes the store. Errors binding the listener or opening
// the store come back at once.
func (d *Server) Run(ctx context.Context) (err error) {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	secret, err := loadSecret(cfg.SecretFile)
	if err != nil {
		return err
	}
	db, fleetLimiter, err := d.openStore(ctx, cfg)
	if err != nil {
		return d.stoppedEarly(ctx, err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	d.sampleMetrics(db)
	fleet, internalSrv, internalLn, err := d.joinFleet(ctx, cfg, db, secret)
	if err != nil {
		return d.stoppedEarly(ctx, err)
	}
	if fleet != nil {
		defer fleet.leave() // after the carriers stopped (deferred later), before the store closes
	}
	if internalLn != nil {
		defer internalLn.Close()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("daemon: listen: %w", err)
	}
	defer ln.Close()

	// Carriers, GC and sweeps live until the HTTP side has drained. Every
	// goroutine counted in d.wg (the guard's sync, every carrier of this
	// start or of a reload) ends with bg and is waited for before the
	// store closes (deferred earlier, so it runs later), on every return
	// from here on.
	bg, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer d.wg.Wait()
	defer bgCancel()
	settings, err := buildSettings(cfg)
	if err != nil {
		return err
	}
	gd, err := d.newGuard(bg, cfg, db)
	if err != nil {
		return err
	}
	adminSrv, adminLn, err := d.startAdmin(cfg)
	if err != nil {
		return err
	}
	if adminLn != nil {
		defer adminLn.Close()
		d.mu.Lock()
		d.adminAddr = adminLn.Addr()
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.db, d.bg, d.addr = db, bg, ln.Addr()
	d.fleet, d.secret = fleet, secret
	d.receipts = otp.NewReceipts(db, d.log.With(keyComponent, "receipts"))
	if m := d.Metrics; m != nil {
		d.receipts.Unmatched = func(carrier string) { m.Receipt(carrier, "pending") }
	}
	d.receipts.Failed = func(msg otp.Message) {
		if svc := d.svc.Load(); svc != nil {
			svc.RetryFailed(msg)
		}
	}
	d.inbox = d.newInbox(db, settings)
	failed, err := d.applyCarriers(cfg)
	d.mu.Unlock()
	defer d.stopCarriers()
	if err != nil {
		d.stopRuns(failed)
		return err
	}
	limiter := ratelimit.New(nil)
	var clientLimiter otp.Limiter = limiter
	if fleetLimiter != nil { // shared by the nodes of a fleet
		clientLimiter = fleetLimiter
	}
	svc, err := otp.NewService(settings, otp.Options{Store: db, Receipts: db, Sender: senderFunc(d.send), Limiter: clientLimiter,
		Guard: gd, Secret: secret, Logger: d.log.With(keyComponent, "otp")})
	if err != nil {
		return err
	}
	d.svc.Store(svc)

	d.access.Store(accessOf(cfg))
	opts := api.Options{Logger: d.log.With(keyComponent, "http"), Ready: d.publicReadiness, Access: d.access.Load, AuthFailures: limiter}
	if d.Metrics != nil {
		opts.Observer = d.Metrics
	}
	// inflight lets shutdown wait for handlers that a forced Close left
	// running, so that none of them finds the store closed.
	var inflight requests
	var apiHandler http.Handler = api.New(svc, opts)
	if wrapHandler != nil {
		apiHandler = wrapHandler(apiHandler)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer inflight.add(r)()
		apiHandler.ServeHTTP(w, r)
	})
	srv := newHTTPServer(handler, cfg, d.log)
	ln = netutil.LimitListener(ln, cfg.MaxConnections)

	// Every background component runs in g until bg ends (after the
	// drain); the first to fail with an error cancels gctx, which stops
	// the others and starts the shutdown.
	g, gctx := errgroup.WithContext(bg)
	g.Go(func() error { return db.Run(gctx) })
	g.Go(func() error { svc.Run(gctx); return nil })
	// Through the drain too, so that systemd's watchdog keeps being fed.
	// Live, not Health: a wedged store is cured by a restart, a full disk
	// is not (it only makes the daemon unready).
	g.Go(func() error { d.notify.Run(gctx, db.Live); return nil })
	startCallbacks(gctx, g, db, svc, d.log, d.Metrics)
	g.Go(func() error { limiter.Run(gctx, time.Minute); return nil })
	g.Go(func() error { d.runLateAcks(gctx, d.receipts); return nil })
	if adminSrv != nil {
		g.Go(func() error { return serveAdmin(adminSrv, adminLn) })
	}
	if fleet != nil {
		g.Go(func() error { fleet.run(gctx); return nil })
	}
	if internalSrv != nil {
		g.Go(func() error { return serveInternal(internalSrv, internalLn) })
	}

	// The API server's Serve returns once Shutdown (or Close) ran; Run
	// waits for it below.
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	d.log.Info("otpgate started", keyListen, ln.Addr().String(), keyCarriers, len(cfg.Carriers), keyDataDir, cfg.DataDir)
	close(d.ready)
	d.notify.Ready()

	served := false
	select {
	case <-ctx.Done():
		err = nil
	case err = <-serveErr:
		served = true
		err = fmt.Errorf("daemon: serve: %w", err)
	case <-gctx.Done():
		err = fmt.Errorf("daemon: a component failed: %w", context.Cause(gctx))
	}
	d.notify.Stopping()
	d.log.Info("otpgate stopping: draining requests")
	drainStart := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	if serr := srv.Shutdown(sctx); serr != nil {
		d.log.Warn("drain incomplete", keyError, serr)
		srv.Close()
	}
	cancel()
	if !served {
		<-serveErr // Serve has returned: no goroutine of it is left
	}
	// A handler ends within submit_timeout and its store deadline; one
	// that does not (a wedged store) is left behind rather than hold the
	// shutdown past systemd's TimeoutStopSec.
	inflight.wait(drainStart.Add(max(drainTimeout, time.Duration(cfg.SubmitTimeout)+inflightSlack)), d.log)
	d.log.Info("otpgate stopping: unbinding carriers")
	d.stopCarriers()
	bgCancel()
	for _, s := range []*http.Server{adminSrv, internalSrv} {
		if s == nil {
			continue
		}
		actx, acancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
		if s.Shutdown(actx) != nil {
			s.Close()
		}
		acancel()
	}
	if gerr := g.Wait(); gerr != nil && err == nil {
		err = gerr
	}
	d.log.Info("otpgate stopped")
	return err
}

// applyCarriers makes the running carriers those of cfg: unchanged ones
// keep their binds, new or changed ones start, and the router is rebuilt.
// It returns the carriers no longer needed; the caller stops them (they
// drain, then unbind) once d.mu is released, so that a slow drain holds up
// neither /readyz nor a shutdown. d.mu must be held.
func (d *Server) applyCarriers(cfg *Config) ([]*carrierRun, error) {
	next := make(map[string]*carrierRun, len(cfg.Carriers))
	var started []*carrierRun
	fail := func(err error) ([]*carrierRun, error) {
		return started, err // the caller stops what was started
	}
	for _, kc := range cfg.Carriers {
		if r, ok := d.runs[kc.Name]; ok && sameCarrier(r.cfg, kc) {
			// The operator may have fixed the account at the carrier.
			r.carrier.RetryAuthNow()
			keepSuspension(r, kc)
			next[kc.Name] = r
			continue
		}
		r, err := d.startRun(kc)
		if err != nil {
			return fail(err)
		}
		started = append(started, r)
		next[kc.Name] = r
	}
	carriers := make(map[string]*smpp.Carrier, len(next))
	for name, r := range next {
		carriers[name] = r.carrier
	}
	routes := make([]smpp.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = smpp.Route{Countries: upper(r.Countries), Prefixes: r.Prefixes, Carriers: r.Carriers}
	}
	router, err := smpp.NewRouter(routes, carriers, d.log)
	if err != nil {
		return fail(fmt.Errorf("daemon: %w", err))
	}
	d.router.Store(router)
	var old []*carrierRun
	for name, r := range d.runs {
		if next[name] != r {
			d.log.Info("carrier removed or changed: draining", keyCarrier, name)
			old = append(old, r)
		}
	}
	d.runs = next
	return old, nil
}

func (d *Server) startRun(kc CarrierConfig) (*carrierRun, error) {
	r := &carrierRun{cfg: kc, done: make(chan struct{})}
	addr := kc.Address
	if kc.Simulate {
		sim, err := smsc.Listen("127.0.0.1:0", smsc.Options{SystemID: kc.SystemID, Password: string(kc.Password),
			ReceiptTLV: true, DCS0Charset: kc.DCS0Charset, Logger: d.log.With(keyComponent, "smsc-sim", keyCarrier, kc.Name)})
		if err != nil {
			return nil, fmt.Errorf("daemon: simulator for %s: %w", kc.Name, err)
		}
		r.sim, addr = sim, sim.Addr()
	}
	cc, err := carrierConfig(kc, addr, d.smppObserver())
	cc.OnLateAck = d.lateAck
	if d.fleet != nil {
		cc.Fleet = d.fleet
	}
	if err != nil {
		if r.sim != nil {
			r.sim.Close()
		}
		return nil, err
	}
	if err := d.inbound(kc, &cc); err != nil {
		if r.sim != nil {
			r.sim.Close()
		}
		return nil, err
	}
	r.carrier = smpp.NewCarrier(cc, d.receipts, d.log)
	if suspendedOnReload(d.runs[kc.Name], kc) {
		r.carrier.Suspend()
	}
	d.carrierStarted(kc.Name)
	ctx, cancel := context.WithCancel(d.bg)
	r.cancel = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(r.done)
		if err := r.carrier.Run(ctx); err != nil {
			d.log.Error("carrier stopped", keyCarrier, kc.Name, keyError, err)
		}
	}()
	return r, nil
}

// wantsCallback reports whether clientID has a callback URL in the
// settings in force (true until the service exists, so nothing is lost).
func (d *Server) wantsCallback(clientID string) bool {
	svc := d.svc.Load()
	if svc == nil {
		return true
	}
	_, _, ok := svc.Settings().Callback(clientID)
	return ok
}

// smppObserver is the carriers' observer: the control API's counts, and
// the metrics when on.
func (d *Server) smppObserver() smpp.Observer {
	var next smpp.Observer
	if d.Metrics != nil {
		next = d.Metrics
	}
	return d.stats.observer(next)
}

// stopRun cancels a carrier, waits for it to drain and unbind, and closes
// its simulator.
func (d *Server) stopRun(r *carrierRun) {
	r.cancel()
	<-r.done
	if r.sim != nil {
		r.sim.Close()
	}
	if d.Metrics == nil {
		return
	}
	// The stopped carrier reported its binds down; a replacement of the
	// same name reports its own again, a removed carrier's series go.
	d.mu.Lock()
	next := d.runs[r.cfg.Name]
	d.mu.Unlock()
	if next != nil {
		next.carrier.ReportBinds()
	} else {
		d.Metrics.ForgetCarrier(r.cfg.Name)
	}
}

// stoppedEarly is Run's answer to err from a start-up step that waits on
// ctx (reaching Redis, joining the fleet): nil when ctx ended first, since
// a stop asked for during the start is a clean stop (exit 0 for systemd),
// logged; err otherwise.
func (d *Server) stoppedEarly(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	d.log.Info("otpgate stopped while starting", keyError, err)
	return nil
}

// stopCarriers stops every carrier and refuses later reloads; it is
// idempotent.
func (d *Server) stopCarriers() {
	d.mu.Lock()
	d.stopping = true
	runs := make([]*carrierRun, 0, len(d.runs))
	for _, r := range d.runs {
		runs = append(runs, r)
	}
	d.runs = map[string]*carrierRun{}
	d.mu.Unlock()
	d.stopRuns(runs)
}

// stopRuns stops runs in parallel and waits for them.
func (d *Server) stopRuns(runs []*carrierRun) {
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() { defer wg.Done(); d.stopRun(r) }()
	}
	wg.Wait()
}

// publicReadiness is the API port's /readyz: readiness, whose reason goes
// to the log (once per change) and the admin port, not to the caller.
func (d *Server) publicReadiness() error {
	err := d.readiness()
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	if old := d.notReady.Swap(&reason); old == nil || *old != reason {
		if err != nil {
			d.log.Warn("not ready", keyReason, reason)
		} else if old != nil {
			d.log.Info("ready again")
		}
	}
	return err
}

// readiness is /readyz: the store takes writes (store.DB.Health) and a
// carrier is bound.
func (d *Server) readiness() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db == nil {
		return errors.New("store not open")
	}
	if err := d.db.Health(); err != nil {
		return err
	}
	for _, r := range d.runs {
		if r.carrier.Usable() {
			return nil
		}
	}
	return errors.New("no carrier bound")
}

func carrierConfig(k CarrierConfig, addr string, obs smpp.Observer) (smpp.CarrierOptions, error) {
	cc := smpp.CarrierOptions{Name: k.Name, Address: addr, SystemID: k.SystemID, Password: string(k.Password),
		Observer: obs, SystemType: k.SystemType, Mode: k.Mode, Binds: k.Binds, TPS: k.TPS, Burst: k.Burst,
		Window: k.Window, SubmitAckTimeout: time.Duration(k.SubmitAckTimeout)}
	if k.StallTimeout != nil {
		cc.StallTimeout = time.Duration(*k.StallTimeout)
		if cc.StallTimeout == 0 {
			cc.StallTimeout = -1 // off
		}
	}
	if err := submitConfig(k, &cc); err != nil {
		return cc, err
	}
	if k.TLS && !k.Simulate {
		cc.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if k.TLSCAFile != "" {
			pool, err := loadCAs(k.TLSCAFile)
			if err != nil {
				return cc, fmt.Errorf("daemon: carrier %s: tls_ca_file: %w", k.Name, err)
			}
			cc.TLS.RootCAs = pool
		}
	}
	return cc, applyLink(k, &cc)
}

// buildSettings turns the config's clients, limits and block list into the
// domain's snapshot.
func buildSettings(cfg *Config) (*otp.Settings, error) {
	p := otp.Policy{TTL: time.Duration(cfg.OTP.TTL), MaxAttempts: cfg.OTP.MaxAttempts,
		ResendInterval: time.Duration(cfg.OTP.ResendInterval), MaxPerNumberPerHour: cfg.OTP.MaxPerNumberPerHour,
		SubmitTimeout: time.Duration(cfg.SubmitTimeout), RetryUndelivered: cfg.OTP.RetryUndelivered,
		MaxFailuresPerDay: cfg.OTP.MaxFailuresPerDay, MinDigits: cfg.OTP.MinDigits,
		DefaultRatePerSecond: cfg.OTP.DefaultClientRate.PerSecond, DefaultRateBurst: cfg.OTP.DefaultClientRate.Burst}
	clients := make([]otp.Client, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		oc := otp.Client{ID: c.ID, Sender: c.Sender, Countries: upper(c.Countries), RatePerSecond: c.Rate.PerSecond,
			RateBurst: c.Rate.Burst, Texts: map[string]otp.Template{}, CallbackURL: c.CallbackURL,
			CallbackSecret: string(c.CallbackSecret), MOCallbackURL: c.MOCallbackURL, Weight: c.Weight}
		for _, k := range c.APIKeys {
			h, err := parseKeyHash(k)
			if err != nil {
				return nil, fmt.Errorf("daemon: client %s: %w", c.ID, err)
			}
			oc.KeyHashes = append(oc.KeyHashes, h)
		}
		if err := clientTLVs(c, &oc); err != nil {
			return nil, err
		}
		for id, text := range c.CustomTexts {
			t, err := otp.ParseTemplate(text.Text)
			if err != nil {
				return nil, fmt.Errorf("daemon: client %s text %s: %w", c.ID, id, err)
			}
			oc.Texts[id] = t
		}
		clients = append(clients, oc)
	}
	blocked := make([]string, 0, len(cfg.BlockedNumbers))
	for _, n := range cfg.BlockedNumbers {
		num, err := phone.Parse(n)
		if err != nil {
			return nil, fmt.Errorf("daemon: blocked number: %w", err)
		}
		blocked = append(blocked, num.E164())
	}
	return otp.NewSettings(p, clients, blocked)
}

func upper(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}
