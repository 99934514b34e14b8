package daemon

import (
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/otpgate/otpgate/internal/ctxsleep"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/smpp"
	"github.com/otpgate/otpgate/store/redisstore"
)

// A fleet is several nodes on one Redis store. Each node:
//   - announces itself in the node table every third of bind_lease, with
//     the fingerprints of its HMAC secret and of its fleet-wide
//     configuration, and refuses to start when they differ from the live
//     nodes' (secret) or the fleet's (config), or when its clock is off
//     Redis's by more than maxClockSkew;
//   - binds a carrier's bind slot only while it holds the slot's lease
//     (smpp.Fleet), so that a carrier's binds are the fleet's total;
//   - hands the submits of a carrier it holds no bind of to a node that
//     holds one, over the internal port (fleet_forward.go).

// Clock skew a node tolerates against Redis's clock: beyond warnClockSkew
// it warns, beyond maxClockSkew it refuses to start. Leases, rate buckets,
// resend intervals and expiry compare times written by different nodes.
const (
	warnClockSkew = 500 * time.Millisecond
	maxClockSkew  = 2 * time.Second
)

// fleetStaleAfter is how long a node stays in the node table without a
// heartbeat before the others count it gone.
func fleetStaleAfter(lease time.Duration) time.Duration { return max(3*lease, 15*time.Second) }

// secretFingerprint names the HMAC secret without revealing it.
func secretFingerprint(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("otpgate fleet secret"))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// configFingerprint names what must be the same on every node of a fleet:
// the configuration less what is the node's own (listen addresses, admin
// port, data_dir and secret_file paths, log settings, how it reaches
// Redis, fleet.node_id and the internal port). It is keyed with the HMAC
// secret, so that the fingerprint stored in Redis says nothing of the
// carrier passwords and keys it covers.
func configFingerprint(cfg *Config, secret []byte) string {
	c := *cfg
	c.Listen, c.DebugListen, c.AdminListen = "", "", ""
	c.Admin = AdminConfig{}
	c.MaxConnections = 0
	c.DataDir, c.SecretFile = "", ""
	c.Log = LogConfig{}
	r := &c.Store.Redis
	r.Addrs, r.Username, r.Password, r.PasswordFile, r.TLS, r.TLSCAFile = nil, "", "", "", false, ""
	c.Fleet.NodeID, c.Fleet.InternalListen, c.Fleet.InternalTLS = "", "", InternalTLSConfig{}
	c.fileProblems, c.fileWarnings = nil, nil
	b, err := yaml.Marshal(&c)
	if err != nil {
		b = []byte(fmt.Sprintf("%#v", err)) // cannot happen with this struct; still a stable value
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("otpgate fleet config\n"))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// fleetNode is this node's membership of the fleet: its heartbeat, its
// bind leases and what it saw of the others' (smpp.Fleet).
type fleetNode struct {
	db     *redisstore.DB
	id     string
	token  string           // this process's, in lease values
	clock  func() time.Time // join's clock, against Redis's; nil: time.Now (tests skew it)
	lease  time.Duration
	log    *slog.Logger
	secret string                 // secret fingerprint
	config atomic.Pointer[string] // config fingerprint in force
	fwd    *forwarder             // nil: submits are neither taken nor forwarded
	// forwarded, when set, counts each forward by carrier and result.
	forwarded func(carrier, result string)
	addr      atomic.Pointer[string] // the internal address leases advertise ("" none)
	acquires  atomic.Uint64          // numbers each lease value, see leaseValue
	wg        sync.WaitGroup         // lease renewals
	closed    bool                   // under mu: leave ran, no more Acquire

	mu     sync.Mutex
	remote map[string]map[string]seenHolder // carrier -> slot -> another node's lease
	held   map[string]int                   // carrier -> slots this node holds
}

type seenHolder struct {
	slot, node, addr string
	at               time.Time
}

var _ smpp.Fleet = (*fleetNode)(nil)

func newFleetNode(db *redisstore.DB, cfg *Config, secret []byte, log *slog.Logger) *fleetNode {
	f := &fleetNode{db: db, id: cfg.Fleet.NodeID, lease: time.Duration(cfg.Fleet.BindLease),
		log: log.With(keyComponent, "fleet"), secret: secretFingerprint(secret), remote: map[string]map[string]seenHolder{},
		held: map[string]int{}}
	var tok [4]byte
	crand.Read(tok[:])
	f.token = hex.EncodeToString(tok[:])
	fp := configFingerprint(cfg, secret)
	f.config.Store(&fp)
	f.setAddr("")
	return f
}

// self names this process in lease values: the node id and a token of
// its own, so that two processes given the same node_id (or a node and
// its restart) never take each other's leases for their own.
func (f *fleetNode) self() string { return f.id + "#" + f.token }

// setAddr sets the internal address this node's leases advertise.
func (f *fleetNode) setAddr(addr string) { f.addr.Store(&addr) }

// leaseValue is the value of one lease taken by this process:
// "<node id>#<token>.<n> <internal address>". Each Acquire has its own
// n, so that a carrier replaced by a reload, whose old instance drains
// while the new one asks for the same slot, never takes the old one's
// lease for its own.
func (f *fleetNode) leaseValue() string {
	return fmt.Sprintf("%s.%d %s", f.self(), f.acquires.Add(1), *f.addr.Load())
}

// ownValue reports whether a lease value is this process's (any Acquire).
func (f *fleetNode) ownValue(v string) bool {
	node, _, _ := strings.Cut(v, " ")
	return strings.HasPrefix(node, f.self()+".")
}

// join checks this node against the fleet and announces it: the same
// secret as every live node, the fleet's config (the first node of a fleet
// sets it), a clock within maxClockSkew of Redis's.
func (f *fleetNode) join(ctx context.Context) error {
	clock := time.Now
	if f.clock != nil {
		clock = f.clock
	}
	before := clock()
	st, err := f.db.ServerTime(ctx)
	if err != nil {
		return fmt.Errorf("daemon: fleet: %w", err)
	}
	now := clock()
	skew := before.Add(now.Sub(before) / 2).Sub(st) // against the middle of the round trip
	switch {
	case skew.Abs() > maxClockSkew:
		return fmt.Errorf("daemon: fleet: this node's clock is %s off the Redis server's (at most %s allowed): fix its time sync (NTP)",
			skew.Round(time.Millisecond), maxClockSkew)
	case skew.Abs() > warnClockSkew:
		f.log.Warn("clock off the fleet's reference", keySkew, skew.Round(time.Millisecond), keyLimit, maxClockSkew)
	}
	nodes, err := f.db.FleetNodes(ctx, now, fleetStaleAfter(f.lease))
	if err != nil {
		return fmt.Errorf("daemon: fleet: %w", err)
	}
	var others []string
	for _, n := range nodes {
		if n.ID == f.id {
			continue
		}
		others = append(others, n.ID)
		if n.SecretFP != f.secret {
			return fmt.Errorf("daemon: fleet: this node's HMAC secret (secret_file) differs from node %s's: every node of a fleet needs the same secret file", n.ID)
		}
	}
	mine := *f.config.Load()
	if len(others) == 0 {
		// The first node of a fleet (or the only one left) sets the config.
		if _, err := f.db.SetFleetConfig(ctx, mine, false); err != nil {
			return fmt.Errorf("daemon: fleet: %w", err)
		}
	} else {
		fleetFP, err := f.db.FleetConfig(ctx)
		if err != nil {
			return fmt.Errorf("daemon: fleet: %w", err)
		}
		if fleetFP == "" {
			if _, err := f.db.SetFleetConfig(ctx, mine, true); err != nil {
				return fmt.Errorf("daemon: fleet: %w", err)
			}
			fleetFP, _ = f.db.FleetConfig(ctx)
		}
		if fleetFP != mine {
			return fmt.Errorf("daemon: fleet: this node's configuration (fingerprint %s) differs from the fleet's (%s, nodes %s): "+
				"give every node the same file, or make this one the fleet's with `otpgate fleet adopt`", mine, fleetFP, strings.Join(others, ", "))
		}
	}
	if err := f.beat(ctx); err != nil {
		return err
	}
	// Two first nodes started together with different files both set
	// the fleet's config; the one whose write came first finds it
	// replaced now.
	if fleetFP, err := f.db.FleetConfig(ctx); err != nil {
		return fmt.Errorf("daemon: fleet: %w", err)
	} else if fleetFP != mine {
		_ = f.db.LeaveFleet(ctx, f.id)
		return fmt.Errorf("daemon: fleet: another node set the fleet's configuration (fingerprint %s) while this one (%s) started: "+
			"give every node the same file", fleetFP, mine)
	}
	// Announced first, read second: of two nodes starting together with
	// different files, at least one sees the other here.
	nodes, err = f.db.FleetNodes(ctx, time.Now(), fleetStaleAfter(f.lease))
	if err != nil {
		return fmt.Errorf("daemon: fleet: %w", err)
	}
	for _, n := range nodes {
		if n.ID != f.id && (n.ConfigFP != mine || n.SecretFP != f.secret) {
			_ = f.db.LeaveFleet(ctx, f.id)
			return fmt.Errorf("daemon: fleet: node %s started with another configuration or secret at the same time as this one: "+
				"give every node the same files", n.ID)
		}
	}
	f.log.Info("joined the fleet", keyNode, f.id, keyNodes, len(others)+1, keySkew, skew.Round(time.Millisecond))
	return nil
}

// checkReload returns the fingerprint of cfg, or an error when it is not
// the fleet's: a fleet's config changes by `otpgate fleet adopt`, then a
// reload of every node.
func (f *fleetNode) checkReload(ctx context.Context, cfg *Config, secret []byte) (string, error) {
	fp := configFingerprint(cfg, secret)
	fleetFP, err := f.db.FleetConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("daemon: fleet: %w", err)
	}
	if fleetFP != "" && fleetFP != fp {
		return "", fmt.Errorf("daemon: fleet: the new configuration (fingerprint %s) differs from the fleet's (%s): "+
			"run `otpgate fleet adopt -config FILE` with the new file once, then reload every node", fp, fleetFP)
	}
	return fp, nil
}

// inForce records fp as this node's configuration (the next heartbeat
// says so).
func (f *fleetNode) inForce(fp string) { f.config.Store(&fp) }

func (f *fleetNode) beat(ctx context.Context) error {
	err := f.db.Heartbeat(ctx, redisstore.FleetNode{ID: f.id, SecretFP: f.secret, ConfigFP: *f.config.Load(), Heartbeat: time.Now()})
	if err != nil {
		return fmt.Errorf("daemon: fleet: %w", err)
	}
	return nil
}

// run keeps the heartbeat until ctx ends.
func (f *fleetNode) run(ctx context.Context) {
	t := time.NewTicker(f.lease / 3)
	defer t.Stop()
	var failing bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, f.lease/3)
		err := f.beat(bctx)
		cancel()
		if err != nil && !failing {
			f.log.Warn("fleet heartbeat failed", keyError, err)
		}
		failing = err != nil
	}
}

// leave takes no more lease, waits for the renewals to stop (every
// carrier has stopped by then) and removes this node from the node table.
func (f *fleetNode) leave() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = f.db.LeaveFleet(ctx, f.id)
}

// Acquire implements smpp.Fleet: it polls the slot's lease every third of
// bind_lease (jittered) until it gets it, noting who holds it meanwhile.
func (f *fleetNode) Acquire(ctx context.Context, carrier, slot string) (context.Context, func(), error) {
	value := f.leaseValue()
	var freeSince time.Time
	var sent time.Time
	for {
		tctx, cancel := context.WithTimeout(ctx, f.lease/3)
		sent = time.Now()
		held, cur, err := f.takeFair(tctx, carrier, slot, value, &freeSince)
		cancel()
		if err == nil && held {
			break
		}
		if err == nil {
			f.saw(carrier, slot, cur)
		}
		wait := f.lease/6 + rand.N(f.lease/3)
		if !ctxsleep.Sleep(ctx, wait) {
			return nil, nil, ctx.Err()
		}
	}
	f.mu.Lock()
	if f.closed { // the node is leaving: give it back at once
		f.mu.Unlock()
		f.giveBack(carrier, slot, value)
		return nil, nil, errors.New("daemon: fleet: leaving")
	}
	f.wg.Add(1)
	f.mu.Unlock()
	f.saw(carrier, slot, "")
	f.count(carrier, 1)
	held, lose := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer f.wg.Done()
		defer close(done)
		f.renew(held, lose, carrier, slot, value, sent)
	}()
	var once sync.Once
	release := func() {
		once.Do(func() {
			lose()
			<-done
			f.giveBack(carrier, slot, value)
			f.count(carrier, -1)
		})
	}
	return held, release, nil
}

// giveBack deletes the lease when value still holds it.
func (f *fleetNode) giveBack(carrier, slot, value string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := f.db.ReleaseBindLease(ctx, carrier, slot, value); err != nil {
		f.log.Warn("bind lease not given back: it runs out by itself", keyCarrier, carrier, keySlot, slot, keyError, err)
	}
}

// takeFair takes the slot's lease, except that a node already holding a
// slot of the carrier leaves a free one to the others for a whole lease
// first (freeSince: since when this node has seen it free), so that a
// fleet starting together spreads a carrier's binds over its nodes.
func (f *fleetNode) takeFair(ctx context.Context, carrier, slot, holder string, freeSince *time.Time) (bool, string, error) {
	if f.heldOf(carrier) > 0 {
		cur, err := f.db.BindLeaseHolders(ctx, carrier, []string{slot})
		if err != nil {
			return false, "", err
		}
		if cur[0] != "" {
			*freeSince = time.Time{}
			return false, cur[0], nil
		}
		if freeSince.IsZero() {
			*freeSince = time.Now()
		}
		if time.Since(*freeSince) < f.lease {
			return false, "", nil
		}
	}
	return f.db.TakeBindLease(ctx, carrier, slot, holder, f.lease)
}

func (f *fleetNode) heldOf(carrier string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[carrier]
}

func (f *fleetNode) count(carrier string, delta int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held[carrier] += delta
}

// renew renews a held lease every third of bind_lease. The lease is
// taken as lost (lose: the slot is unbound) when another node holds it,
// or two thirds of bind_lease after the last renewal that succeeded,
// counted from when that renewal was sent: the key may expire in Redis a
// third of bind_lease later, which leaves the unbind that much time before
// another node may bind. A timer enforces that deadline, whatever a
// renewal in flight is doing.
func (f *fleetNode) renew(ctx context.Context, lose func(), carrier, slot, value string, sent time.Time) {
	margin := 2 * f.lease / 3
	deadline := time.AfterFunc(time.Until(sent.Add(margin)), func() {
		f.log.Error("bind lease not renewed in time: unbinding", keyCarrier, carrier, keySlot, slot)
		lose()
	})
	defer deadline.Stop()
	t := time.NewTicker(f.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := time.Now()
		rctx, cancel := context.WithTimeout(ctx, f.lease/3)
		held, cur, err := f.db.TakeBindLease(rctx, carrier, slot, value, f.lease)
		cancel()
		switch {
		case err == nil && held:
			if !deadline.Stop() { // it fired: the slot is being unbound
				return
			}
			deadline.Reset(time.Until(at.Add(margin)))
		case err == nil:
			f.log.Warn("bind lease taken over by another node: unbinding", keyCarrier, carrier, keySlot, slot, keyNode, nodeOf(cur))
			lose()
			return
		}
	}
}

// saw notes the holder value cur of a carrier's slot ("" or this node's
// own: nobody else).
func (f *fleetNode) saw(carrier, slot, cur string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.remote[carrier]
	if m == nil {
		m = map[string]seenHolder{}
		f.remote[carrier] = m
	}
	node, addr, _ := strings.Cut(cur, " ")
	if cur == "" || f.ownValue(cur) {
		delete(m, slot)
		return
	}
	m[slot] = seenHolder{slot: slot, node: node, addr: addr, at: time.Now()}
}

// forget drops h from the view of carrier's slots, unless the slot was
// seen again since.
func (f *fleetNode) forget(carrier string, h seenHolder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.remote[carrier]; m[h.slot] == h {
		delete(m, h.slot)
	}
}

// reread reads again the leases of the slots that hs were seen holding,
// and notes their holders.
func (f *fleetNode) reread(ctx context.Context, carrier string, hs []seenHolder) {
	var buf [8]string
	slots := buf[:0]
	for _, h := range hs {
		if !slices.Contains(slots, h.slot) {
			slots = append(slots, h.slot)
		}
	}
	cur, err := f.db.BindLeaseHolders(ctx, carrier, slots)
	if err != nil {
		// The send fails over with its own error; at Warn this would be a
		// line per forwarded send while Redis is failing.
		f.log.Debug("bind leases not read again", keyCarrier, carrier, keyError, err)
		return
	}
	for i, slot := range slots {
		f.saw(carrier, slot, cur[i])
	}
}

// holders appends to out the other nodes seen holding a slot of carrier
// lately that take forwarded submits.
func (f *fleetNode) holders(carrier string, out []seenHolder) []seenHolder {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.remote[carrier] {
		if f.current(h) {
			out = append(out, h)
		}
	}
	return out
}

// current reports whether h was seen lately and takes forwarded submits.
func (f *fleetNode) current(h seenHolder) bool { return h.addr != "" && time.Since(h.at) < f.lease }

// Remote implements smpp.Fleet. The router asks it for every send of a
// node without a bind of carrier: it allocates nothing.
func (f *fleetNode) Remote(carrier string) bool {
	if f.fwd == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.remote[carrier] {
		if f.current(h) {
			return true
		}
	}
	return false
}

// Forward implements smpp.Fleet: through the nodes holding a bind of
// carrier (forwardEach). When every node in the view failed without the
// SMS going out, the view may be older than a takeover (it is refreshed by
// polling, not pushed): the leases of the slots tried are read again once,
// and the holders found there that were not tried yet are tried.
func (f *fleetNode) Forward(ctx context.Context, carrier string, sms otp.SMS) ([]string, error) {
	var buf [8]seenHolder // a carrier's binds: rarely more than 8
	hs := f.holders(carrier, buf[:0])
	if f.fwd == nil || len(hs) == 0 {
		return nil, smpp.ErrNotBound
	}
	ids, err := f.forwardEach(ctx, carrier, sms, hs)
	if !unsent(ctx, err) {
		return ids, err
	}
	f.reread(ctx, carrier, hs)
	// A holder that failed stays failed for this send (a node killed
	// before its lease ran out is still named there).
	var nbuf [8]seenHolder
	next := slices.DeleteFunc(f.holders(carrier, nbuf[:0]), func(h seenHolder) bool {
		return slices.ContainsFunc(hs, func(t seenHolder) bool { return t.node == h.node && t.addr == h.addr })
	})
	if len(next) == 0 {
		return ids, err
	}
	return f.forwardEach(ctx, carrier, sms, next)
}

// forwardEach forwards sms to the holders hs in random order, the next
// only when the SMS certainly did not go out (the request never reached
// the node, or its carrier was not bound there); such a node leaves the
// view. It returns the last outcome.
func (f *fleetNode) forwardEach(ctx context.Context, carrier string, sms otp.SMS, hs []seenHolder) (ids []string, err error) {
	rand.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })
	for _, h := range hs {
		ids, err = f.fwd.submit(ctx, h.addr, carrier, sms)
		if f.forwarded != nil {
			result := "ok"
			if err != nil {
				result, _ = smpp.ForwardCode(err)
			}
			f.forwarded(carrier, result)
		}
		if !unsent(ctx, err) {
			return ids, err
		}
		f.forget(carrier, h)
	}
	return ids, err
}

// unsent reports whether err is a forward's that certainly did not send,
// with time left to try another node.
func unsent(ctx context.Context, err error) bool {
	return errors.Is(err, smpp.ErrNotBound) && ctx.Err() == nil
}

// nodeOf is the node id of a lease value.
func nodeOf(holder string) string {
	self, _, _ := strings.Cut(holder, " ")
	node, _, _ := strings.Cut(self, "#")
	return node
}

// advertised is the address other nodes dial for this node's internal
// port: the configured host (the node id when it is unspecified) and the
// port actually bound.
func advertised(listen, nodeID string, bound net.Addr) string {
	host, _, _ := net.SplitHostPort(listen)
	_, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = nodeID
	}
	return net.JoinHostPort(host, port)
}

// joinFleet makes this node a member of the fleet when the store is
// Redis: the internal port (when configured), then the checks of join. It
// returns nils with badger.
func (d *Server) joinFleet(ctx context.Context, cfg *Config, db storeBackend, secret []byte) (*fleetNode, *http.Server, net.Listener, error) {
	rdb, ok := db.(*redisstore.DB)
	if !ok {
		return nil, nil, nil, nil
	}
	f := newFleetNode(rdb, cfg, secret, d.log)
	srv, ln, clientTLS, err := d.startInternal(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if d.Metrics != nil {
		f.forwarded = d.Metrics.FleetForward
	}
	if ln != nil {
		f.fwd = newForwarder(clientTLS)
		f.setAddr(advertised(cfg.Fleet.InternalListen, cfg.Fleet.NodeID, ln.Addr()))
	}
	jctx, cancel := context.WithTimeout(ctx, redisOpenTimeout)
	defer cancel()
	if err := f.join(jctx); err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, nil, nil, err
	}
	return f, srv, ln, nil
}
